// Delta encodings round-trip within their stated error, and bad deltas are refused with a reason.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mulberry32 } from '../../util/random.ts';
import { gaussian } from '../random.ts';
import { f16ToF32, f32ToF16, encodedBytes } from './compress.ts';
import { INT8_BLOCK } from './config.ts';
import { type WireDelta, checkDelta, encodeDelta } from './wire.ts';

const shapes = [{ name: 'w', ne: [64, 5] }, { name: 'g', ne: [64] }];
function sample(seed: number, scale = 1e-3): Map<string, Float32Array> {
  const g = gaussian(mulberry32(seed));
  return new Map(shapes.map((s) => [s.name, Float32Array.from({ length: s.ne.reduce((a, b) => a * b, 1) }, () => g() * scale)]));
}

test('f16: exact on representable values, round to nearest even, Inf and NaN kept', () => {
  for (const v of [0, 1, -2, 0.5, 65504, 2 ** -24, 1 + 2 ** -10]) assert.equal(f16ToF32(f32ToF16(v)), v);
  assert.equal(f16ToF32(f32ToF16(1 + 2 ** -11)), 1); // halfway: to even
  assert.equal(f16ToF32(f32ToF16(1 + 3 * 2 ** -11)), 1 + 2 ** -9);
  assert.equal(f16ToF32(f32ToF16(1e6)), Infinity);
  assert.ok(Number.isNaN(f16ToF32(f32ToF16(Number.NaN))));
  assert.equal(f16ToF32(f32ToF16(-0)), -0);
});

test('round trips: f32 exact, f16 within 2^-11 relative, int8 within half a block scale; bytes as stated', () => {
  const delta = sample(1);
  for (const compression of ['f32', 'f16', 'int8'] as const) {
    const w = encodeDelta(delta, shapes, compression, 3, 'p0');
    const c = checkDelta(w, { round: 3, shapes });
    if (!c.ok) throw new Error(c.reason);
    const n = 64 * 5 + 64;
    assert.equal(c.bytes, encodedBytes(64 * 5, compression) + encodedBytes(64, compression));
    let maxErr = 0;
    for (const [name, v] of delta) {
      const back: Float32Array = c.delta.get(name)!;
      for (let b = 0; b < v.length; b += INT8_BLOCK) {
        const block = v.subarray(b, b + INT8_BLOCK);
        const scale = Math.max(...Array.from(block, Math.abs)) / 127;
        for (let i = 0; i < block.length; i++) {
          const x = block[i]!;
          const y: number = back[b + i]!;
          const err = Math.abs(x - y);
          maxErr = Math.max(maxErr, err);
          if (compression === 'f32') assert.equal(y, x);
          if (compression === 'f16') assert.ok(err <= Math.abs(x) * 2 ** -11 + 2 ** -25, `f16 ${x} -> ${y}`);
          if (compression === 'int8') assert.ok(err <= scale / 2 * (1 + 1e-6), `int8 ${x} -> ${y} (scale ${scale})`);
        }
      }
    }
    console.log(`${compression}: ${c.bytes} bytes for ${n} values (${(c.bytes / n).toFixed(3)} B/value), largest error ${maxErr.toExponential(2)}`);
  }
});

test('bad deltas are refused with a clear reason', () => {
  const good = () => encodeDelta(sample(2), shapes, 'f16', 5, 'p1');
  const expect = { round: 5, shapes };
  const refused = (w: WireDelta, code: string, words: RegExp) => {
    const c = checkDelta(w, expect);
    assert.ok(!c.ok, 'refused');
    if (!c.ok) {
      assert.equal(c.code, code);
      assert.match(c.reason, words);
      assert.match(c.reason, /p1/);
    }
  };
  assert.ok(checkDelta(good(), expect).ok);
  refused({ ...good(), round: 4 }, 'round', /round 4.*round is 5.*late/);
  const w = good();
  refused({ ...w, tensors: w.tensors.slice(1) }, 'missing', /missing \(w\)/);
  refused({ ...w, tensors: [...w.tensors, { ...w.tensors[1]!, name: 'x' }] }, 'unknown-tensor', /x is not a parameter/);
  refused({ ...w, tensors: [...w.tensors, w.tensors[1]!] }, 'duplicate', /g sent twice/);
  refused({ ...w, tensors: [{ ...w.tensors[0]!, ne: [5, 64] }, w.tensors[1]!] }, 'shape', /\[5, 64\].*\[64, 5\]/);
  refused({ ...w, tensors: [{ ...w.tensors[0]!, dtype: 'bf16' }, w.tensors[1]!] }, 'dtype', /bf16/);
  refused({ ...w, tensors: [{ ...w.tensors[0]!, data: w.tensors[0]!.data.subarray(2) }, w.tensors[1]!] }, 'size', /638 bytes, expected 640/);
  for (const compression of ['f32', 'f16', 'int8'] as const) {
    const bad = sample(3);
    bad.get('g')![7] = compression === 'int8' ? Infinity : Number.NaN;
    const c = checkDelta(encodeDelta(bad, shapes, compression, 5, 'p1'), expect);
    assert.ok(!c.ok && c.code === 'non-finite', `${compression}: ${c.ok ? 'accepted' : c.reason}`);
  }
  // An f16 overflow becomes Inf and is refused, not clipped.
  const big = sample(4);
  big.get('w')![0] = 1e6;
  const c = checkDelta(encodeDelta(big, shapes, 'f16', 5, 'p1'), expect);
  assert.ok(!c.ok && c.code === 'non-finite');
});
