// GGUF reader: header, metadata of every type, tensor index. Tensor data stays in the file until asked for.
//
// Layout (all little endian; GGUF v2 and v3 share it):
//   "GGUF" | u32 version | u64 n_tensors | u64 n_kv
//   n_kv x  { string key | u32 value_type | value }
//   n_tensors x { string name | u32 n_dims | u64 dims[n_dims] | u32 ggml_type | u64 offset }
//   padding to `general.alignment` (default 32) | tensor data, each tensor at data_offset + offset
// Everything read from the file is bounded by the bytes that remain: a malformed, truncated or hostile file
// raises InvalidGgufError (with the byte offset) before any large allocation.
import { endianness } from 'node:os';
import { Cursor } from './cursor.ts';
import { InvalidGgufError, TensorShapeError } from './errors.ts';
import { GgufFile, type GgufTensorInfo } from './file.ts';
import { GgufMetadata } from './metadata.ts';
import { FileSource, type ByteSource } from './source.ts';
import {
  GGML_MAX_DIMS,
  GGUF_ALIGNMENT_KEY,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VALUE_TYPE as T,
  ggmlTypeInfo,
  ggufValueTypeInfo,
  ggufValueTypeName,
  isGgmlType,
  tensorByteSize,
} from './types.ts';
import { MAX_ARRAY_DEPTH, TYPED_ARRAY_OF, isNumericItemType, type GgufArray, type GgufValue } from './value.ts';

// Smallest encodings, used to bound counts by the bytes left in the file.
const MIN_KV_BYTES = 8 + 1 + 4 + 1; // key length, one key byte, value type, a one-byte value
const MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8; // name length, n_dims, type, offset

const hostIsLittleEndian = endianness() === 'LE';

/** Opens a GGUF file and reads its header and tensor index (not the tensor data). */
export function openGguf(path: string): GgufFile {
  const source = new FileSource(path);
  try {
    return readGguf(source);
  } catch (err) {
    source.close();
    throw err instanceof InvalidGgufError ? err.withPath(path) : err;
  }
}

/** Reads the header and tensor index of GGUF bytes. The returned file owns `source` (dispose closes it). */
export function readGguf(source: ByteSource): GgufFile {
  const c = new Cursor(source);
  const version = readPreamble(c);

  const nTensors = c.count('tensor count', MIN_TENSOR_INFO_BYTES);
  const nKv = c.count('metadata key-value count', MIN_KV_BYTES);

  const metadata = new GgufMetadata();
  for (let i = 0; i < nKv; i++) {
    const at = c.pos;
    const key = c.string(`metadata key ${i}`);
    if (key.length === 0) throw c.invalid(`metadata key ${i}`, 'a non-empty key', 'an empty string', CORRUPT, at);
    if (metadata.has(key)) throw c.invalid(`metadata key ${i}`, 'unique keys', `'${key}' twice`, CORRUPT, at);
    const typeAt = c.pos;
    const type = c.u32(`value type of '${key}'`);
    metadata.set(key, readValue(c, type, key, typeAt, 0));
  }

  const alignment = readAlignment(c, metadata);

  const infos: Array<{ name: string; dims: number[]; type: number; offset: number; at: number }> = [];
  const names = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    const at = c.pos;
    const name = c.string(`name of tensor ${i}`);
    if (names.has(name)) throw c.invalid(`tensor ${i}`, 'unique tensor names', `'${name}' twice`, CORRUPT, at);
    names.add(name);
    infos.push({ name, ...readTensorShape(c, name), at });
  }

  // The data section starts at the next multiple of the alignment after the tensor index.
  const dataOffset = nTensors > 0 ? alignUp(c.pos, alignment) : Math.min(alignUp(c.pos, alignment), source.size);
  if (dataOffset > source.size) {
    throw c.invalid('data section', `a file of at least ${dataOffset} bytes`, `${source.size} bytes`, TRUNCATED);
  }

  const tensorInfos: GgufTensorInfo[] = infos.map(({ name, dims, type, offset, at }) => {
    const byteSize = tensorByteSize(type, dims); // shape was validated in readTensorShape
    if (offset % alignment !== 0) {
      throw c.invalid(`offset of tensor '${name}'`, `a multiple of ${alignment}`, String(offset), CORRUPT, at);
    }
    if (dataOffset + offset + byteSize > source.size) {
      throw c.invalid(
        `data of tensor '${name}'`,
        `bytes ${dataOffset + offset}..${dataOffset + offset + byteSize} within the file`,
        `file size ${source.size}`,
        TRUNCATED,
        at,
      );
    }
    const typeName = ggmlTypeInfo(type).name;
    return Object.freeze({ name, dims, type, typeName, offset, fileOffset: dataOffset + offset, byteSize });
  });

  return new GgufFile({ source, version, metadata, tensorInfos, alignment, dataOffset });
}

