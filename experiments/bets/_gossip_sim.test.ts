import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeFixtures, pushBound, quantile, runOnce, serfModelCoverage, serfModelRounds } from './_gossip_sim.ts';

test('pushBound, quantile (nearest rank) and the Serf model', () => {
  assert.ok(Math.abs(pushBound(1000) - (Math.log2(1000) + Math.log(1000))) < 1e-12);
  assert.equal(quantile([5, 1, 3, 2, 4], 0.5), 3);
  assert.equal(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.99), 10);
  const r = serfModelRounds(100, 3, 0, 0, 0.9999);
  assert.ok(serfModelCoverage(100, 3, 0, 0, r) >= 0.9999 && serfModelCoverage(100, 3, 0, 0, r - 1) < 0.9999);
  assert.ok(serfModelRounds(100, 3, 0.1, 0, 0.9999) >= r, 'loss slows the model down');
});

test('a small run converges, refuses the liar\'s forgeries, and the no-gossip control spreads nothing', async () => {
  const fixtures = makeFixtures();
  const run = await runOnce({ nodes: 20, fanout: 2, loss: 0.1, churn: 0.2 }, 5, fixtures);
  assert.equal(run.converged, true);
  assert.equal(run.forgedAccepted, 0);
  assert.ok(run.refused > 0, 'the liar was asked and its forgeries were refused');
  assert.ok(run.bytesPerNodeRound > 0);
  const control = await runOnce({ nodes: 20, fanout: 2, loss: 0, churn: 0.2 }, 5, fixtures, { gossip: false });
  assert.equal(control.converged, false);
  assert.equal(control.holdersAtEnd, 1, 'only the origin holds the entry');
});
