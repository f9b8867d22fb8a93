// The signal handling every long-running command shares (shutdown.ts), driven by a fake signal source.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { SHUTDOWN_SIGNALS, Shutdown, signalExitCode } from './shutdown.ts';

function harness(deadlineMs = 60_000) {
  const source = new EventEmitter();
  const exits: number[] = [];
  const lines: string[] = [];
  const shutdown = new Shutdown({ name: 'test', source, exit: (code) => exits.push(code), write: (line) => lines.push(line), deadlineMs });
  const signal = (name: 'SIGTERM' | 'SIGINT') => source.emit(name, name);
  return { source, exits, lines, shutdown, signal };
}

test('a signal while starting stops at once with 128 + the signal number', () => {
  const h = harness();
  h.signal('SIGINT');
  assert.deepEqual(h.exits, [130]);
  assert.match(h.lines[0]!, /SIGINT while starting/);
  h.shutdown.dispose();
});

test('serving: the first signal asks for the orderly shutdown, which runs once; a second signal stops at once', async () => {
  const h = harness();
  h.shutdown.serving();
  h.signal('SIGTERM');
  assert.equal(await h.shutdown.requested, 'SIGTERM');
  assert.deepEqual(h.exits, [], 'the first signal exits nothing by itself');
  let runs = 0;
  let finish: () => void = () => {};
  const steps = () => {
    runs++;
    return new Promise<void>((resolve) => (finish = resolve));
  };
  const first = h.shutdown.run(steps);
  const again = h.shutdown.run(steps);
  assert.equal(first, again, 'idempotent: the same shutdown');
  assert.equal(runs, 1);
  h.signal('SIGTERM');
  assert.deepEqual(h.exits, [signalExitCode('SIGTERM')]);
  assert.equal(signalExitCode('SIGTERM'), 143);
  finish();
  assert.equal(await first, 0);
  h.shutdown.dispose();
});

test('the listeners stay installed until dispose(), so another library cannot find itself alone', () => {
  const h = harness();
  h.shutdown.serving();
  h.signal('SIGINT');
  for (const s of SHUTDOWN_SIGNALS) assert.equal(h.source.listenerCount(s), 1, `${s} still handled after the first signal`);
  h.shutdown.dispose();
  for (const s of SHUTDOWN_SIGNALS) assert.equal(h.source.listenerCount(s), 0);
});

test('a failing step gives exit code 1; a shutdown past its deadline exits 1 without waiting', async () => {
  const failing = harness();
  failing.shutdown.serving();
  assert.equal(await failing.shutdown.run(() => Promise.reject(new Error('coordinator gone'))), 1);
  assert.match(failing.lines.at(-1)!, /coordinator gone/);
  failing.shutdown.dispose();

  const hung = harness(10);
  hung.shutdown.serving();
  void hung.shutdown.run(() => new Promise<void>(() => {}));
  while (hung.exits.length === 0) await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(hung.exits, [1]);
  assert.match(hung.lines.at(-1)!, /did not finish within/);
  hung.shutdown.dispose();
});
