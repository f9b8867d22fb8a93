import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clampTrace } from './remote-steps.ts';
import { StepDeadline } from './step-deadline.ts';

const config = { stepFloorMs: 1_000, stepSlowdown: 4, stepPerTokenMs: 2, stepMinSamples: 3 };

test('a step deadline scales with the tokens and with what steps of that size measured', () => {
  const d = new StepDeadline(config);
  assert.equal(d.deadlineMs(1), 1_002, 'nothing measured: floor + per-token allowance');
  assert.equal(d.deadlineMs(1_000), 3_000);
  for (const ms of [10, 12, 11]) d.record(1, ms);
  assert.equal(d.deadlineMs(1), 1_000 + 4 * 11 + 2, 'decode steps: the median of decode steps');
  // A prefill size not measured yet borrows the slowest per-token rate measured (11 ms/token here).
  assert.equal(d.deadlineMs(512), 1_000 + 4 * 11 * 512 + 2 * 512);
  for (const ms of [200, 220, 210]) d.record(600, ms);
  assert.equal(d.deadlineMs(512), 1_000 + 4 * 210 + 2 * 512, 'measured prefills of that size class');
  assert.equal(d.deadlineMs(1), 1_000 + 4 * 11 + 2, 'prefills do not change the decode deadline');
});

test('claimed compute times are clamped to the wall time measured at the primary', () => {
  assert.deepEqual(clampTrace([{ nodeId: 'a', computeMs: 3 }, { nodeId: 'b', computeMs: 4 }], 10), [{ nodeId: 'a', computeMs: 3 }, { nodeId: 'b', computeMs: 4 }]);
  assert.deepEqual(clampTrace([{ nodeId: 'a', computeMs: 3_600_000 }], 10), [{ nodeId: 'a', computeMs: 10 }]);
  const scaled = clampTrace([{ nodeId: 'a', computeMs: 9 }, { nodeId: 'b', computeMs: 9 }], 12);
  assert.deepEqual(scaled.map((t) => t.computeMs), [6, 6], 'hops run one after another: their sum fits the wall time');
});
