// How a delta travels: per tensor, f32 as is, f16 (round to nearest even), or int8 in blocks of INT8_BLOCK
// values sharing one f32 scale (scale = max |x| / 127 over the block, q = round(x / scale)).
//
//   f32   4 bytes a value
//   f16   2 bytes a value; relative error <= 2^-11 in the normal range, |x| > 65504 becomes Inf (refused
//         by validation, never silently clipped)
//   int8  scales (4 bytes per block) then one byte a value; absolute error <= scale / 2 per value
//
// Byte order is little-endian (typed arrays on the hosts we run on: x64 and arm64).
import { type Compression, INT8_BLOCK } from './config.ts';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE binary16 bits of a float, rounded to nearest even (overflow to Inf, NaN stays NaN). */
export function f32ToF16(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1) === 1)) half++; // a carry into the exponent is correct
  return sign | half;
}

export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? Number.NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Bytes of n values in this encoding. */
export function encodedBytes(n: number, compression: Compression): number {
  switch (compression) {
    case 'f32': return 4 * n;
    case 'f16': return 2 * n;
    case 'int8': return 4 * Math.ceil(n / INT8_BLOCK) + n;
  }
}

export function encodeTensor(values: Float32Array, compression: Compression): Uint8Array {
  const n = values.length;
  switch (compression) {
    case 'f32':
      return new Uint8Array(Float32Array.from(values).buffer);
    case 'f16': {
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) out[i] = f32ToF16(values[i]!);
      return new Uint8Array(out.buffer);
    }
    case 'int8': {
      const blocks = Math.ceil(n / INT8_BLOCK);
      const buf = new ArrayBuffer(encodedBytes(n, 'int8'));
      const scales = new Float32Array(buf, 0, blocks);
      const q = new Int8Array(buf, 4 * blocks, n);
      for (let b = 0; b < blocks; b++) {
        const lo = b * INT8_BLOCK;
        const hi = Math.min(n, lo + INT8_BLOCK);
        let max = 0;
        for (let i = lo; i < hi; i++) max = Math.max(max, Math.abs(values[i]!));
        // A non-finite value makes the scale non-finite: the receiver refuses the delta instead of decoding junk.
        if (!Number.isFinite(max)) max = Number.NaN;
        const scale = max / 127;
        scales[b] = scale;
        const inv = scale > 0 ? 1 / scale : 0;
        for (let i = lo; i < hi; i++) q[i] = Math.max(-127, Math.min(127, Math.round(values[i]! * inv)));
      }
      return new Uint8Array(buf);
    }
  }
}

/** Decode n values (the caller has checked the byte length against encodedBytes). */
export function decodeTensor(bytes: Uint8Array, n: number, compression: Compression): Float32Array {
  // Copy to an aligned buffer: wire bytes may sit at any offset.
  const aligned = Uint8Array.from(bytes).buffer;
  switch (compression) {
    case 'f32':
      return new Float32Array(aligned, 0, n);
    case 'f16': {
      const h = new Uint16Array(aligned, 0, n);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = f16ToF32(h[i]!);
      return out;
    }
    case 'int8': {
      const blocks = Math.ceil(n / INT8_BLOCK);
      const scales = new Float32Array(aligned, 0, blocks);
      const q = new Int8Array(aligned, 4 * blocks, n);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = q[i]! * scales[Math.floor(i / INT8_BLOCK)]!;
      return out;
    }
  }
}
