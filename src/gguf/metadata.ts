// A GGUF file's key-value metadata: a Map that keeps each value's type, with typed getters.
//
// Strict getters (getU32, getF32, ...) insist on the exact stored type; getNumber accepts any numeric type,
// which is what model code usually wants (converters disagree on u32 vs i32 vs u64 for counts). Every getter
// takes an optional fallback returned when the key is missing; without one, a missing key throws.
import { GgufKeyError } from './errors.ts';
import { GGUF_VALUE_TYPE as T, ggufValueTypeName } from './types.ts';
import type { GgufArray, GgufArrayItems, GgufValue } from './value.ts';

/** The typed arrays that hold numeric items as JS numbers (every numeric item type but the 64-bit integers). */
export type GgufNumberArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array;

export class GgufMetadata extends Map<string, GgufValue> {
  /** A string value. */
  getString(key: string, fallback?: string): string {
    return this.scalar(key, T.STRING, fallback) as string;
  }

  /** A BOOL value. */
  getBool(key: string, fallback?: boolean): boolean {
    return this.scalar(key, T.BOOL, fallback) as boolean;
  }

  /** A UINT32 value (exactly that type). */
  getU32(key: string, fallback?: number): number {
    return this.scalar(key, T.UINT32, fallback) as number;
  }

  /** An INT32 value (exactly that type). */
  getI32(key: string, fallback?: number): number {
    return this.scalar(key, T.INT32, fallback) as number;
  }

  /** A FLOAT32 value (exactly that type). */
  getF32(key: string, fallback?: number): number {
    return this.scalar(key, T.FLOAT32, fallback) as number;
  }

  /** A UINT64 value (exactly that type), as a bigint. */
  getU64(key: string, fallback?: bigint): bigint {
    return this.scalar(key, T.UINT64, fallback) as bigint;
  }

  /** Any numeric scalar as a JS number; 64-bit integers must be within the safe integer range. */
  getNumber(key: string, fallback?: number): number {
    const v = this.get(key);
    if (v === undefined) {
      if (fallback !== undefined) return fallback;
      throw missing(key, 'a number');
    }
    if (typeof v.value === 'number') return v.value;
    if (typeof v.value === 'bigint') {
      if (v.value <= BigInt(Number.MAX_SAFE_INTEGER) && v.value >= BigInt(Number.MIN_SAFE_INTEGER)) {
        return Number(v.value);
      }
      throw new GgufKeyError(key, 'a number within the safe integer range', String(v.value), 'read it with getU64');
    }
    throw wrongType(key, 'a number', v);
  }

  /** An array value of any item type. */
  getArray(key: string): GgufArray {
    const v = this.get(key);
    if (v === undefined) throw missing(key, 'an ARRAY');
    if (v.type !== T.ARRAY) throw wrongType(key, 'an ARRAY', v);
    return v;
  }

  /** An array of strings (e.g. tokenizer.ggml.tokens). */
  getStringArray(key: string, fallback?: string[]): string[] {
    return this.arrayOf(key, T.STRING, fallback) as string[];
  }

  /** An array of FLOAT32 (e.g. tokenizer.ggml.scores). */
  getF32Array(key: string, fallback?: Float32Array): Float32Array {
    return this.arrayOf(key, T.FLOAT32, fallback) as Float32Array;
  }

  /** An array of INT32 (e.g. tokenizer.ggml.token_type). */
  getI32Array(key: string, fallback?: Int32Array): Int32Array {
    return this.arrayOf(key, T.INT32, fallback) as Int32Array;
  }

  /** An array of any 8/16/32-bit integer or float item type, as numbers. */
  getNumberArray(key: string, fallback?: GgufNumberArray): GgufNumberArray {
    const v = this.get(key);
    if (v === undefined) {
      if (fallback !== undefined) return fallback;
      throw missing(key, 'an array of numbers');
    }
    if (v.type === T.ARRAY && ArrayBuffer.isView(v.value) && v.itemType !== T.UINT64 && v.itemType !== T.INT64) {
      return v.value as GgufNumberArray;
    }
    throw wrongType(key, 'an array of numbers', v);
  }

  private scalar(key: string, type: number, fallback: unknown): unknown {
    const v = this.get(key);
    if (v === undefined) {
      if (fallback !== undefined) return fallback;
      throw missing(key, ggufValueTypeName(type));
    }
    if (v.type !== type) throw wrongType(key, ggufValueTypeName(type), v);
    return v.value;
  }

  private arrayOf<K extends keyof GgufArrayItems>(key: string, itemType: K, fallback: unknown): unknown {
    const expected = `an ARRAY of ${ggufValueTypeName(itemType)}`;
    const v = this.get(key);
    if (v === undefined) {
      if (fallback !== undefined) return fallback;
      throw missing(key, expected);
    }
    if (v.type !== T.ARRAY || v.itemType !== itemType) throw wrongType(key, expected, v);
    return v.value;
  }
}

/** A short description of a value's type for messages: 'UINT32' or 'ARRAY of STRING'. */
export function describeType(v: GgufValue): string {
  return v.type === T.ARRAY ? `ARRAY of ${ggufValueTypeName(v.itemType)}` : ggufValueTypeName(v.type);
}

function missing(key: string, expected: string): GgufKeyError {
  return new GgufKeyError(
    key,
    expected,
    'no such key',
    'the file may be for another architecture or made by an older converter; list file.metadata.keys()',
  );
}

function wrongType(key: string, expected: string, v: GgufValue): GgufKeyError {
  return new GgufKeyError(key, expected, describeType(v), 'use the getter matching the stored type, or getNumber');
}
