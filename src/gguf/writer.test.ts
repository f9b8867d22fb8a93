import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { vocabPath } from '../model/testing/vocab.ts';
import { GgufWriteError, UnknownGgmlTypeError } from './errors.ts';
import { openGguf, readGguf } from './reader.ts';
import { MemorySource } from './source.ts';
import { patternBytes, sampleGgufInput } from './testing/sample.ts';
import { GGML_TYPE, GGUF_VALUE_TYPE as T } from './types.ts';
import { arr, f32, i32, i64, str, toGgufValue, u32, u64, u8, type GgufArray, type GgufValue } from './value.ts';
import { encodeGguf, layoutGguf, writeGguf, type GgufTensorInput } from './writer.ts';

const dir = mkdtempSync(join(tmpdir(), 'gguf-writer-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('write then read gives identical metadata and tensor bytes', () => {
  const input = sampleGgufInput();
  const path = join(dir, 'roundtrip.gguf');
  writeGguf(path, input);
  assert.deepEqual(readFileSync(path), encodeGguf(input));

  const f = openGguf(path);
  try {
    assert.deepEqual([...f.metadata.entries()], [...(input.metadata as Map<string, GgufValue>).entries()]);
    for (const t of input.tensors ?? []) {
      const info = f.tensorInfo(t.name);
      assert.deepEqual([info.type, info.dims], [t.type, t.dims]);
      assert.deepEqual(f.readTensor(t.name), Buffer.from(t.data as Uint8Array));
    }
    // Writing what we read gives the same bytes again.
    const again = encodeGguf({
      metadata: f.metadata,
      tensors: f.tensorInfos.map((t) => ({ ...t, data: () => f.readTensor(t.name) })),
    });
    assert.deepEqual(again, readFileSync(path));
  } finally {
    f.dispose();
  }
});

test('tensor data is produced lazily, one tensor at a time, and aligned', () => {
  const produced: string[] = [];
  const tensors: GgufTensorInput[] = Array.from({ length: 6 }, (_, i) => ({
    name: `blk.${i}.ffn_down.weight`,
    type: GGML_TYPE.F16,
    dims: [1000 + i, 3], // odd sizes, so padding matters
    data: () => {
      produced.push(`blk.${i}`);
      return patternBytes((1000 + i) * 3 * 2, i);
    },
  }));
  const path = join(dir, 'lazy.gguf');
  writeGguf(path, { metadata: { 'general.architecture': 'llama' }, tensors });
  assert.deepEqual(produced, tensors.map((_, i) => `blk.${i}`));

  const f = openGguf(path);
  try {
    const layout = layoutGguf({ metadata: { 'general.architecture': 'llama' }, tensors });
    assert.equal(statSync(path).size, layout.totalSize);
    for (const [i, t] of f.tensorInfos.entries()) {
      assert.equal(t.fileOffset % 32, 0);
      assert.deepEqual(f.readTensor(t.name), Buffer.from(patternBytes((1000 + i) * 3 * 2, i)));
    }
    assert.deepEqual(f.tensorsForLayers(2, 4).map((t) => t.name), ['blk.2.ffn_down.weight', 'blk.3.ffn_down.weight']);
  } finally {
    f.dispose();
  }
});

test('plain JS metadata values get their obvious types; numbers need an explicit type', () => {
  const bytes = encodeGguf({
    metadata: {
      s: 'text',
      b: false,
      ss: ['a', 'b'],
      bs: [true, false],
      i32s: new Int32Array([1, -2]),
      f32s: new Float32Array([0.5]),
      u64s: new BigUint64Array([7n]),
      n: u32(7),
    },
  });
  const m = readGguf(new MemorySource(bytes)).metadata;
  assert.deepEqual(m.get('s'), str('text'));
  assert.deepEqual(m.get('b'), { type: T.BOOL, value: false });
  assert.deepEqual(m.get('ss'), arr(T.STRING, ['a', 'b']));
  assert.deepEqual(m.get('bs'), arr(T.BOOL, [true, false]));
  assert.deepEqual(m.get('i32s'), arr(T.INT32, [1, -2]));
  assert.deepEqual(m.get('f32s'), arr(T.FLOAT32, [0.5]));
  assert.deepEqual(m.get('u64s'), arr(T.UINT64, [7n]));
  assert.equal(m.getU32('n'), 7);

  assert.throws(() => encodeGguf({ metadata: { n: 7 as never } }), /wrap numbers with u32/);
  assert.throws(() => encodeGguf({ metadata: { n: [1, 2] as never } }), GgufWriteError);
  assert.throws(() => toGgufValue(7n as never, 'k'), GgufWriteError);
});

