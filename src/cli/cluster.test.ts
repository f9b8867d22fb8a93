// The cluster launcher on its own: readiness from stderr, a clear error when a child dies first, and close()
// leaving no process and no folder behind. (The demo's test and test/integration/ run whole federations.)
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { Cluster } from './cluster.ts';

test('a coordinator starts on a free port, answers, and close() stops it and removes the folder', async () => {
  const cluster = new Cluster({ prefix: 'sharedllm-cluster-test-', logLevel: 'warn' });
  try {
    const coordinator = await cluster.coordinator({ relayPort: 0 });
    assert.match(coordinator.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const health = await fetch(`${coordinator.url}/health`);
    assert.equal(health.status, 200);
    assert.ok(coordinator.proc.running);
  } finally {
    await cluster.close();
  }
  assert.ok(cluster.stopping);
  assert.ok(cluster.procs.every((p) => !p.running), 'every child has exited');
  assert.equal(existsSync(cluster.dir), false, 'the temp folder is gone');
});

test('waiting for a line a child never prints fails with its stderr; run() gives exit code and output', async () => {
  const cluster = new Cluster({ prefix: 'sharedllm-cluster-test-' });
  try {
    const proc = cluster.spawn('typo', ['nosuchcommand']);
    await assert.rejects(proc.waitFor(/never printed/), /typo exited \(2\) before printing \/never printed\/:\n.*unknown command 'nosuchcommand'/s);
    const version = await cluster.run('version', ['--version']);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^\d+\.\d+\.\d+/);
  } finally {
    await cluster.close();
  }
});
