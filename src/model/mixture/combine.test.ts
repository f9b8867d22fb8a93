// The ggml combiner and the router's likelihood against plain float64 references.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { getGgml } from '../../ggml/runtime.ts';
import { Combiner, mixStep } from './combine.ts';
import { promptLogLikelihood } from './likelihood.ts';

const ggml = getGgml({ gpu: 'off', threads: 1 });
const V = 300;
const combiner = new Combiner(ggml, V);
after(() => combiner.dispose());

function randomLogits(seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: V }, () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return (s / 2 ** 31) * 12 - 6;
  });
}
function softmax(l: Float32Array): Float64Array {
  const max = Math.max(...l);
  const e = Float64Array.from(l, (v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

test('mix = Σ_k w_k softmax(logits_k), returned as log p; likelihoods are p_k(t)', () => {
  const rows = [randomLogits(1), randomLogits(2), randomLogits(3)];
  const w = Float64Array.of(0.6, 0.3, 0.1);
  const mixed = combiner.mix(rows, w);
  const ps = rows.map(softmax);
  let worst = 0;
  for (let x = 0; x < V; x++) {
    const ref = w[0]! * ps[0]![x]! + w[1]! * ps[1]![x]! + w[2]! * ps[2]![x]!;
    worst = Math.max(worst, Math.abs(Math.exp(mixed.logits[x]!) - ref) / ref);
  }
  console.log(`largest relative difference of p(x): ${worst.toExponential(2)}`);
  assert.ok(worst < 1e-4);
  const l = mixed.likelihoods(7);
  for (let k = 0; k < 3; k++) assert.ok(Math.abs(l[k]! - ps[k]![7]!) / ps[k]![7]! < 1e-5);
});

test('mixStep: shares sum to 1, posterior moves towards the specialist that liked the token', () => {
  const rows = [randomLogits(4), randomLogits(5)];
  const { mixed, attribute } = mixStep(combiner, Float64Array.of(0.5, 0.5), rows, 'posterior');
  const token = mixed.logits.indexOf(Math.max(...mixed.logits));
  const a = attribute(token);
  assert.ok(Math.abs(a.shares[0]! + a.shares[1]! - 1) < 1e-9);
  const better = a.likelihoods[0]! > a.likelihoods[1]! ? 0 : 1;
  assert.ok(a.posterior[better]! > 0.5);
  const top1 = mixStep(combiner, Float64Array.of(0.4, 0.6), rows, 'top1');
  assert.deepEqual([...top1.attribute(token).shares], [0, 1]);
});

test('a row of the wrong length is refused', () => {
  assert.throws(() => combiner.mix([new Float32Array(V - 1)], Float64Array.of(1)), /wrong length/);
});

test('prompt log-likelihood = Σ log softmax(row_i)[prompt_{i+1}], across graph chunks', () => {
  const n = 300; // more than one chunk of 256 rows
  const prompt = Array.from({ length: n }, (_, i) => (i * 37) % V);
  const rows = Array.from({ length: n }, (_, i) => randomLogits(100 + i));
  let ref = 0;
  for (let i = 0; i + 1 < n; i++) ref += Math.log(softmax(rows[i]!)[prompt[i + 1]!]!);
  const ours = promptLogLikelihood(ggml, rows, prompt);
  console.log(`log-likelihood ${ours} vs ${ref}`);
  assert.ok(Math.abs(ours - ref) / Math.abs(ref) < 1e-4);
  assert.equal(promptLogLikelihood(ggml, rows, [1]), 0);
});
