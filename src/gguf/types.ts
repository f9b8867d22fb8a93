// The formats as tables: ggml tensor types (block size, bytes per block) and GGUF metadata value types.
//
// Source of truth: `enum ggml_type` in ggml/include/ggml.h and the `type_traits` table in ggml/src/ggml.c;
// the bytes per block are `sizeof(block_xxx)` from ggml/src/ggml-common.h. Ids whose support was removed
// from ggml (4, 5, 31-33, 36-38) are deliberately absent: looking them up raises UnknownGgmlTypeError.
import { TensorShapeError, UnknownGgmlTypeError } from './errors.ts';

export interface GgmlTypeInfo {
  /** The ggml_type id stored in GGUF tensor infos. */
  readonly id: number;
  /** The enum name without the GGML_TYPE_ prefix, e.g. 'Q4_K'. */
  readonly name: string;
  /** ggml's own `type_name`, e.g. 'q4_K'. */
  readonly ggmlName: string;
  /** Elements per block (1 for plain types). */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly typeSize: number;
}

const QK_K = 256;

/** Every ggml tensor type, in id order. */
export const GGML_TYPES = [
  { id: 0, name: 'F32', ggmlName: 'f32', blockSize: 1, typeSize: 4 },
  { id: 1, name: 'F16', ggmlName: 'f16', blockSize: 1, typeSize: 2 },
  { id: 2, name: 'Q4_0', ggmlName: 'q4_0', blockSize: 32, typeSize: 18 },
  { id: 3, name: 'Q4_1', ggmlName: 'q4_1', blockSize: 32, typeSize: 20 },
  { id: 6, name: 'Q5_0', ggmlName: 'q5_0', blockSize: 32, typeSize: 22 },
  { id: 7, name: 'Q5_1', ggmlName: 'q5_1', blockSize: 32, typeSize: 24 },
  { id: 8, name: 'Q8_0', ggmlName: 'q8_0', blockSize: 32, typeSize: 34 },
  { id: 9, name: 'Q8_1', ggmlName: 'q8_1', blockSize: 32, typeSize: 36 },
  { id: 10, name: 'Q2_K', ggmlName: 'q2_K', blockSize: QK_K, typeSize: 84 },
  { id: 11, name: 'Q3_K', ggmlName: 'q3_K', blockSize: QK_K, typeSize: 110 },
  { id: 12, name: 'Q4_K', ggmlName: 'q4_K', blockSize: QK_K, typeSize: 144 },
  { id: 13, name: 'Q5_K', ggmlName: 'q5_K', blockSize: QK_K, typeSize: 176 },
  { id: 14, name: 'Q6_K', ggmlName: 'q6_K', blockSize: QK_K, typeSize: 210 },
  { id: 15, name: 'Q8_K', ggmlName: 'q8_K', blockSize: QK_K, typeSize: 292 },
  { id: 16, name: 'IQ2_XXS', ggmlName: 'iq2_xxs', blockSize: QK_K, typeSize: 66 },
  { id: 17, name: 'IQ2_XS', ggmlName: 'iq2_xs', blockSize: QK_K, typeSize: 74 },
  { id: 18, name: 'IQ3_XXS', ggmlName: 'iq3_xxs', blockSize: QK_K, typeSize: 98 },
  { id: 19, name: 'IQ1_S', ggmlName: 'iq1_s', blockSize: QK_K, typeSize: 50 },
  { id: 20, name: 'IQ4_NL', ggmlName: 'iq4_nl', blockSize: 32, typeSize: 18 },
  { id: 21, name: 'IQ3_S', ggmlName: 'iq3_s', blockSize: QK_K, typeSize: 110 },
  { id: 22, name: 'IQ2_S', ggmlName: 'iq2_s', blockSize: QK_K, typeSize: 82 },
  { id: 23, name: 'IQ4_XS', ggmlName: 'iq4_xs', blockSize: QK_K, typeSize: 136 },
  { id: 24, name: 'I8', ggmlName: 'i8', blockSize: 1, typeSize: 1 },
  { id: 25, name: 'I16', ggmlName: 'i16', blockSize: 1, typeSize: 2 },
  { id: 26, name: 'I32', ggmlName: 'i32', blockSize: 1, typeSize: 4 },
  { id: 27, name: 'I64', ggmlName: 'i64', blockSize: 1, typeSize: 8 },
  { id: 28, name: 'F64', ggmlName: 'f64', blockSize: 1, typeSize: 8 },
  { id: 29, name: 'IQ1_M', ggmlName: 'iq1_m', blockSize: QK_K, typeSize: 56 },
  { id: 30, name: 'BF16', ggmlName: 'bf16', blockSize: 1, typeSize: 2 },
  { id: 34, name: 'TQ1_0', ggmlName: 'tq1_0', blockSize: QK_K, typeSize: 54 },
  { id: 35, name: 'TQ2_0', ggmlName: 'tq2_0', blockSize: QK_K, typeSize: 66 },
  { id: 39, name: 'MXFP4', ggmlName: 'mxfp4', blockSize: 32, typeSize: 17 },
  { id: 40, name: 'NVFP4', ggmlName: 'nvfp4', blockSize: 64, typeSize: 36 },
  { id: 41, name: 'Q1_0', ggmlName: 'q1_0', blockSize: 128, typeSize: 18 },
  { id: 42, name: 'Q2_0', ggmlName: 'q2_0', blockSize: 64, typeSize: 18 },
] as const satisfies readonly GgmlTypeInfo[];

