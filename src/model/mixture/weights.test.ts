import assert from 'node:assert/strict';
import { test } from 'node:test';
import { route } from './router.ts';
import { MixtureError, bayesUpdate, dropSpecialist, mixingWeights, normalise, promptPosterior, selectTop, tokenShares } from './weights.ts';

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-12): void => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= tol, `[${i}] ${a[i]} vs ${b[i]}`);
};

test('shares are w_k p_k(t) / p(t) and sum to 1', () => {
  const s = tokenShares(Float64Array.of(0.5, 0.3, 0.2), [0.1, 0.4, 0]);
  close(s, [0.05 / 0.17, 0.12 / 0.17, 0]);
  assert.ok(Math.abs(s.reduce((a, b) => a + b, 0) - 1) < 1e-12);
});

test("Bayes' update follows the likelihoods; fixed share keeps a floor; all-zero keeps the weights", () => {
  close(bayesUpdate(Float64Array.of(0.5, 0.5), [0.2, 0.6], 0), [0.25, 0.75]);
  close(bayesUpdate(Float64Array.of(0.5, 0.5), [0, 1], 0.1), [0.05, 0.95]);
  close(bayesUpdate(Float64Array.of(0.3, 0.7), [0, 0], 0), [0.3, 0.7]);
});

test('modes: posterior as is, uniform, top1 one-hot', () => {
  const w = Float64Array.of(0.2, 0.5, 0.3);
  close(mixingWeights(w, 'posterior'), w);
  close(mixingWeights(w, 'uniform'), [1 / 3, 1 / 3, 1 / 3]);
  close(mixingWeights(w, 'top1'), [0, 1, 0]);
});

test('prompt posterior in log space survives large log-likelihoods; priors scale it', () => {
  close(promptPosterior([-1000, -1000 + Math.log(3)]), [0.25, 0.75], 1e-9);
  close(promptPosterior([-5, -5], [1, 3]), [0.25, 0.75], 1e-12);
});

test('router keeps the top k, drops negligible weights but never the best', () => {
  const r = route([-10, -2, -3, -40], { k: 3, minWeight: 1e-3 });
  assert.deepEqual(r.indices, [1, 2]); // -10 is 3e-4 of the best: dropped; -40 beyond k anyway
  assert.ok(Math.abs(r.weights[0]! + r.weights[1]! - 1) < 1e-12);
  assert.deepEqual(selectTop(Float64Array.of(1e-9, 1e-9), 2, 0.9).indices, [0]);
});

test('dropping a specialist renormalises; nothing left is a MixtureError', () => {
  close(dropSpecialist(Float64Array.of(0.5, 0.25, 0.25), 0), [0.5, 0.5]);
  close(dropSpecialist(Float64Array.of(1, 0, 0), 0), [0.5, 0.5]);
  assert.throws(() => normalise([0, 0]), MixtureError);
});