test('value constructors check integer ranges', () => {
  assert.throws(() => u32(-1), GgufWriteError);
  assert.throws(() => u32(2 ** 32), GgufWriteError);
  assert.throws(() => u8(256), GgufWriteError);
  assert.throws(() => i32(2 ** 31), GgufWriteError);
  assert.throws(() => i32(1.5), GgufWriteError);
  assert.throws(() => u64(-1n), GgufWriteError);
  assert.throws(() => i64(2n ** 63n), GgufWriteError);
  assert.throws(() => arr(T.INT32, [1, 2 ** 31]), GgufWriteError);
  assert.deepEqual(f32(1.5), { type: T.FLOAT32, value: 1.5 });
  // A hand-built value that is out of range is caught at encoding time too.
  assert.throws(() => encodeGguf({ metadata: { k: { type: T.UINT16, value: 70000 } } }), GgufWriteError);
  assert.throws(() => encodeGguf({ metadata: { k: { type: T.STRING, value: 5 } as never } }), GgufWriteError);
});

test('nested arrays round-trip up to the depth limit, and no deeper', () => {
  let v: GgufArray = arr(T.UINT8, [1]);
  for (let depth = 2; depth <= 4; depth++) v = arr(T.ARRAY, [v, arr(T.STRING, ['x'])]);
  const m = readGguf(new MemorySource(encodeGguf({ metadata: { deep: v } }))).metadata;
  assert.deepEqual(m.get('deep'), v);
  assert.throws(() => encodeGguf({ metadata: { deep: arr(T.ARRAY, [v]) } }), /nesting at most 4 deep/);
});

test('bad tensors are refused before anything is written', () => {
  const ok = { name: 'w', type: GGML_TYPE.F32, dims: [4], data: new Uint8Array(16) };
  const bad: Array<[Partial<GgufTensorInput>, RegExp | Function]> = [
    [{ data: new Uint8Array(15) }, /16 bytes/],
    [{ type: GGML_TYPE.Q4_0, dims: [33], data: new Uint8Array(18) }, /multiple of 32|% 32/],
    [{ type: 4 }, UnknownGgmlTypeError],
    [{ dims: [] }, /1\.\.4 dims/],
    [{ dims: [0] }, GgufWriteError],
    [{ dims: [1, 1, 1, 1, 4] }, GgufWriteError],
    [{ name: '' }, /tensor name/],
    [{ name: 'x'.repeat(64) }, /tensor name/],
  ];
  for (const [patch, expected] of bad) {
    const path = join(dir, 'refused.gguf');
    assert.throws(() => writeGguf(path, { tensors: [{ ...ok, ...patch }] }), expected as RegExp, JSON.stringify(patch));
    assert.equal(existsSync(path), false);
  }
  assert.throws(() => encodeGguf({ tensors: [ok, ok] }), /unique names/);
  assert.throws(() => encodeGguf({ metadata: { 'general.alignment': u32(48) }, tensors: [ok] }), /power of two/);
  assert.throws(() => encodeGguf({ metadata: { 'general.alignment': u64(32) }, tensors: [ok] }), /power of two/);
});

test('a failure while writing tensor data leaves no file behind', () => {
  const path = join(dir, 'failed.gguf');
  const tensors: GgufTensorInput[] = [
    { name: 'a', type: GGML_TYPE.F32, dims: [4], data: new Uint8Array(16) },
    { name: 'b', type: GGML_TYPE.F32, dims: [4], data: () => new Uint8Array(3) },
  ];
  assert.throws(() => writeGguf(path, { tensors }), /16 bytes/);
  assert.equal(existsSync(path), false);
});

test('vocab llama-bpe: re-writing the metadata gives the same file, byte for byte', () => {
  const path = vocabPath('llama-bpe');
  const original = openGguf(path);
  try {
    const copyPath = join(dir, 'llama-bpe-copy.gguf');
    writeGguf(copyPath, { metadata: original.metadata });
    assert.deepEqual(readFileSync(copyPath), readFileSync(path));

    const copy = openGguf(copyPath);
    assert.deepEqual([...copy.metadata.entries()], [...original.metadata.entries()]);
    assert.equal(copy.metadata.getStringArray('tokenizer.ggml.tokens').length, 128256);
    copy.dispose();
  } finally {
    original.dispose();
  }
});
