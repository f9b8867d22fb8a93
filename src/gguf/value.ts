// GGUF metadata values: each keeps its value type, so a file read can be written back byte for byte.
//
// Scalars are { type, value }; arrays are { type: ARRAY, itemType, value } where numeric items live in the
// matching typed array (INT32 -> Int32Array, FLOAT32 -> Float32Array, ...), strings in string[], booleans in
// boolean[] and nested arrays in GgufArray[]. 64-bit integers are bigint so no precision is lost.
import { GgufWriteError } from './errors.ts';
import { GGUF_VALUE_TYPE as T, ggufValueTypeName } from './types.ts';

type VT = typeof T;
/** Value types held as a JS number. */
export type GgufNumberType = VT['UINT8' | 'INT8' | 'UINT16' | 'INT16' | 'UINT32' | 'INT32' | 'FLOAT32' | 'FLOAT64'];
/** Value types held as a bigint. */
export type GgufBigIntType = VT['UINT64' | 'INT64'];

export interface GgufNumber {
  readonly type: GgufNumberType;
  readonly value: number;
}
export interface GgufBigInt {
  readonly type: GgufBigIntType;
  readonly value: bigint;
}
export interface GgufBool {
  readonly type: VT['BOOL'];
  readonly value: boolean;
}
export interface GgufString {
  readonly type: VT['STRING'];
  readonly value: string;
}
export type GgufScalar = GgufNumber | GgufBigInt | GgufBool | GgufString;

/** The JS container of an array's items, by item type id. */
export interface GgufArrayItems {
  0: Uint8Array;
  1: Int8Array;
  2: Uint16Array;
  3: Int16Array;
  4: Uint32Array;
  5: Int32Array;
  6: Float32Array;
  7: boolean[];
  8: string[];
  9: GgufArray[];
  10: BigUint64Array;
  11: BigInt64Array;
  12: Float64Array;
}
export type GgufItemType = keyof GgufArrayItems;

export type GgufArray = {
  [K in GgufItemType]: { readonly type: VT['ARRAY']; readonly itemType: K; readonly value: GgufArrayItems[K] };
}[GgufItemType];

export type GgufValue = GgufScalar | GgufArray;

/** Arrays of arrays are allowed by the GGUF spec (llama.cpp refuses them); we accept this many levels. */
export const MAX_ARRAY_DEPTH = 4;

/** Typed-array constructor of each numeric item type (also used by the reader to decode arrays). */
export const TYPED_ARRAY_OF = {
  0: Uint8Array,
  1: Int8Array,
  2: Uint16Array,
  3: Int16Array,
  4: Uint32Array,
  5: Int32Array,
  6: Float32Array,
  10: BigUint64Array,
  11: BigInt64Array,
  12: Float64Array,
} as const;
export type GgufNumericItemType = keyof typeof TYPED_ARRAY_OF;

export function isNumericItemType(t: number): t is GgufNumericItemType {
  return Object.hasOwn(TYPED_ARRAY_OF, t);
}

/** Inclusive integer range of each integer value type. */
const INT_RANGE: Partial<Record<number, readonly [bigint, bigint]>> = {
  [T.UINT8]: [0n, 0xffn],
  [T.INT8]: [-0x80n, 0x7fn],
  [T.UINT16]: [0n, 0xffffn],
  [T.INT16]: [-0x8000n, 0x7fffn],
  [T.UINT32]: [0n, 0xffffffffn],
  [T.INT32]: [-0x80000000n, 0x7fffffffn],
  [T.UINT64]: [0n, 0xffffffffffffffffn],
  [T.INT64]: [-0x8000000000000000n, 0x7fffffffffffffffn],
};

/** Throws GgufWriteError unless `x` is an integer within the range of integer type `type`. */
export function checkIntRange(type: number, x: number | bigint, what = 'value'): void {
  const range = INT_RANGE[type];
  if (!range) return;
  const ok = typeof x === 'bigint' || Number.isInteger(x);
  if (!ok || BigInt(x) < range[0] || BigInt(x) > range[1]) {
    throw new GgufWriteError(
      `${what} does not fit ${ggufValueTypeName(type)}`,
      `an integer in [${range[0]}, ${range[1]}]`,
      String(x),
      'pick a wider type (i32 / u64 / f32) or fix the value',
    );
  }
}

// ---------------------------------------------------------------------------------------------------------
// Constructors: u32(4096), f32(1e-5), str('llama'), arr(GGUF_VALUE_TYPE.INT32, [1, 2, 3]) ...

function num(type: GgufNumberType, x: number): GgufNumber {
  if (typeof x !== 'number') {
    throw new GgufWriteError(`${ggufValueTypeName(type)} value`, 'a number', typeof x, 'pass a JS number');
  }
  checkIntRange(type, x);
  return { type, value: x };
}
function big(type: GgufBigIntType, x: number | bigint): GgufBigInt {
  checkIntRange(type, x);
  return { type, value: BigInt(x) };
}

