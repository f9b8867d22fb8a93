import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PlanError, planSpans } from './plan.ts';

const GB = 2 ** 30;

test('layers split in proportion to free memory, contiguous, primary first', () => {
  const spans = planSpans(22, GB, [{ id: 'p', freeBytes: 8 * GB }, { id: 'w1', freeBytes: 8 * GB }, { id: 'w2', freeBytes: 16 * GB }]);
  assert.deepEqual(spans.map((s) => [s.id, s.first, s.last]), [['p', 0, 6], ['w1', 6, 11], ['w2', 11, 22]]);
});

test('a share below half a layer rounds to none: the big worker takes them all', () => {
  const spans = planSpans(10, GB, [{ id: 'p', freeBytes: 2 * GB }, { id: 'w', freeBytes: 100 * GB }]);
  assert.deepEqual(spans.map((s) => [s.id, s.first, s.last]), [['p', 0, 0], ['w', 0, 10]]);
});

test('a pinned count larger than the rest can take leaves a clear error', () => {
  assert.throws(() => planSpans(10, GB, [{ id: 'p', freeBytes: 100 * GB }, { id: 'w', freeBytes: 2 * GB }], new Map([['p', 1]])), PlanError);
});

test('a pinned count is honoured (--local-layers)', () => {
  const spans = planSpans(8, GB, [{ id: 'p', freeBytes: 100 * GB }, { id: 'w', freeBytes: 100 * GB }], new Map([['p', 4]]));
  assert.deepEqual(spans.map((s) => [s.id, s.first, s.last]), [['p', 0, 4], ['w', 4, 8]]);
});

test('a federation too small for the model is a clear error naming what to do', () => {
  assert.throws(() => planSpans(40, GB, [{ id: 'p', freeBytes: 10 * GB }, { id: 'w', freeBytes: 10 * GB }]), (e) => e instanceof PlanError && /add a worker/.test(e.message) && /room for 40 layers/.test(e.message));
});

test('a primary with no room keeps an empty span; every layer is placed exactly once', () => {
  for (let n = 1; n < 40; n += 7) {
    const spans = planSpans(n, GB, [{ id: 'p', freeBytes: 0 }, { id: 'a', freeBytes: 3 * GB * n }, { id: 'b', freeBytes: 5 * GB * n }]);
    assert.equal(spans[0]!.id, 'p');
    assert.equal(spans[0]!.last - spans[0]!.first, 0);
    let at = 0;
    for (const s of spans) {
      assert.equal(s.first, at);
      at = s.last;
    }
    assert.equal(at, n);
  }
});
