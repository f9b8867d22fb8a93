import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StepTimings } from './step-timings.ts';

test('summary: medians per part, hops = remote wall minus worker compute', () => {
  const t = new StepTimings(4);
  for (const [total, w] of [[100, 40], [110, 45], [90, 35]] as const) {
    t.record({ totalMs: total, localMs: 50, remoteWallMs: w + 4, remote: [{ nodeId: 'a', computeMs: w }], tokens: 1 });
  }
  const s = t.summary();
  assert.equal(s.steps, 3);
  assert.equal(s.totalMs, 100);
  assert.equal(s.localMs, 50);
  assert.deepEqual(s.workerMs, { a: 40 });
  assert.equal(s.hopsMs, 4);
});

test('the ring keeps the last `capacity` steps; filter picks steps; empty is zeros', () => {
  const t = new StepTimings(2);
  for (const n of [1, 2, 3]) t.record({ totalMs: n, localMs: 0, remoteWallMs: 0, remote: [], tokens: n });
  assert.equal(t.summary().steps, 2);
  assert.equal(t.summary((s) => s.tokens === 3).totalMs, 3);
  t.clear();
  assert.deepEqual(t.summary(), { steps: 0, totalMs: 0, localMs: 0, workerMs: {}, hopsMs: 0 });
});
