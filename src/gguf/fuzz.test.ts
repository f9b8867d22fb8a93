// Hostile input: every mutated or hand-crafted file must either parse or raise InvalidGgufError. Any other
// exception (RangeError, TypeError, out of memory ...) or a hang fails the test.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ByteWriter } from './byte-writer.ts';
import { GgufWriteError, InvalidGgufError } from './errors.ts';
import { readGguf } from './reader.ts';
import { MemorySource } from './source.ts';
import { sampleGgufBytes } from './testing/sample.ts';
import { GGML_TYPE, GGUF_VALUE_TYPE as T } from './types.ts';
import { encodeGguf } from './writer.ts';
import { mulberry32 } from '../util/random.ts';

const CASES = 10_000;
const SEED = 0x5eed_1234;

/** The project's seeded PRNG (mulberry32). */
const prng = mulberry32;

// Values that tend to break parsers: zero, all ones, sign boundaries, sizes near 2^32 / 2^63 / 2^64.
const INTERESTING: Array<[width: 1 | 2 | 4 | 8, value: bigint]> = [
  [1, 0n], [1, 0xffn], [1, 0x7fn], [1, 0x80n], [1, 9n], [1, 13n],
  [2, 0xffffn], [2, 0x8000n],
  [4, 0n], [4, 1n], [4, 4n], [4, 5n], [4, 100n], [4, 0x7fffffffn], [4, 0x80000000n], [4, 0xffffffffn],
  [8, 0n], [8, 1n], [8, 2n ** 40n], [8, 2n ** 53n + 1n], [8, 2n ** 63n], [8, 2n ** 64n - 1n], [8, 0xffffffffn],
];

function mutate(base: Buffer, rand: () => number, headerEnd: number): { bytes: Buffer; steps: string[] } {
  let b = Buffer.from(base);
  const steps: string[] = [];
  const int = (n: number) => Math.floor(rand() * n);
  // Most interesting structure is in the header, so aim there most of the time.
  const pos = (len: number) => (rand() < 0.8 ? int(Math.min(headerEnd, len)) : int(len));
  const nSteps = 1 + int(3);
  for (let s = 0; s < nSteps && b.length > 0; s++) {
    const kind = int(7);
    if (kind === 0) {
      const flips = 1 + int(8);
      for (let i = 0; i < flips; i++) {
        const at = pos(b.length);
        b[at] = (b[at] as number) ^ (1 << int(8));
      }
      steps.push(`flip ${flips} bits`);
    } else if (kind === 1) {
      const [width, value] = INTERESTING[int(INTERESTING.length)] as [number, bigint];
      const at = pos(b.length);
      for (let i = 0; i < width && at + i < b.length; i++) b[at + i] = Number((value >> BigInt(8 * i)) & 0xffn);
      steps.push(`overwrite ${width}B ${value} at ${at}`);
    } else if (kind === 2) {
      const at = int(b.length);
      b = b.subarray(0, at);
      steps.push(`truncate at ${at}`);
    } else if (kind === 3) {
      const from = pos(b.length);
      const len = 1 + int(64);
      const at = pos(b.length);
      b = Buffer.concat([b.subarray(0, at), b.subarray(from, from + len), b.subarray(at)]);
      steps.push(`duplicate ${len}B from ${from} at ${at}`);
    } else if (kind === 4) {
      const at = pos(b.length);
      const len = 1 + int(32);
      b = Buffer.concat([b.subarray(0, at), b.subarray(at + len)]);
      steps.push(`delete ${len}B at ${at}`);
    } else if (kind === 5) {
      const at = pos(b.length);
      const extra = Buffer.from(Array.from({ length: 1 + int(16) }, () => int(256)));
      b = Buffer.concat([b.subarray(0, at), extra, b.subarray(at)]);
      steps.push(`insert ${extra.length}B at ${at}`);
    } else {
      const at = pos(b.length);
      b.fill(rand() < 0.5 ? 0 : 0xff, at, Math.min(b.length, at + 1 + int(16)));
      steps.push(`fill at ${at}`);
    }
  }
  return { bytes: b, steps };
}