const CORRUPT = 'the file is corrupt; convert the model again';
const TRUNCATED = 'the file is truncated: download or convert it again';

/** Magic and version, checked before anything else. */
function readPreamble(c: Cursor): number {
  if (c.remaining < 4) {
    throw c.invalid('magic', `"${GGUF_MAGIC}"`, `a ${c.remaining}-byte file`, 'this is not a GGUF file');
  }
  const magic = c.bytes(4, 'magic');
  if (magic.toString('latin1') !== GGUF_MAGIC) {
    const found = magic.toString('latin1');
    const legacy = ['ggml', 'ggmf', 'ggjt', 'lmgg', 'fmgg', 'tjgg'].includes(found);
    throw c.invalid(
      'magic',
      `"${GGUF_MAGIC}" (47 47 55 46)`,
      `${JSON.stringify(found)} (${magic.toString('hex').match(/../g)?.join(' ')})`,
      legacy
        ? 'this is a pre-GGUF ggml model; convert it with llama.cpp convert_hf_to_gguf.py from the original weights'
        : 'this is not a GGUF file; check the path',
      0,
    );
  }
  const version = c.u32('version');
  if (version === 1) {
    const hint = 'GGUF v1 is no longer supported; re-convert the model with a current llama.cpp';
    throw c.invalid('version', '2 or 3', '1', hint, 4);
  }
  if (version === 2 || version === 3) return version;
  const hint =
    (version & 0xffff) === 0
      ? 'the version looks byte-swapped: this is a big-endian GGUF; convert it to little endian'
      : 'this GGUF version is not supported; version 0 means a corrupt file, newer ones need a newer reader';
  throw c.invalid('version', '2 or 3', String(version), hint, 4);
}

/** One metadata value of `type` (the u32 just read at `typeAt`). */
function readValue(c: Cursor, type: number, key: string, typeAt: number, depth: number): GgufValue {
  const what = `value of '${key}'`;
  switch (type) {
    case T.UINT8: return { type, value: c.u8(what) };
    case T.INT8: return { type, value: c.i8(what) };
    case T.UINT16: return { type, value: c.u16(what) };
    case T.INT16: return { type, value: c.i16(what) };
    case T.UINT32: return { type, value: c.u32(what) };
    case T.INT32: return { type, value: c.i32(what) };
    case T.FLOAT32: return { type, value: c.f32(what) };
    case T.FLOAT64: return { type, value: c.f64(what) };
    case T.UINT64: return { type, value: c.u64(what) };
    case T.INT64: return { type, value: c.i64(what) };
    case T.BOOL: return { type, value: c.u8(what) !== 0 };
    case T.STRING: return { type, value: c.string(what) };
    case T.ARRAY: return readArray(c, key, depth + 1);
    default:
      throw c.invalid(`type of '${key}'`, 'a GGUF value type 0..12', String(type), CORRUPT, typeAt);
  }
}

