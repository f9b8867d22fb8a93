import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { getGgml } from '../../ggml/runtime.ts';
import { promptLogLikelihood, tokenLogLikelihoods } from './likelihood.ts';
import { scoreMixture, specialistLogLikelihoods } from './score.ts';
import { type TestSpecialists, loadTestSpecialists } from './testing.ts';

const ggml = getGgml({ gpu: 'off' });

test('scoring: one specialist scores as itself; uniform is the log of the mean; shares sum to 1', () => {
  const a = Float64Array.of(-1, -2, -3);
  const b = Float64Array.of(-2, -1, -900);
  assert.deepEqual([...scoreMixture([a]).logProb], [...a]);
  const u = scoreMixture([a, b], { mode: 'uniform' });
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(u.logProb[i]! - Math.log((Math.exp(a[i]!) + Math.exp(b[i]!)) / 2)) < 1e-9);
  const p = scoreMixture([a, b], { fixedShare: 0 }); // exact Bayes (the default has a fixed share)
  for (const s of p.shares) assert.ok(Math.abs(s[0]! + s[1]! - 1) < 1e-12);
  assert.ok(p.weights[1]![0]! > 0.7, 'the posterior followed a (a gave token 0 the higher likelihood)'); // before token 2 the evidence is even: 0.5
  const from = scoreMixture([a, b], { from: 2, fixedShare: 0 });
  assert.equal(from.logProb.length, 1);
  assert.equal(from.logProb[0], p.logProb[2]);
});

let t: TestSpecialists;
before(async () => {
  t = await loadTestSpecialists(1);
});
after(async () => {
  await t.dispose();
});

test('per-token log-likelihoods of a real model sum to the prompt log-likelihood', async () => {
  const tokens = t.tokenizer.encode('A fairly ordinary sentence about the weather and the sea.');
  const ll = await specialistLogLikelihoods(t.specialists[0]!.batcher, ggml, tokens);
  assert.equal(ll.length, tokens.length - 1);
  const seq = await t.specialists[0]!.start(tokens);
  await seq.close();
  const sum = ll.reduce((x, y) => x + y, 0);
  assert.ok(Math.abs(sum - seq.promptLogLikelihood) < 1e-3 * Math.abs(sum), `${sum} vs ${seq.promptLogLikelihood}`);
  assert.equal(tokenLogLikelihoods(ggml, [], [1]).length, 0);
  assert.equal(promptLogLikelihood(ggml, [], [1]), 0);
});