/** Parses `bytes`; if they parse, uses every reading API and re-writes the result. */
function exercise(bytes: Buffer): 'parsed' | 'rejected' {
  let file;
  try {
    file = readGguf(new MemorySource(bytes));
  } catch (err) {
    if (err instanceof InvalidGgufError) return 'rejected';
    throw err;
  }
  const names = file.tensorInfos.map((t) => t.name);
  for (const n of names) assert.equal(file.readTensor(n).length, file.tensorInfo(n).byteSize);
  file.readTensors(names);
  file.tensorsForLayers(0, 1000);
  // What parses must re-encode to the same metadata (or be refused by the writer's stricter rules).
  let again: Buffer | undefined;
  try {
    again = encodeGguf({
      metadata: file.metadata,
      tensors: file.tensorInfos.map((t) => ({ ...t, data: file.readTensor(t.name) })),
    });
  } catch (err) {
    if (!(err instanceof GgufWriteError)) throw err;
  }
  if (again) {
    const reread = readGguf(new MemorySource(again));
    assert.deepEqual([...reread.metadata.entries()], [...file.metadata.entries()]);
    for (const n of names) assert.deepEqual(reread.readTensor(n), file.readTensor(n));
  }
  return 'parsed';
}

test(`${CASES} mutated files each parse or raise InvalidGgufError`, (t) => {
  const base = sampleGgufBytes();
  const headerEnd = readGguf(new MemorySource(base)).dataOffset;
  const rand = prng(SEED);
  const counts = { parsed: 0, rejected: 0 };
  for (let i = 0; i < CASES; i++) {
    const { bytes, steps } = mutate(base, rand, headerEnd);
    try {
      counts[exercise(bytes)]++;
    } catch (err) {
      assert.fail(
        `case ${i} (${steps.join(', ')}) threw ${(err as Error).name}: ${(err as Error).message}\n` +
          `bytes (base64): ${bytes.toString('base64')}`,
      );
    }
  }
  t.diagnostic(`${counts.parsed} parsed, ${counts.rejected} rejected with InvalidGgufError`);
  // Both outcomes must occur, or the mutations are not reaching the parser.
  assert.ok(counts.parsed > 100, `only ${counts.parsed} mutated files parsed`);
  assert.ok(counts.rejected > 1000, `only ${counts.rejected} mutated files were rejected`);
});

// ---------------------------------------------------------------------------------------------------------
// Hand-written hostile files.

/** "GGUF", version 3, tensor count, kv count, then whatever `body` writes. */
function hostile(nTensors: bigint, nKv: bigint, body: (w: ByteWriter) => void = () => {}): Buffer {
  const w = new ByteWriter();
  w.bytes(Buffer.from('GGUF'));
  w.u32(3);
  w.u64(nTensors);
  w.u64(nKv);
  body(w);
  return Buffer.from(w.view());
}

/** Spare bytes after the hostile field, so that the counts before it pass their bounds checks. */
const SLACK = Buffer.alloc(64);

/** One metadata entry 'a' whose value type and value `value` writes. */
function oneKv(value: (w: ByteWriter) => void): Buffer {
  return hostile(0n, 1n, (w) => {
    w.string('a');
    value(w);
    w.bytes(SLACK);
  });
}

/** One array 'a' of `count` items of `itemType`, followed by `items`. */
function arrayOf(itemType: number, count: bigint, items: (w: ByteWriter) => void = () => {}): Buffer {
  return oneKv((w) => {
    w.u32(T.ARRAY);
    w.u32(itemType);
    w.u64(count);
    items(w);
  });
}

interface TensorSpec {
  name?: string;
  dims?: bigint[];
  type?: number;
  offset?: bigint;
}

/** Tensor infos (defaults: 't', F32 [4], offset 0), padding to 32, then `dataBytes` bytes of data. */
function withTensors(specs: TensorSpec[], dataBytes: number): Buffer {
  return hostile(BigInt(specs.length), 0n, (w) => {
    for (const { name = 't', dims = [4n], type = GGML_TYPE.F32, offset = 0n } of specs) {
      w.string(name);
      w.u32(dims.length);
      for (const d of dims) w.u64(d);
      w.u32(type);
      w.u64(offset);
    }
    w.pad(32);
    w.bytes(Buffer.alloc(dataBytes));
  });
}