export type GgmlTypeName = (typeof GGML_TYPES)[number]['name'];
export type GgmlTypeId = (typeof GGML_TYPES)[number]['id'];

/** Name -> id, e.g. `GGML_TYPE.Q4_K === 12`. */
export const GGML_TYPE = Object.freeze(Object.fromEntries(GGML_TYPES.map((t) => [t.name, t.id]))) as {
  readonly [K in GgmlTypeName]: Extract<(typeof GGML_TYPES)[number], { name: K }>['id'];
};

const typeById = new Map<number, GgmlTypeInfo>(GGML_TYPES.map((t) => [t.id, t]));

/** True when `id` is a ggml type this table knows. */
export function isGgmlType(id: number): id is GgmlTypeId {
  return typeById.has(id);
}

/** Block size and bytes per block of a ggml type; throws UnknownGgmlTypeError naming the value. */
export function ggmlTypeInfo(id: number): GgmlTypeInfo {
  const info = typeById.get(id);
  if (!info) throw new UnknownGgmlTypeError(id);
  return info;
}

/** At most this many dimensions (GGML_MAX_DIMS). */
export const GGML_MAX_DIMS = 4;

/**
 * Bytes of a tensor of `type` with shape `dims` (ggml order: ne0 is the row length). Checks that every dim
 * is a positive integer, that a row is a whole number of blocks, and that the size fits a safe integer.
 * An empty `dims` is a scalar (one element).
 */
export function tensorByteSize(type: number, dims: readonly number[]): number {
  const info = ggmlTypeInfo(type);
  const shape = `[${dims.join(', ')}]`;
  if (dims.length > GGML_MAX_DIMS) {
    throw new TensorShapeError(
      `tensor of type ${info.name} has too many dimensions`,
      `at most ${GGML_MAX_DIMS} dims`,
      `${dims.length} dims ${shape}`,
      'ggml tensors have at most 4 dimensions; reshape before storing',
    );
  }
  let elements = 1n;
  for (const [i, d] of dims.entries()) {
    if (!Number.isSafeInteger(d) || d < 1) {
      throw new TensorShapeError(
        `dimension ${i} of a ${info.name} tensor is not a positive integer`,
        'every dim a positive safe integer',
        `shape ${shape}`,
        'check the shape; ggml stores dims as ne0..ne3 with ne0 the row length',
      );
    }
    elements *= BigInt(d);
  }
  if (elements > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new TensorShapeError(
      `a ${info.name} tensor of shape ${shape} has too many elements`,
      `at most ${Number.MAX_SAFE_INTEGER} elements`,
      `${elements} elements`,
      'the shape is probably corrupt',
    );
  }
  const rowLength = dims[0] ?? 1;
  if (rowLength % info.blockSize !== 0) {
    throw new TensorShapeError(
      `row length of a ${info.name} tensor is not a multiple of its block size`,
      `dims[0] % ${info.blockSize} === 0`,
      `dims[0] = ${rowLength}`,
      `${info.name} packs ${info.blockSize} values per block; use another type (e.g. F16) for this tensor`,
    );
  }
  const bytes = (elements / BigInt(info.blockSize)) * BigInt(info.typeSize);
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new TensorShapeError(
      `a ${info.name} tensor of shape ${shape} is too large`,
      `at most ${Number.MAX_SAFE_INTEGER} bytes`,
      `${bytes} bytes`,
      'the shape is probably corrupt',
    );
  }
  return Number(bytes);
}

