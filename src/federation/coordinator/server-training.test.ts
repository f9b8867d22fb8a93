/**
 * A DiLoCo server's progress (heartbeat `training`) shows in its NodeView until it registers again; the
 * coordinator's dashboard draws the loss curves from it. An oversized report is refused like any bad beat.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { localTestConfig } from '../config.ts';
import { MAX_REPORTED_ROUNDS, NodeViewSchema } from '../protocol.ts';
import { createEphemeralIdentity } from '../identity.ts';
import { silentLogger } from '../../util/log.ts';
import { startCoordinator } from './coordinator.ts';
import { MemoryStore } from './memory-store.ts';
import { makeHeartbeat, makeRegistration, tempDir } from './testing.ts';

test("a DiLoCo server's heartbeat progress shows in its node view; a new registration clears it; too many rounds are refused", async () => {
  const dir = tempDir();
  const config = { ...localTestConfig(), suspectTimeoutMs: 60_000, deadTimeoutMs: 60_000 };
  const coordinator = await startCoordinator({ host: '127.0.0.1', port: 0, dataDir: dir.path, config, logger: silentLogger, store: new MemoryStore() });
  try {
    const node = createEphemeralIdentity();
    const post = (path: string, body: unknown) => fetch(`${coordinator.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const view = async () => NodeViewSchema.parse(await (await fetch(`${coordinator.url}/v1/nodes/${node.id}`)).json());
    assert.equal((await post('/v1/nodes/register', makeRegistration({ role: 'primary', incarnation: 1 }, node))).status, 200);
    assert.equal((await view()).training, undefined);
    const training = { jobId: 'job-1', round: 2, rounds: 10, metrics: [{ round: 0, innerLoss: 5.1, heldOutLoss: 5.3, participants: 2 }, { round: 1, innerLoss: 4.8, participants: 3 }] };
    const beat = await post(`/v1/nodes/${node.id}/heartbeat`, makeHeartbeat(node, { nodeId: node.id, incarnation: 1, freeMemoryBytes: 1, load: 0, training }));
    assert.equal(beat.status, 200, await beat.text());
    assert.deepEqual((await view()).training, training);
    const metrics = Array.from({ length: MAX_REPORTED_ROUNDS + 1 }, (_, round) => ({ round }));
    const big = await post(`/v1/nodes/${node.id}/heartbeat`, makeHeartbeat(node, { nodeId: node.id, incarnation: 1, freeMemoryBytes: 1, load: 0, training: { ...training, metrics } }));
    assert.equal(big.status, 400);
    await big.body?.cancel();
    assert.deepEqual((await view()).training, training, 'the refused beat changed nothing');
    assert.equal((await post('/v1/nodes/register', makeRegistration({ role: 'primary', incarnation: 2 }, node))).status, 200);
    assert.equal((await view()).training, undefined, 'a new incarnation has reported nothing yet');
  } finally {
    await coordinator.close();
    dir.cleanup();
  }
});
