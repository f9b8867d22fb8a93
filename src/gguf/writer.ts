// GGUF v3 writer. The header (metadata + tensor index) is encoded in memory; tensor data is written to the
// file one tensor at a time, so a large model never has to be one Buffer. A tensor's data may be a function
// that produces its bytes when the writer reaches it (e.g. `() => source.readTensor(name)`).
import { closeSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { endianness } from 'node:os';
import { ByteWriter } from './byte-writer.ts';
import { GgufWriteError, TensorShapeError } from './errors.ts';
import { describeType } from './metadata.ts';
import {
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
import {
  MAX_ARRAY_DEPTH,
  TYPED_ARRAY_OF,
  arr,
  checkIntRange,
  isNumericItemType,
  toGgufValue,
  type GgufArray,
  type GgufInput,
  type GgufValue,
} from './value.ts';

/** ggml refuses tensor names of GGML_MAX_NAME (64) bytes or more. */
const MAX_TENSOR_NAME_BYTES = 63;
/** Files are written as GGUF v3 (little endian). */
export const GGUF_WRITE_VERSION = 3;

export interface GgufTensorInput {
  name: string;
  /** ggml_type id (see GGML_TYPE). */
  type: number;
  /** ggml order: dims[0] is the row length. */
  dims: readonly number[];
  /** Exactly tensorByteSize(type, dims) bytes, or a function producing them when the writer needs them. */
  data: Uint8Array | (() => Uint8Array);
}

export type GgufMetadataInput = ReadonlyMap<string, GgufInput> | Readonly<Record<string, GgufInput>>;

export interface GgufWriteInput {
  /** Written in iteration order. `general.alignment` (UINT32, power of two) sets the alignment; default 32. */
  metadata?: GgufMetadataInput;
  tensors?: readonly GgufTensorInput[];
}

/** Where everything goes: the encoded header and each tensor's offset, before any data is written. */
export interface GgufLayout {
  /** Magic, version, metadata, tensor index and padding up to the data section (none without tensors). */
  header: Buffer;
  alignment: number;
  /** Absolute offset of the data section (== header.length). */
  dataOffset: number;
  tensors: Array<{ input: GgufTensorInput; offset: number; byteSize: number }>;
  /** Size of the whole file. */
  totalSize: number;
}

/** Validates the input and encodes the header; computes where each tensor's data goes. */
export function layoutGguf(input: GgufWriteInput): GgufLayout {
  const entries: Array<[string, GgufValue]> = [];
  const metadata = input.metadata ?? {};
  const source = metadata instanceof Map ? [...metadata.entries()] : Object.entries(metadata);
  for (const [key, value] of source as Array<[string, GgufInput]>) {
    if (typeof key !== 'string' || key.length === 0) {
      throw new GgufWriteError('metadata key', 'a non-empty string', JSON.stringify(key), 'name the key');
    }
    entries.push([key, toGgufValue(value, key)]);
  }
  const alignment = alignmentOf(entries);
  const tensors = input.tensors ?? [];

  const w = new ByteWriter();
  w.bytes(Buffer.from(GGUF_MAGIC, 'latin1'));
  w.u32(GGUF_WRITE_VERSION);
  w.u64(tensors.length);
  w.u64(entries.length);
  for (const [key, value] of entries) {
    w.string(key);
    w.u32(value.type);
    encodeValue(w, value, key, 0);
  }

  const names = new Set<string>();
  const placed: GgufLayout['tensors'] = [];
  let offset = 0;
  for (const t of tensors) {
    const byteSize = checkTensor(t, names);
    w.string(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(t.type);
    w.u64(offset);
    placed.push({ input: t, offset, byteSize });
    offset = alignUp(offset + byteSize, alignment);
  }
  // With no tensors there is no data section and, as gguf-py writes vocab-only files, no padding.
  if (tensors.length > 0) w.pad(alignment);
  const header = Buffer.from(w.view());
  // The last tensor is padded too, as llama.cpp does.
  return { header, alignment, dataOffset: header.length, tensors: placed, totalSize: header.length + offset };
}

/** The whole file as one Buffer (for small files and tests). */
export function encodeGguf(input: GgufWriteInput): Buffer {
  const layout = layoutGguf(input);
  const out = Buffer.alloc(layout.totalSize);
  layout.header.copy(out, 0);
  for (const t of layout.tensors) out.set(tensorData(t.input, t.byteSize), layout.dataOffset + t.offset);
  return out;
}

/**
 * Writes a GGUF file: header first, then each tensor's data in turn. Writes to a temporary file beside
 * `path` and renames it into place, so a crash never leaves a half-written file under the final name.
 */
export function writeGguf(path: string, input: GgufWriteInput): void {
  const layout = layoutGguf(input);
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeAll(fd, layout.header);
    let pos = layout.dataOffset;
    for (const t of layout.tensors) {
      const at = layout.dataOffset + t.offset;
      if (at > pos) writeAll(fd, Buffer.alloc(at - pos)); // padding between tensors
      writeAll(fd, tensorData(t.input, t.byteSize));
      pos = at + t.byteSize;
    }
    if (layout.totalSize > pos) writeAll(fd, Buffer.alloc(layout.totalSize - pos));
    closeSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  renameSync(tmp, path);
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.byteLength) done += writeSync(fd, bytes, done, bytes.byteLength - done);
}

function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

function alignmentOf(entries: Array<[string, GgufValue]>): number {
  const v = entries.find(([k]) => k === GGUF_ALIGNMENT_KEY)?.[1];
  if (v === undefined) return GGUF_DEFAULT_ALIGNMENT;
  if (v.type !== T.UINT32 || v.value === 0 || (v.value & (v.value - 1)) !== 0) {
    throw new GgufWriteError(
      GGUF_ALIGNMENT_KEY,
      'a UINT32 power of two',
      v.type === T.UINT32 ? String(v.value) : describeType(v),
      'use u32(32) or another power of two',
    );
  }
  return v.value;
}

/** Checks one tensor's name, type and shape (and data length when given eagerly); returns its byte size. */
function checkTensor(t: GgufTensorInput, names: Set<string>): number {
  if (typeof t.name !== 'string' || t.name.length === 0 || Buffer.byteLength(t.name) > MAX_TENSOR_NAME_BYTES) {
    throw new GgufWriteError(
      'tensor name',
      `1..${MAX_TENSOR_NAME_BYTES} bytes of UTF-8`,
      JSON.stringify(t.name),
      'ggml cannot load longer names; shorten it',
    );
  }
  if (names.has(t.name)) {
    throw new GgufWriteError('tensor names', 'unique names', `'${t.name}' twice`, 'give each tensor its own name');
  }
  names.add(t.name);
  if (!isGgmlType(t.type)) ggmlTypeInfo(t.type); // throws UnknownGgmlTypeError
  if (t.dims.length === 0) {
    throw new GgufWriteError(`dims of tensor '${t.name}'`, '1..4 dims', '[]', 'store a scalar as dims [1]');
  }
  let byteSize: number;
  try {
    byteSize = tensorByteSize(t.type, t.dims);
  } catch (err) {
    if (err instanceof TensorShapeError) {
      throw new GgufWriteError(`shape of tensor '${t.name}'`, err.expected, err.actual, err.hint);
    }
    throw err;
  }
  if (typeof t.data !== 'function') checkDataLength(t, t.data, byteSize);
  return byteSize;
}

function tensorData(t: GgufTensorInput, byteSize: number): Uint8Array {
  const data = typeof t.data === 'function' ? t.data() : t.data;
  checkDataLength(t, data, byteSize);
  return data;
}

function checkDataLength(t: GgufTensorInput, data: Uint8Array, byteSize: number): void {
  if (!(data instanceof Uint8Array) || data.byteLength !== byteSize) {
    const type = ggmlTypeInfo(t.type).name;
    throw new GgufWriteError(
      `data of tensor '${t.name}' (${type} [${t.dims.join(', ')}])`,
      `a Uint8Array of ${byteSize} bytes`,
      data instanceof Uint8Array ? `${data.byteLength} bytes` : typeof data,
      'pass the raw bytes in the tensor type (for f32 data: new Uint8Array(float32Array.buffer))',
    );
  }
}

// ---------------------------------------------------------------------------------------------------------
// Metadata values.

/** The value of `v` (its type id is already written by the caller). */
function encodeValue(w: ByteWriter, v: GgufValue, key: string, depth: number): void {
  switch (v.type) {
    case T.UINT8: return w.u8(number(v, key));
    case T.INT8: return w.i8(number(v, key));
    case T.UINT16: return w.u16(number(v, key));
    case T.INT16: return w.i16(number(v, key));
    case T.UINT32: return w.u32(number(v, key));
    case T.INT32: return w.i32(number(v, key));
    case T.FLOAT32: return w.f32(number(v, key));
    case T.FLOAT64: return w.f64(number(v, key));
    case T.UINT64: return w.u64(bigint(v, key));
    case T.INT64: return w.i64(bigint(v, key));
    case T.BOOL: return w.u8(expect(v, key, 'boolean') ? 1 : 0);
    case T.STRING: return w.string(expect(v, key, 'string') as string);
    case T.ARRAY: return encodeArray(w, v, key, depth + 1);
    default:
      throw new GgufWriteError(
        `type of metadata '${key}'`,
        'a GGUF value type 0..12',
        String((v as { type: unknown }).type),
        'build values with u32(), str(), arr() ...',
      );
  }
}

function expect(v: GgufValue, key: string, jsType: string): unknown {
  if (typeof v.value !== jsType) {
    throw new GgufWriteError(
      `metadata '${key}' of type ${ggufValueTypeName(v.type)}`,
      `a ${jsType}`,
      typeof v.value,
      'build values with u32(), str(), arr() ...',
    );
  }
  return v.value;
}

function number(v: GgufValue, key: string): number {
  const x = expect(v, key, 'number') as number;
  checkIntRange(v.type, x, `metadata '${key}'`);
  return x;
}

function bigint(v: GgufValue, key: string): bigint {
  const x = typeof v.value === 'number' ? BigInt(v.value) : (expect(v, key, 'bigint') as bigint);
  checkIntRange(v.type, x, `metadata '${key}'`);
  return x;
}

const USE_ARR = 'build arrays with arr(GGUF_VALUE_TYPE.X, values)';

/** u32 item type, u64 count, items. `depth` is 1 for a top-level array. */
function encodeArray(w: ByteWriter, v: GgufArray, key: string, depth: number): void {
  if (depth > MAX_ARRAY_DEPTH) {
    throw new GgufWriteError(`array '${key}'`, `nesting at most ${MAX_ARRAY_DEPTH} deep`, `depth ${depth}`, 'flatten it');
  }
  const itemType: number = v.itemType;
  if (ggufValueTypeInfo(itemType) === undefined) {
    throw new GgufWriteError(`item type of array '${key}'`, 'a GGUF value type 0..12', String(itemType), USE_ARR);
  }
  const items = v.value as ArrayLike<unknown>;
  if (items === null || typeof items !== 'object' || typeof items.length !== 'number') {
    throw new GgufWriteError(`array '${key}'`, 'an array or typed array', typeof items, USE_ARR);
  }
  w.u32(itemType);
  w.u64(items.length);
  if (isNumericItemType(itemType)) {
    const Ctor = TYPED_ARRAY_OF[itemType];
    const typed = items instanceof Ctor ? items : arr(itemType, items as ArrayLike<number>).value;
    const view = typed as ArrayBufferView;
    const bytes = Buffer.from(view.buffer, view.byteOffset, view.byteLength);
    if (endianness() === 'LE') return w.bytes(bytes);
    const swapped = Buffer.from(bytes);
    const size = (typed as Uint8Array).BYTES_PER_ELEMENT;
    if (size === 2) swapped.swap16();
    if (size === 4) swapped.swap32();
    if (size === 8) swapped.swap64();
    return w.bytes(swapped);
  }
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    if (itemType === T.STRING && typeof item === 'string') w.string(item);
    else if (itemType === T.BOOL && typeof item === 'boolean') w.u8(item ? 1 : 0);
    else if (itemType === T.ARRAY && (item as GgufArray | undefined)?.type === T.ARRAY) {
      encodeArray(w, item as GgufArray, `${key}[${i}]`, depth + 1);
    } else {
      const expected = itemType === T.ARRAY ? 'a GgufArray' : `a ${ggufValueTypeName(itemType)}`;
      throw new GgufWriteError(`item ${i} of array '${key}'`, expected, typeof item, USE_ARR);
    }
  }
}
