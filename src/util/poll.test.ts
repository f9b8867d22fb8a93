import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PollTimeoutError, pollUntil } from './poll.ts';

test('pollUntil resolves with the first answer; false, null and undefined mean "not yet", 0 is an answer', async () => {
  let n = 0;
  assert.equal(await pollUntil('the third check', () => ++n >= 3), true);
  assert.equal(n, 3);
  const answers = [undefined, null, false, 0, 5];
  assert.equal(await pollUntil('a number', () => answers.shift(), { intervalMs: 1 }), 0);
  assert.equal(await pollUntil('an async value', async () => 'ready'), 'ready');
});

test('pollUntil times out with an error that names what it waited for', async () => {
  const error = await pollUntil('the moon to turn blue', () => false, { timeoutMs: 30, intervalMs: 5 }).catch((e: unknown) => e);
  assert.ok(error instanceof PollTimeoutError);
  assert.match(error.message, /timed out waiting for the moon to turn blue/);
  assert.equal(error.what, 'the moon to turn blue');
  assert.ok(error.checks >= 2, 'it checked more than once');
});

test('a throwing check ends the wait, unless retryErrors: then the last error is named on timeout', async () => {
  await assert.rejects(pollUntil('a server', () => { throw new Error('ECONNREFUSED'); }), /ECONNREFUSED/);
  let n = 0;
  const flaky = () => {
    if (++n < 3) throw new Error('still starting');
    return 'up';
  };
  assert.equal(await pollUntil('a starting server', flaky, { retryErrors: true, intervalMs: 1 }), 'up');
  const error = await pollUntil('a dead server', () => { throw new Error('ECONNREFUSED'); }, { retryErrors: true, timeoutMs: 20, intervalMs: 5 }).catch((e: unknown) => e);
  assert.ok(error instanceof PollTimeoutError);
  assert.match(error.message, /a dead server.*the last one threw: ECONNREFUSED/);
});

test('an abort signal stops the wait', async () => {
  const controller = new AbortController();
  const waiting = pollUntil('never', () => false, { timeoutMs: 60_000, signal: controller.signal });
  controller.abort(new Error('shutting down'));
  await assert.rejects(waiting, /shutting down/);
});
