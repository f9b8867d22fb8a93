import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TensorShapeError, UnknownGgmlTypeError } from './errors.ts';
import { ggmlTypesFromSource } from './testing/ggml-source.ts';
import {
  GGML_TYPE,
  GGML_TYPES,
  GGUF_VALUE_TYPE,
  GGUF_VALUE_TYPES,
  elementCount,
  ggmlTypeInfo,
  ggufValueTypeInfo,
  ggufValueTypeName,
  isGgmlType,
  tensorByteSize,
} from './types.ts';

test('the ggml type table matches ggml.h, ggml.c type_traits and ggml-common.h block sizes', () => {
  const fromSource = ggmlTypesFromSource();
  assert.ok(fromSource.length >= 30, `parsed only ${fromSource.length} types from the ggml source`);
  for (const t of fromSource) {
    assert.deepEqual(ggmlTypeInfo(t.id), t, `GGML_TYPE_${t.name}`);
  }
  // And nothing in our table that ggml does not have.
  assert.deepEqual(
    GGML_TYPES.map((t) => t.id),
    fromSource.map((t) => t.id).sort((a, b) => a - b),
  );
});

test('GGML_TYPE maps names to ids', () => {
  assert.equal(GGML_TYPE.F32, 0);
  assert.equal(GGML_TYPE.F16, 1);
  assert.equal(GGML_TYPE.Q4_0, 2);
  assert.equal(GGML_TYPE.Q8_0, 8);
  assert.equal(GGML_TYPE.Q4_K, 12);
  assert.equal(GGML_TYPE.Q6_K, 14);
  assert.equal(GGML_TYPE.BF16, 30);
  assert.equal(GGML_TYPE.MXFP4, 39);
  assert.equal(new Set(GGML_TYPES.map((t) => t.id)).size, GGML_TYPES.length);
  assert.equal(new Set(GGML_TYPES.map((t) => t.name)).size, GGML_TYPES.length);
});

test('ggmlTypeInfo throws UnknownGgmlTypeError naming the value', () => {
  for (const bad of [4, 5, 31, 36, 43, 1000, -1]) {
    assert.equal(isGgmlType(bad), false);
    assert.throws(
      () => ggmlTypeInfo(bad),
      (err: unknown) => err instanceof UnknownGgmlTypeError && err.value === bad && err.message.includes(String(bad)),
    );
  }
  assert.deepEqual(ggmlTypeInfo(GGML_TYPE.Q4_K), { id: 12, name: 'Q4_K', ggmlName: 'q4_K', blockSize: 256, typeSize: 144 });
});

test('tensorByteSize for plain and block types', () => {
  assert.equal(tensorByteSize(GGML_TYPE.F32, [4096, 32000]), 4096 * 32000 * 4);
  assert.equal(tensorByteSize(GGML_TYPE.F16, [960]), 1920);
  assert.equal(tensorByteSize(GGML_TYPE.Q8_0, [64, 3]), 2 * 3 * 34);
  assert.equal(tensorByteSize(GGML_TYPE.Q4_K, [4096, 4096]), (4096 / 256) * 4096 * 144);
  assert.equal(tensorByteSize(GGML_TYPE.F32, []), 4); // a scalar
  assert.equal(elementCount([4, 3, 2]), 24);
});

test('tensorByteSize rejects bad shapes with TensorShapeError', () => {
  const bad: Array<[number, number[]]> = [
    [GGML_TYPE.Q4_0, [33]], // not a whole number of blocks
    [GGML_TYPE.Q4_K, [128, 2]],
    [GGML_TYPE.F32, [0]],
    [GGML_TYPE.F32, [-1]],
    [GGML_TYPE.F32, [1.5]],
    [GGML_TYPE.F32, [Number.NaN]],
    [GGML_TYPE.F32, [1, 1, 1, 1, 1]], // more than 4 dims
    [GGML_TYPE.F32, [2 ** 40, 2 ** 40]], // elements overflow
    [GGML_TYPE.F64, [2 ** 30, 2 ** 21]], // bytes overflow
  ];
  for (const [type, dims] of bad) {
    assert.throws(() => tensorByteSize(type, dims), TensorShapeError, `[${dims.join(', ')}]`);
  }
  assert.throws(() => tensorByteSize(4, [32]), UnknownGgmlTypeError);
});

test('the GGUF value type table', () => {
  assert.equal(GGUF_VALUE_TYPES.length, 13);
  assert.deepEqual(
    GGUF_VALUE_TYPES.map((t) => t.id),
    [...Array(13).keys()],
  );
  assert.equal(GGUF_VALUE_TYPE.UINT8, 0);
  assert.equal(GGUF_VALUE_TYPE.STRING, 8);
  assert.equal(GGUF_VALUE_TYPE.ARRAY, 9);
  assert.equal(GGUF_VALUE_TYPE.FLOAT64, 12);
  assert.equal(ggufValueTypeInfo(GGUF_VALUE_TYPE.UINT64)?.minSize, 8);
  assert.equal(ggufValueTypeInfo(13), undefined);
  assert.equal(ggufValueTypeName(4), 'UINT32');
  assert.equal(ggufValueTypeName(99), 'type 99');
});
