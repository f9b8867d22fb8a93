import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiError } from './errors.ts';
import { ConcurrencyLimiter } from './limiter.ts';

test('grants up to maxConcurrent at once, queues in order, then refuses with 429', async () => {
  const limiter = new ConcurrencyLimiter(2, 2);
  const a = await limiter.acquire();
  const b = await limiter.acquire();
  assert.equal(limiter.active, 2);
  const order: string[] = [];
  const c = limiter.acquire().then((release) => (order.push('c'), release));
  const d = limiter.acquire().then((release) => (order.push('d'), release));
  assert.equal(limiter.queued, 2);
  await assert.rejects(limiter.acquire(), (error: unknown) => {
    assert.ok(error instanceof ApiError);
    assert.equal(error.status, 429);
    assert.equal(error.headers['retry-after'], '1');
    return true;
  });
  a();
  a(); // a second release of the same slot does nothing
  const releaseC = await c;
  assert.deepEqual(order, ['c']);
  assert.equal(limiter.active, 2);
  b();
  const releaseD = await d;
  assert.deepEqual(order, ['c', 'd']);
  releaseC();
  releaseD();
  assert.equal(limiter.active, 0);
  assert.equal(limiter.queued, 0);
});

test('a waiter whose signal aborts leaves the queue with the signal reason', async () => {
  const limiter = new ConcurrencyLimiter(1, 4);
  const held = await limiter.acquire();
  const controller = new AbortController();
  const waiting = limiter.acquire(controller.signal);
  assert.equal(limiter.queued, 1);
  const reason = new Error('client gone');
  controller.abort(reason);
  await assert.rejects(waiting, (error) => error === reason);
  assert.equal(limiter.queued, 0);
  held();
  assert.equal(limiter.active, 0);
  await assert.rejects(limiter.acquire(controller.signal), (error) => error === reason, 'an aborted signal is refused at once');
  assert.equal(limiter.active, 0);
});

test('rejects nonsense limits', () => {
  assert.throws(() => new ConcurrencyLimiter(0, 1), RangeError);
  assert.throws(() => new ConcurrencyLimiter(1, -1), RangeError);
});

test('close() refuses the waiting requests and every later one; the slots held go on until released', async () => {
  const limiter = new ConcurrencyLimiter(1, 2);
  const held = await limiter.acquire();
  const waiting = limiter.acquire();
  const reason = new ApiError(503, 'the server is shutting down');
  limiter.close(reason);
  limiter.close(new Error('a second close changes nothing'));
  await assert.rejects(waiting, (error: unknown) => error === reason);
  await assert.rejects(limiter.acquire(), (error: unknown) => error === reason);
  assert.equal(limiter.queued, 0);
  assert.equal(limiter.active, 1);
  assert.ok(limiter.closed);
  held();
  assert.equal(limiter.active, 0);
});