export const u8 = (x: number): GgufNumber => num(T.UINT8, x);
export const i8 = (x: number): GgufNumber => num(T.INT8, x);
export const u16 = (x: number): GgufNumber => num(T.UINT16, x);
export const i16 = (x: number): GgufNumber => num(T.INT16, x);
export const u32 = (x: number): GgufNumber => num(T.UINT32, x);
export const i32 = (x: number): GgufNumber => num(T.INT32, x);
export const f32 = (x: number): GgufNumber => num(T.FLOAT32, x);
export const f64 = (x: number): GgufNumber => num(T.FLOAT64, x);
export const u64 = (x: number | bigint): GgufBigInt => big(T.UINT64, x);
export const i64 = (x: number | bigint): GgufBigInt => big(T.INT64, x);
export const bool = (x: boolean): GgufBool => ({ type: T.BOOL, value: x });
export const str = (x: string): GgufString => ({ type: T.STRING, value: x });

/** What `arr` accepts for each item type. */
export interface GgufArrayInput {
  0: ArrayLike<number>;
  1: ArrayLike<number>;
  2: ArrayLike<number>;
  3: ArrayLike<number>;
  4: ArrayLike<number>;
  5: ArrayLike<number>;
  6: ArrayLike<number>;
  7: readonly boolean[];
  8: readonly string[];
  9: readonly GgufArray[];
  10: ArrayLike<number | bigint>;
  11: ArrayLike<number | bigint>;
  12: ArrayLike<number>;
}

/** An array value: `arr(GGUF_VALUE_TYPE.FLOAT32, scores)`. Integer items are range-checked. */
export function arr<K extends GgufItemType>(itemType: K, values: GgufArrayInput[K]): GgufArray {
  if (isNumericItemType(itemType)) {
    const items = values as ArrayLike<number | bigint>;
    for (let i = 0; i < items.length; i++) checkIntRange(itemType, items[i] as number | bigint, `item ${i}`);
    const Ctor = TYPED_ARRAY_OF[itemType];
    const typed =
      itemType === T.UINT64 || itemType === T.INT64
        ? (Ctor as BigInt64ArrayConstructor).from(items as ArrayLike<number | bigint>, (x) => BigInt(x))
        : (Ctor as Float64ArrayConstructor).from(items as ArrayLike<number>);
    return { type: T.ARRAY, itemType, value: typed } as GgufArray;
  }
  if (itemType === T.BOOL || itemType === T.STRING || itemType === T.ARRAY) {
    return { type: T.ARRAY, itemType, value: [...(values as readonly unknown[])] } as GgufArray;
  }
  throw new GgufWriteError('array item type', 'a GGUF value type id 0..12', String(itemType), 'use GGUF_VALUE_TYPE');
}

// ---------------------------------------------------------------------------------------------------------
// Plain JS values, for the writer's convenience.

/** A metadata value as the writer accepts it: an explicit GgufValue, or a JS value whose type is unambiguous. */
export type GgufInput =
  | GgufValue
  | string
  | boolean
  | readonly string[]
  | readonly boolean[]
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigUint64Array
  | BigInt64Array;

const TYPED_ITEM_TYPE: ReadonlyArray<readonly [new (n: number) => ArrayBufferView, GgufItemType]> = [
  [Uint8Array, T.UINT8],
  [Int8Array, T.INT8],
  [Uint16Array, T.UINT16],
  [Int16Array, T.INT16],
  [Uint32Array, T.UINT32],
  [Int32Array, T.INT32],
  [Float32Array, T.FLOAT32],
  [Float64Array, T.FLOAT64],
  [BigUint64Array, T.UINT64],
  [BigInt64Array, T.INT64],
];

/**
 * Turns a plain JS value into a GgufValue: string -> STRING, boolean -> BOOL, string[] / boolean[] -> arrays,
 * typed arrays -> arrays of their element type. Plain numbers are ambiguous (u32? f32?) and are refused:
 * wrap them with u32(), i32(), f32(), u64() ... or arr(type, values).
 */
export function toGgufValue(input: GgufInput, key: string): GgufValue {
  if (typeof input === 'string') return str(input);
  if (typeof input === 'boolean') return bool(input);
  if (ArrayBuffer.isView(input)) {
    const match = TYPED_ITEM_TYPE.find(([Ctor]) => input instanceof Ctor);
    if (!match || input instanceof Uint8ClampedArray) {
      throw refuse(key, input.constructor.name);
    }
    return { type: T.ARRAY, itemType: match[1], value: input } as GgufArray;
  }
  if (Array.isArray(input)) {
    if (input.every((x) => typeof x === 'string')) return arr(T.STRING, input as string[]);
    if (input.length > 0 && input.every((x) => typeof x === 'boolean')) return arr(T.BOOL, input as boolean[]);
    throw refuse(key, 'an array of numbers or mixed values');
  }
  if (typeof input === 'object' && input !== null && 'type' in input && 'value' in input) return input;
  throw refuse(key, typeof input);
}

function refuse(key: string, actual: string): GgufWriteError {
  return new GgufWriteError(
    `metadata '${key}' has no unambiguous GGUF type`,
    'a GgufValue, string, boolean, string[], boolean[] or typed array',
    actual,
    'wrap numbers with u32(x), i32(x), f32(x), u64(x) ... and numeric arrays with arr(GGUF_VALUE_TYPE.X, values)',
  );
}