/** Number of elements of a shape (1 for a scalar). Assumes a shape already checked by tensorByteSize. */
export function elementCount(dims: readonly number[]): number {
  return dims.reduce((n, d) => n * d, 1);
}

// ---------------------------------------------------------------------------------------------------------
// GGUF file constants.

/** The first four bytes of every GGUF file. */
export const GGUF_MAGIC = 'GGUF';
/** Metadata key that sets the data alignment (UINT32, a power of two). */
export const GGUF_ALIGNMENT_KEY = 'general.alignment';
/** Alignment when the key is absent. */
export const GGUF_DEFAULT_ALIGNMENT = 32;

// ---------------------------------------------------------------------------------------------------------
// GGUF metadata value types (gguf_metadata_value_type in the GGUF spec).

export interface GgufValueTypeInfo {
  readonly id: number;
  readonly name: string;
  /** Encoded bytes of one value; for STRING and ARRAY the smallest possible encoding (the length fields). */
  readonly minSize: number;
  /** True when every value has exactly `minSize` bytes. */
  readonly fixed: boolean;
}

export const GGUF_VALUE_TYPES = [
  { id: 0, name: 'UINT8', minSize: 1, fixed: true },
  { id: 1, name: 'INT8', minSize: 1, fixed: true },
  { id: 2, name: 'UINT16', minSize: 2, fixed: true },
  { id: 3, name: 'INT16', minSize: 2, fixed: true },
  { id: 4, name: 'UINT32', minSize: 4, fixed: true },
  { id: 5, name: 'INT32', minSize: 4, fixed: true },
  { id: 6, name: 'FLOAT32', minSize: 4, fixed: true },
  { id: 7, name: 'BOOL', minSize: 1, fixed: true },
  { id: 8, name: 'STRING', minSize: 8, fixed: false }, // u64 length, then UTF-8 bytes
  { id: 9, name: 'ARRAY', minSize: 12, fixed: false }, // u32 item type, u64 count, then items
  { id: 10, name: 'UINT64', minSize: 8, fixed: true },
  { id: 11, name: 'INT64', minSize: 8, fixed: true },
  { id: 12, name: 'FLOAT64', minSize: 8, fixed: true },
] as const satisfies readonly GgufValueTypeInfo[];

export type GgufValueTypeName = (typeof GGUF_VALUE_TYPES)[number]['name'];

/** Name -> id, e.g. `GGUF_VALUE_TYPE.UINT32 === 4`. */
export const GGUF_VALUE_TYPE = Object.freeze(Object.fromEntries(GGUF_VALUE_TYPES.map((t) => [t.name, t.id]))) as {
  readonly [K in GgufValueTypeName]: Extract<(typeof GGUF_VALUE_TYPES)[number], { name: K }>['id'];
};

const valueTypeById = new Map<number, GgufValueTypeInfo>(GGUF_VALUE_TYPES.map((t) => [t.id, t]));

/** The value type with this id, or undefined when the id is not a GGUF value type. */
export function ggufValueTypeInfo(id: number): GgufValueTypeInfo | undefined {
  return valueTypeById.get(id);
}

/** The name of a value type id for messages ('UINT32', or 'type 99' when unknown). */
export function ggufValueTypeName(id: number): string {
  return valueTypeById.get(id)?.name ?? `type ${id}`;
}