/** An array value: u32 item type, u64 count, items. `depth` is 1 for a top-level array. */
function readArray(c: Cursor, key: string, depth: number): GgufArray {
  const at = c.pos;
  if (depth > MAX_ARRAY_DEPTH) {
    throw c.invalid(`array '${key}'`, `arrays nested at most ${MAX_ARRAY_DEPTH} deep`, `depth ${depth}`, CORRUPT, at);
  }
  const itemType = c.u32(`item type of array '${key}'`);
  const info = ggufValueTypeInfo(itemType);
  if (!info) {
    throw c.invalid(`item type of array '${key}'`, 'a GGUF value type 0..12', String(itemType), CORRUPT, at);
  }
  const n = c.count(`length of array '${key}'`, info.minSize);
  const what = `items of array '${key}'`;

  if (isNumericItemType(itemType)) {
    const bytes = c.bytes(n * info.minSize, what);
    const copy = new Uint8Array(bytes.byteLength);
    copy.set(bytes);
    if (!hostIsLittleEndian) swapToHost(Buffer.from(copy.buffer), info.minSize);
    return { type: T.ARRAY, itemType, value: new TYPED_ARRAY_OF[itemType](copy.buffer) } as GgufArray;
  }
  if (itemType === T.BOOL) {
    const bytes = c.bytes(n, what);
    const value = new Array<boolean>(n);
    for (let i = 0; i < n; i++) value[i] = bytes[i] !== 0;
    return { type: T.ARRAY, itemType, value };
  }
  if (itemType === T.STRING) {
    return { type: T.ARRAY, itemType, value: c.strings(n, `array '${key}'`) };
  }
  // Nested arrays: each item is itself { u32 item type, u64 count, items }.
  const value = new Array<GgufArray>(n);
  for (let i = 0; i < n; i++) value[i] = readArray(c, `${key}[${i}]`, depth + 1);
  return { type: T.ARRAY, itemType: T.ARRAY, value };
}

function swapToHost(bytes: Buffer, size: number): void {
  if (size === 2) bytes.swap16();
  else if (size === 4) bytes.swap32();
  else if (size === 8) bytes.swap64();
}

/** `general.alignment`: optional, UINT32, a power of two. */
function readAlignment(c: Cursor, metadata: GgufMetadata): number {
  const v = metadata.get(GGUF_ALIGNMENT_KEY);
  if (v === undefined) return GGUF_DEFAULT_ALIGNMENT;
  if (v.type !== T.UINT32) {
    throw c.invalid(GGUF_ALIGNMENT_KEY, 'a UINT32 value', ggufValueTypeName(v.type), CORRUPT);
  }
  if (v.value === 0 || (v.value & (v.value - 1)) !== 0) {
    throw c.invalid(GGUF_ALIGNMENT_KEY, 'a power of two', String(v.value), CORRUPT);
  }
  return v.value;
}

/** n_dims, dims, type and offset of one tensor, with the shape checked against the type. */
function readTensorShape(c: Cursor, name: string): { dims: number[]; type: number; offset: number } {
  const nDimsAt = c.pos;
  const nDims = c.u32(`n_dims of tensor '${name}'`);
  if (nDims > GGML_MAX_DIMS) {
    throw c.invalid(`n_dims of tensor '${name}'`, `at most ${GGML_MAX_DIMS}`, String(nDims), CORRUPT, nDimsAt);
  }
  const dims: number[] = [];
  for (let j = 0; j < nDims; j++) {
    const at = c.pos;
    const d = c.u64(`dim ${j} of tensor '${name}'`);
    if (d < 1n || d > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw c.invalid(`dim ${j} of tensor '${name}'`, `1..${Number.MAX_SAFE_INTEGER}`, String(d), CORRUPT, at);
    }
    dims.push(Number(d));
  }
  const typeAt = c.pos;
  const type = c.u32(`type of tensor '${name}'`);
  if (!isGgmlType(type)) {
    throw c.invalid(
      `type of tensor '${name}'`,
      'a ggml_type id listed in src/gguf/types.ts',
      String(type),
      'the type may have been removed from ggml or be newer than this code; re-quantize with a current llama.cpp',
      typeAt,
    );
  }
  try {
    tensorByteSize(type, dims);
  } catch (err) {
    if (!(err instanceof TensorShapeError)) throw err;
    throw c.invalid(`shape of tensor '${name}'`, err.expected, err.actual, CORRUPT, nDimsAt);
  }
  const offsetAt = c.pos;
  const offset = c.u64(`data offset of tensor '${name}'`);
  if (offset > BigInt(c.remaining + c.pos)) {
    throw c.invalid(`data offset of tensor '${name}'`, 'an offset within the file', String(offset), CORRUPT, offsetAt);
  }
  return { dims, type, offset: Number(offset) };
}

function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}
