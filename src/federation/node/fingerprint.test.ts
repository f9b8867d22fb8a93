// The fingerprint and its tolerance: deterministic bytes, block layout within the header budget, blind to the
// honest noise of another kernel (a tiny relative change) and sharp on a real alteration.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mulberry32 } from '../../util/random.ts';
import { FP_MAX_ROWS, FP_WIDTH, blockSize, decodeFingerprint, encodeFingerprint, fingerprintError, fingerprintRows, hiddenError, rowsOf, stepFingerprint } from './fingerprint.ts';
import { perturb } from './testing/verify-cluster.ts';
import { defaultVerifyConfig } from './verify.ts';

const N_EMBD = 960;
const TOL = defaultVerifyConfig().tolerance;

/** Hidden states with a few large coordinates, as real residual streams have. */
function hidden(nTokens: number, seed: number): Float32Array {
  const rnd = mulberry32(seed);
  const h = Float32Array.from({ length: nTokens * N_EMBD }, () => (rnd() * 2 - 1) * 3);
  for (let t = 0; t < nTokens; t++) h[t * N_EMBD + 17] = 80;
  return h;
}

/** Noise of `size` x RMS on every coordinate: another kernel's rounding, amplified through the layers. */
function jitter(h: Float32Array, size: number, seed: number): Float32Array {
  const out = h.slice();
  perturb(out, N_EMBD, size, mulberry32(seed));
  return out;
}

test('the same states give the same bytes; the wire form round-trips; a torn one is refused', () => {
  const h = hidden(3, 1);
  const a = stepFingerprint(h, N_EMBD, [{ n: 2 }, { n: 1 }], 1234);
  assert.equal(a, stepFingerprint(h.slice(), N_EMBD, [{ n: 2 }, { n: 1 }], 1234));
  assert.notEqual(a, stepFingerprint(h, N_EMBD, [{ n: 2 }, { n: 1 }], 1235), 'the salt picks other coordinates');
  const rows = decodeFingerprint(a)!;
  assert.equal(rows.length, 3 * FP_WIDTH);
  assert.equal(encodeFingerprint(rows), a);
  assert.equal(decodeFingerprint(Buffer.from([1, 2, 3]).toString('base64')), undefined);
});

test('a group\'s rows do not depend on the other groups of the step (the verifier recomputes one sequence)', () => {
  const h = hidden(5, 2);
  const step = fingerprintRows(h, N_EMBD, [2, 3], 99, 1);
  const alone = fingerprintRows(h.subarray(2 * N_EMBD), N_EMBD, [3], 99, 1);
  assert.deepEqual(step.subarray(2 * FP_WIDTH), alone);
});

test('large steps are summed in blocks: at most FP_MAX_ROWS rows plus one per group, within the header budget', () => {
  assert.equal(blockSize(1), 1);
  assert.equal(blockSize(FP_MAX_ROWS), 1);
  assert.equal(blockSize(FP_MAX_ROWS + 1), 2);
  const n = 1000;
  const fp = stepFingerprint(hidden(n, 3), N_EMBD, [{ n: 700 }, { n: 300 }], 5);
  const rows = decodeFingerprint(fp)!.length / FP_WIDTH;
  assert.equal(rows, rowsOf(700, blockSize(n)) + rowsOf(300, blockSize(n)));
  assert.ok(rows <= FP_MAX_ROWS + 2);
  assert.ok(fp.length <= 8192, 'fits StageTime.fp');
});

// Honest differences measured across CPU kernels: trained model 1.5e-3..3.2e-3 x RMS, random-weight models
// up to 0.1. The test's honest noise, 2e-2 per coordinate, must pass with a fifth of the tolerance to spare.
test('tolerance: honest-sized noise (2e-2 x RMS) passes with a wide margin; a 50% alteration fails', () => {
  const h = hidden(64, 4);
  const ref = fingerprintRows(h, N_EMBD, [64], 7, 1);
  const honest = fingerprintError(fingerprintRows(jitter(h, 2e-2, 5), N_EMBD, [64], 7, 1), ref, N_EMBD);
  console.log(`fingerprint error of 2e-2 x RMS noise: ${honest.toExponential(2)} x RMS (tolerance ${TOL})`);
  assert.ok(honest < TOL / 5, `${honest}`);
  assert.ok(hiddenError(jitter(h, 2e-2, 5), h, N_EMBD) < TOL / 5, 'the full comparison too');

  const bad = h.slice();
  perturb(bad, N_EMBD, 0.5, mulberry32(6));
  const err = fingerprintError(fingerprintRows(bad, N_EMBD, [64], 7, 1), ref, N_EMBD);
  assert.ok(err > TOL, `a 50% alteration on every token: ${err}`);
  // One token of 64 altered, each token its own row: caught.
  const one = h.slice();
  perturb(one.subarray(10 * N_EMBD, 11 * N_EMBD), N_EMBD, 0.5, mulberry32(8));
  assert.ok(fingerprintError(fingerprintRows(one, N_EMBD, [64], 7, 1), ref, N_EMBD) > TOL);
});

test('a sign flip or a zeroed vector is far outside; NaN and length mismatches count as the worst', () => {
  const h = hidden(2, 9);
  const ref = fingerprintRows(h, N_EMBD, [2], 3, 1);
  assert.ok(fingerprintError(fingerprintRows(h.map((v) => -v), N_EMBD, [2], 3, 1), ref, N_EMBD) > 1);
  assert.ok(fingerprintError(fingerprintRows(new Float32Array(h.length), N_EMBD, [2], 3, 1), ref, N_EMBD) > 1);
  const nan = h.slice();
  nan[5] = Number.NaN;
  assert.equal(fingerprintError(fingerprintRows(nan, N_EMBD, [2], 3, 1), ref, N_EMBD), Number.POSITIVE_INFINITY);
  assert.equal(hiddenError(nan, h, N_EMBD), Number.POSITIVE_INFINITY);
  assert.equal(fingerprintError(ref.subarray(FP_WIDTH), ref, N_EMBD), Number.POSITIVE_INFINITY);
  assert.equal(hiddenError(h.subarray(1), h, N_EMBD), Number.POSITIVE_INFINITY);
});
