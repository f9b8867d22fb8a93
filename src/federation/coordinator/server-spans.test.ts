/**
 * A primary's layer placement (heartbeat `spans`) shows in its NodeView until it registers again; the
 * coordinator's dashboard draws it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { localTestConfig } from '../config.ts';
import { NodeViewSchema } from '../protocol.ts';
import { createEphemeralIdentity } from '../identity.ts';
import { silentLogger } from '../../util/log.ts';
import { startCoordinator } from './coordinator.ts';
import { MemoryStore } from './memory-store.ts';
import { makeHeartbeat, makeRegistration, tempDir } from './testing.ts';

test("a primary's heartbeat spans show in its node view, and a new registration clears them", async () => {
  const dir = tempDir();
  const config = { ...localTestConfig(), suspectTimeoutMs: 60_000, deadTimeoutMs: 60_000 };
  const coordinator = await startCoordinator({ host: '127.0.0.1', port: 0, dataDir: dir.path, config, logger: silentLogger, store: new MemoryStore() });
  try {
    const node = createEphemeralIdentity();
    const post = (path: string, body: unknown) => fetch(`${coordinator.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const view = async () => NodeViewSchema.parse(await (await fetch(`${coordinator.url}/v1/nodes/${node.id}`)).json());
    assert.equal((await post('/v1/nodes/register', makeRegistration({ role: 'primary', incarnation: 1 }, node))).status, 200);
    assert.equal((await view()).spans, undefined);
    const model = `sha256:${'ab'.repeat(32)}`;
    const spans = [{ model, nodeId: node.id, first: 0, last: 2 }, { model, nodeId: 'worker-1', first: 2, last: 30 }];
    const beat = await post(`/v1/nodes/${node.id}/heartbeat`, makeHeartbeat(node, { nodeId: node.id, incarnation: 1, freeMemoryBytes: 1, load: 0, spans }));
    assert.equal(beat.status, 200, await beat.text());
    assert.deepEqual((await view()).spans, spans);
    assert.equal((await post('/v1/nodes/register', makeRegistration({ role: 'primary', incarnation: 2 }, node))).status, 200);
    assert.equal((await view()).spans, undefined, 'a new incarnation has not placed anything yet');
  } finally {
    await coordinator.close();
    dir.cleanup();
  }
});
