import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { VOCAB_NAMES, vocabPath } from '../model/testing/vocab.ts';
import { GgufKeyError, GgufTensorNotFoundError, InvalidGgufError } from './errors.ts';
import { openGguf, readGguf } from './reader.ts';
import { MemorySource } from './source.ts';
import { plainValue, readWithNodeLlamaCpp } from './testing/reference.ts';
import { sampleGgufBytes, sampleGgufInput } from './testing/sample.ts';
import { GGML_TYPE, GGUF_VALUE_TYPE as T } from './types.ts';
import { toGgufValue, u32 } from './value.ts';
import { encodeGguf } from './writer.ts';

const dir = mkdtempSync(join(tmpdir(), 'gguf-reader-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function readSample() {
  return readGguf(new MemorySource(sampleGgufBytes()));
}

test('reads the header, metadata in order and the tensor index', () => {
  const f = readSample();
  assert.equal(f.version, 3);
  assert.equal(f.alignment, 32);
  assert.equal(f.dataOffset % 32, 0);
  const input = sampleGgufInput();
  const expected = [...(input.metadata as Map<string, never>).entries()].map(([k, v]) => [k, toGgufValue(v, k)]);
  assert.deepEqual([...f.metadata.entries()], expected);

  assert.deepEqual(
    f.tensorInfos.map((t) => [t.name, t.dims, t.typeName, t.offset, t.byteSize]),
    [
      ['token_embd.weight', [4, 3], 'F32', 0, 48],
      ['blk.0.attn_q.weight', [8], 'F16', 64, 16],
      ['blk.1.ffn_up.weight', [32, 2], 'Q8_0', 96, 68],
    ],
  );
  for (const [i, t] of f.tensorInfos.entries()) {
    assert.equal(t.fileOffset, f.dataOffset + t.offset);
    assert.deepEqual(f.readTensor(t.name), Buffer.from(input.tensors?.[i]?.data as Uint8Array));
  }
  assert.equal(f.elementCount('blk.1.ffn_up.weight'), 64);
});

test('typed getters return values and throw GgufKeyError naming key and expected type', () => {
  const m = readSample().metadata;
  assert.equal(m.getString('general.architecture'), 'llama');
  assert.equal(m.getU32('llama.block_count'), 2);
  assert.equal(m.getNumber('llama.block_count'), 2);
  assert.equal(m.getNumber('llama.context_length'), 2048); // UINT64 within safe range
  assert.equal(m.getU64('llama.context_length'), 2048n);
  assert.equal(m.getF32('llama.rope.freq_base'), 10000);
  assert.equal(m.getI32('sample.i32'), -7);
  assert.equal(m.getBool('sample.bool'), true);
  assert.deepEqual(m.getStringArray('tokenizer.ggml.tokens'), ['<s>', '</s>', 'hello', ' world', 'é']);
  assert.ok(m.getF32Array('tokenizer.ggml.scores') instanceof Float32Array);
  assert.ok(m.getI32Array('tokenizer.ggml.token_type') instanceof Int32Array);
  assert.deepEqual([...m.getNumberArray('tokenizer.ggml.token_type')], [3, 3, 1, 1, 1]);
  assert.equal(m.getArray('sample.nested').itemType, T.ARRAY);

  // Fallbacks apply only to missing keys.
  assert.equal(m.getNumber('llama.rope.scaling.factor', 1), 1);
  assert.equal(m.getString('general.missing', 'x'), 'x');

  const keyError = (key: string, expected: RegExp) => (err: unknown) =>
    err instanceof GgufKeyError && err.key === key && expected.test(err.expected) && err.message.includes(key);
  assert.throws(() => m.getString('general.missing'), keyError('general.missing', /STRING/));
  assert.throws(() => m.getU32('general.architecture'), keyError('general.architecture', /UINT32/));
  assert.throws(() => m.getU32('llama.context_length'), keyError('llama.context_length', /UINT32/));
  assert.throws(() => m.getNumber('sample.i64'), keyError('sample.i64', /safe integer/));
  assert.throws(() => m.getStringArray('tokenizer.ggml.scores'), keyError('tokenizer.ggml.scores', /STRING/));
  assert.throws(() => m.getNumberArray('sample.u64s'), keyError('sample.u64s', /numbers/));
});

test('tensorsForLayers, readTensors and missing tensors', () => {
  const f = readSample();
  assert.deepEqual(f.tensorsForLayers(0, 1).map((t) => t.name), ['blk.0.attn_q.weight']);
  assert.deepEqual(f.tensorsForLayers(1, 2).map((t) => t.name), ['blk.1.ffn_up.weight']);
  assert.deepEqual(f.tensorsForLayers(0, 99).length, 2);
  assert.deepEqual(f.tensorsForLayers(1, 1), []);
  assert.deepEqual(f.nonLayerTensors().map((t) => t.name), ['token_embd.weight']);

  const names = ['blk.1.ffn_up.weight', 'token_embd.weight'];
  const many = f.readTensors(names);
  assert.deepEqual([...many.keys()], names); // in the order asked for
  for (const n of names) assert.deepEqual(many.get(n), f.readTensor(n));

  assert.equal(f.hasTensor('output.weight'), false);
  assert.throws(() => f.readTensor('output.weight'), GgufTensorNotFoundError);
  assert.throws(() => f.readTensors(['token_embd.weight', 'nope']), GgufTensorNotFoundError);
});

test('openGguf reads from disk; dispose closes the file', () => {
  const path = join(dir, 'sample.gguf');
  writeFileSync(path, sampleGgufBytes());
  const f = openGguf(path);
  assert.equal(f.size, sampleGgufBytes().length);
  assert.deepEqual(f.readTensor('blk.0.attn_q.weight'), readSample().readTensor('blk.0.attn_q.weight'));
  f.dispose();
  assert.throws(() => f.readTensor('blk.0.attn_q.weight'));
});

test('a custom alignment is honoured', () => {
  const input = sampleGgufInput();
  const metadata = new Map(input.metadata as Map<string, never>);
  metadata.set('general.alignment', u32(256) as never);
  const f = readGguf(new MemorySource(encodeGguf({ ...input, metadata })));
  assert.equal(f.alignment, 256);
  assert.equal(f.dataOffset % 256, 0);
  assert.deepEqual(
    f.tensorInfos.map((t) => t.offset),
    [0, 256, 512],
  );
});

test('magic and version are checked first, with hints', () => {
  const good = sampleGgufBytes();
  const withVersion = (v: number) => {
    const b = Buffer.from(good);
    b.writeUInt32LE(v, 4);
    return b;
  };
  // v2 has the same layout as v3.
  assert.equal(readGguf(new MemorySource(withVersion(2))).version, 2);

  const rejects = (bytes: Uint8Array, pattern: RegExp, offset: number) =>
    assert.throws(
      () => readGguf(new MemorySource(bytes)),
      (err: unknown) => err instanceof InvalidGgufError && pattern.test(err.message) && err.offset === offset,
    );
  rejects(withVersion(1), /v1 is no longer supported/, 4);
  rejects(withVersion(0), /version/, 4);
  rejects(withVersion(4), /not supported/, 4);
  rejects(withVersion(0x03000000), /big-endian/, 4);
  rejects(Buffer.from('ggjt\x03\x00\x00\x00', 'latin1'), /pre-GGUF/, 0);
  rejects(Buffer.from('PK\x03\x04 not a gguf', 'latin1'), /not a GGUF file/, 0);
  rejects(Buffer.alloc(0), /not a GGUF file/, 0);
  rejects(Buffer.from('GGU'), /not a GGUF file/, 0);
  rejects(good.subarray(0, 6), /truncated/, 4);
});

for (const name of VOCAB_NAMES) {
  test(`vocab ${name}: metadata matches node-llama-cpp's reader`, async () => {
    const path = vocabPath(name);
    const f = openGguf(path);
    try {
      const ref = await readWithNodeLlamaCpp(path);
      assert.equal(f.version, ref.version);
      assert.deepEqual([...f.metadata.keys()].sort(), [...ref.metadata.keys()].sort());
      for (const [key, value] of f.metadata) assert.deepEqual(plainValue(value), ref.metadata.get(key), key);
      assert.equal(f.tensorInfos.length, ref.tensors.length);
    } finally {
      f.dispose();
    }
  });
}

test('vocab llama-bpe: Llama 3 tokenizer metadata', () => {
  const f = openGguf(vocabPath('llama-bpe'));
  const m = f.metadata;
  assert.equal(m.getString('general.architecture'), 'llama');
  assert.equal(m.getString('tokenizer.ggml.model'), 'gpt2');
  assert.equal(m.getString('tokenizer.ggml.pre'), 'llama-bpe');
  const tokens = m.getStringArray('tokenizer.ggml.tokens');
  assert.equal(tokens.length, 128256);
  assert.equal(m.getI32Array('tokenizer.ggml.token_type').length, 128256);
  assert.equal(tokens[m.getU32('tokenizer.ggml.bos_token_id')], '<|begin_of_text|>');
  assert.ok(m.getStringArray('tokenizer.ggml.merges').length > 100_000);
  assert.equal(f.tensorInfos.length, 0);
  f.dispose();
});

test('the sample file reads the same with node-llama-cpp (tensor index included)', async () => {
  const path = join(dir, 'sample-ref.gguf');
  writeFileSync(path, sampleGgufBytes());
  const ref = await readWithNodeLlamaCpp(path);
  const f = readSample();
  for (const [key, value] of f.metadata) assert.deepEqual(plainValue(value), ref.metadata.get(key), key);
  assert.deepEqual(
    f.tensorInfos.map((t) => ({ name: t.name, dims: t.dims, type: t.type, offset: t.offset, fileOffset: t.fileOffset })),
    ref.tensors,
  );
  assert.equal(GGML_TYPE.Q8_0, ref.tensors[2]?.type);
});

test('openGguf names the file in InvalidGgufError and closes it', () => {
  const path = join(dir, 'truncated.gguf');
  writeFileSync(path, sampleGgufBytes().subarray(0, 100));
  assert.throws(
    () => openGguf(path),
    (err: unknown) => err instanceof InvalidGgufError && err.path === path && err.message.includes(path),
  );
});