const HOSTILE: Array<[string, Buffer, RegExp]> = [
  ['string length 2^63', hostile(0n, 1n, (w) => (w.u64(2n ** 63n), w.bytes(SLACK))), /length of metadata key 0/],
  ['array count 2^40 of u8', arrayOf(T.UINT8, 2n ** 40n), /length of array 'a'/],
  ['array count 2^62 of u64', arrayOf(T.UINT64, 2n ** 62n), /length of array 'a'/],
  ['array count 2^40 of strings', arrayOf(T.STRING, 2n ** 40n), /length of array 'a'/],
  ['string item of length 2^64-1', arrayOf(T.STRING, 1n, (w) => w.u64(2n ** 64n - 1n)), /item 0 of array 'a'/],
  [
    'arrays nested 1000 deep',
    arrayOf(T.ARRAY, 1n, (w) => {
      for (let i = 0; i < 1000; i++) {
        w.u32(T.ARRAY);
        w.u64(1n);
      }
    }),
    /nested at most 4/,
  ],
  ['tensor count 2^62', hostile(2n ** 62n, 0n), /tensor count/],
  ['kv count 2^64-1', hostile(0n, 2n ** 64n - 1n), /key-value count/],
  ['unknown value type', oneKv((w) => w.u32(13)), /type of 'a'/],
  ['empty key', hostile(0n, 1n, (w) => (w.string(''), w.u32(T.UINT8), w.bytes(SLACK))), /non-empty key/],
  [
    'duplicate key',
    hostile(0n, 2n, (w) => {
      for (let i = 0; i < 2; i++) {
        w.string('k');
        w.u32(T.UINT8);
        w.u8(0);
      }
    }),
    /unique keys/,
  ],
  [
    'alignment 3',
    hostile(0n, 1n, (w) => (w.string('general.alignment'), w.u32(T.UINT32), w.u32(3))),
    /power of two/,
  ],
  [
    'alignment as a string',
    hostile(0n, 1n, (w) => (w.string('general.alignment'), w.u32(T.STRING), w.string('32'))),
    /UINT32/,
  ],
  ['n_dims 100', hostile(1n, 0n, (w) => (w.string('t'), w.u32(100), w.bytes(SLACK))), /n_dims of tensor 't'/],
  ['dim 0', withTensors([{ dims: [0n] }], 0), /dim 0 of tensor 't'/],
  ['dim 2^63', withTensors([{ dims: [2n ** 63n] }], 0), /dim 0 of tensor 't'/],
  ['elements overflow', withTensors([{ dims: [2n ** 30n, 2n ** 30n, 2n ** 30n] }], 0), /shape of tensor 't'/],
  ['row not whole blocks', withTensors([{ dims: [33n], type: GGML_TYPE.Q4_0 }], 32), /shape of tensor 't'/],
  ['removed tensor type 4', withTensors([{ dims: [32n], type: 4 }], 32), /type of tensor 't'/],
  ['tensor type 2^31', withTensors([{ type: 2 ** 31 }], 32), /type of tensor 't'/],
  ['tensor offset past EOF', withTensors([{ offset: 1024n }], 16), /data offset of tensor 't'/],
  ['tensor offset 2^63', withTensors([{ offset: 2n ** 63n }], 16), /data offset of tensor 't'/],
  ['tensor data past EOF', withTensors([{ offset: 32n }], 40), /data of tensor 't'/],
  ['tensor data cut short', withTensors([{}], 15), /data of tensor 't'/],
  ['misaligned tensor offset', withTensors([{ name: 'a' }, { name: 'b', offset: 16n }], 64), /offset of tensor 'b'/],
  ['duplicate tensor names', withTensors([{ name: 'a' }, { name: 'a', offset: 32n }], 64), /unique tensor names/],
  [
    'no room for the data section',
    hostile(1n, 0n, (w) => (w.string('t'), w.u32(1), w.u64(4n), w.u32(GGML_TYPE.F32), w.u64(0n))),
    /data section/,
  ],
];

for (const [name, bytes, where] of HOSTILE) {
  test(`hostile file: ${name}`, () => {
    assert.throws(
      () => readGguf(new MemorySource(bytes)),
      (err: unknown) => {
        assert.ok(err instanceof InvalidGgufError, `expected InvalidGgufError, got ${String(err)}`);
        assert.match(err.message, where);
        assert.ok(err.offset >= 0 && err.offset <= bytes.length, `offset ${err.offset} outside the file`);
        assert.ok(err.expected.length > 0 && err.actual.length > 0 && err.hint.length > 0);
        return true;
      },
    );
  });
}

test('the hostile-file builders make valid files when given sane values', () => {
  // Guards the builders themselves: the same layouts with good values are accepted.
  const q4 = { name: 'b', dims: [32n], type: GGML_TYPE.Q4_0, offset: 32n };
  const f = readGguf(new MemorySource(withTensors([{}, q4], 64)));
  assert.deepEqual(f.readTensor('t'), Buffer.alloc(16));
  assert.equal(f.tensorInfo('b').byteSize, 18);
  const m = readGguf(new MemorySource(arrayOf(T.STRING, 2n, (w) => (w.string('x'), w.string('yz'))))).metadata;
  assert.deepEqual(m.getStringArray('a'), ['x', 'yz']);
});
