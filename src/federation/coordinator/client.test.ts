import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { localTestConfig } from '../config.ts';
import { CoordinatorClient, CoordinatorError, CoordinatorUnreachableError } from './client.ts';
import { startCoordinator } from './coordinator.ts';
import type { RunningCoordinator } from './coordinator.ts';
import { createEphemeralIdentity } from '../identity.ts';
import type { JoinOptions } from './lease.ts';
import { silentLogger } from '../../util/log.ts';
import { makeHeartbeat, makeLeave, makeRegistration, tempDir, waitFor } from './testing.ts';

// Fast heartbeats and retries, but no node expires by accident on a loaded machine.
const config = { ...localTestConfig(), suspectTimeoutMs: 60_000, deadTimeoutMs: 60_000 };
let coordinator: RunningCoordinator;
let client: CoordinatorClient;
let dir: ReturnType<typeof tempDir>;

before(async () => {
  dir = tempDir();
  coordinator = await startCoordinator({ host: '127.0.0.1', port: 0, dataDir: dir.path, joinToken: 'tok', config, logger: silentLogger });
  client = new CoordinatorClient({ url: coordinator.url, joinToken: 'tok' });
});

after(async () => {
  client.close();
  await coordinator.close();
  dir.cleanup();
});

function joinOptions(nodeId: string, overrides: Partial<JoinOptions> = {}): JoinOptions {
  const identity = createEphemeralIdentity();
  const { signature: _s, incarnation: _i, publicKey: _p, protocolVersion: _v, ...registration } = makeRegistration({ nodeId }, identity);
  return { identity, registration, config, logger: silentLogger, ...overrides };
}

test('typed calls: register, heartbeat, list with filters, errors carry status, code and hint', async () => {
  const node = createEphemeralIdentity();
  const registration = makeRegistration({ nodeId: 'typed-w1', incarnation: 1 }, node);
  const answer = await client.register(registration);
  assert.equal(answer.state, 'alive');
  assert.equal(answer.coordinator.publicKey, coordinator.identity.publicKey);
  assert.equal((await client.heartbeat(makeHeartbeat(node, { nodeId: 'typed-w1', incarnation: 1, freeMemoryBytes: 5, load: 0.1 }))).state, 'alive');
  assert.ok((await client.listNodes({ role: 'worker', state: 'alive' })).some((node) => node.nodeId === 'typed-w1'));
  assert.deepEqual(await client.listNodes({ role: 'primary' }), []);

  await assert.rejects(client.heartbeat(makeHeartbeat(node, { nodeId: 'typed-ghost', incarnation: 1, freeMemoryBytes: 5, load: 0 })), (error: unknown) => {
    assert.ok(error instanceof CoordinatorError);
    assert.equal(error.status, 404);
    assert.equal(error.code, 'unknown_node');
    assert.ok(error.hint !== undefined);
    return true;
  });
  const noToken = new CoordinatorClient({ url: coordinator.url });
  await assert.rejects(noToken.listNodes(), (error: unknown) => error instanceof CoordinatorError && error.status === 401);
  noToken.close();
});

test('an unreachable coordinator is a CoordinatorUnreachableError', async () => {
  const closed = new CoordinatorClient({ url: 'http://127.0.0.1:1', requestTimeoutMs: 1_000 });
  await assert.rejects(closed.health(), (error: unknown) => error instanceof CoordinatorUnreachableError && /running/.test(error.hint));
  closed.close();
});

test('join: registers, heartbeats, re-registers with incarnation + 1 after unknown_node, leaves', async () => {
  let free = 1_000;
  const options = joinOptions('lease-w1', { incarnation: 10, status: () => ({ freeMemoryBytes: free, load: 0.5 }) });
  const lease = client.join(options);
  await lease.registered;
  assert.equal(lease.incarnation, 10);

  free = 2_000;
  await waitFor('a heartbeat carrying the new free memory', async () => (await client.getNode('lease-w1')).freeMemoryBytes === 2_000);
  assert.equal((await client.getNode('lease-w1')).load, 0.5);

  // Someone marks the node left behind its back: the next heartbeat gets unknown_node.
  await client.leave(makeLeave(options.identity, { nodeId: 'lease-w1', incarnation: 10 }));
  await waitFor('re-registration', async () => (await client.getNode('lease-w1')).state === 'alive');
  assert.equal(lease.incarnation, 11);
  assert.equal(lease.registrations, 2);
  assert.equal((await client.getNode('lease-w1')).incarnation, 11);

  await lease.leave();
  assert.equal(lease.state, 'stopped');
  assert.equal((await client.getNode('lease-w1')).state, 'left');
});

test('join: an older process (stale incarnation) stops for good and reports why', async () => {
  const options = joinOptions('lease-w2', { incarnation: 50 });
  const newer = client.join(options);
  await newer.registered;

  let fatal: Error | undefined;
  const older = client.join({ ...options, incarnation: 40, onFatal: (error) => (fatal = error) });
  await assert.rejects(older.registered, (error: unknown) => error instanceof CoordinatorError && error.code === 'stale_incarnation');
  assert.ok(fatal instanceof CoordinatorError);
  assert.equal(older.state, 'stopped');
  await newer.stop();
});

test('join: retries with backoff while the coordinator is down, stop() ends the loop', async () => {
  const down = new CoordinatorClient({ url: 'http://127.0.0.1:1', requestTimeoutMs: 500 });
  const lease = down.join(joinOptions('lease-w3'));
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(lease.state, 'registering');
  await lease.stop();
  assert.equal(lease.state, 'stopped');
  await assert.rejects(lease.registered, /stopped before registering/);
  down.close();
});
