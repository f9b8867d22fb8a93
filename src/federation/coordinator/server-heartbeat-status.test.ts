/**
 * What a node reports in its heartbeats beside its load shows in its NodeView until it registers again (a new
 * incarnation has reported nothing yet); the coordinator's dashboard draws it: a primary's layer placement
 * (`spans`) and a DiLoCo server's progress (`training`). An oversized report is refused like any bad beat.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { localTestConfig } from '../config.ts';
import { type Identity, createEphemeralIdentity } from '../identity.ts';
import { type HeartbeatBody, MAX_REPORTED_ROUNDS, NodeViewSchema } from '../protocol.ts';
import { silentLogger } from '../../util/log.ts';
import { startCoordinator } from './coordinator.ts';
import { MemoryStore } from './memory-store.ts';
import { makeHeartbeat, makeRegistration, tempDir } from './testing.ts';

interface Harness {
  node: Identity;
  post(path: string, body: unknown): Promise<Response>;
  view(): Promise<ReturnType<typeof NodeViewSchema.parse>>;
  /** Registers the node as a primary of this incarnation (200 expected). */
  register(incarnation: number): Promise<void>;
  /** A heartbeat of incarnation 1 with these reports beside the load. */
  beat(reports: Pick<HeartbeatBody, 'spans' | 'training'>): Promise<Response>;
}

async function withCoordinator(body: (h: Harness) => Promise<void>): Promise<void> {
  const dir = tempDir();
  const config = { ...localTestConfig(), suspectTimeoutMs: 60_000, deadTimeoutMs: 60_000 };
  const coordinator = await startCoordinator({ host: '127.0.0.1', port: 0, dataDir: dir.path, config, logger: silentLogger, store: new MemoryStore() });
  try {
    const node = createEphemeralIdentity();
    const post = (path: string, b: unknown) => fetch(`${coordinator.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(b) });
    await body({
      node,
      post,
      view: async () => NodeViewSchema.parse(await (await fetch(`${coordinator.url}/v1/nodes/${node.id}`)).json()),
      register: async (incarnation) => assert.equal((await post('/v1/nodes/register', makeRegistration({ role: 'primary', incarnation }, node))).status, 200),
      beat: (reports) => post(`/v1/nodes/${node.id}/heartbeat`, makeHeartbeat(node, { nodeId: node.id, incarnation: 1, freeMemoryBytes: 1, load: 0, ...reports })),
    });
  } finally {
    await coordinator.close();
    dir.cleanup();
  }
}

test("a primary's heartbeat spans show in its node view, and a new registration clears them", () =>
  withCoordinator(async ({ node, view, register, beat }) => {
    await register(1);
    assert.equal((await view()).spans, undefined);
    const model = `sha256:${'ab'.repeat(32)}`;
    const spans = [{ model, nodeId: node.id, first: 0, last: 2 }, { model, nodeId: 'worker-1', first: 2, last: 30 }];
    const ok = await beat({ spans });
    assert.equal(ok.status, 200, await ok.text());
    assert.deepEqual((await view()).spans, spans);
    await register(2);
    assert.equal((await view()).spans, undefined, 'a new incarnation has not placed anything yet');
  }));

test("a DiLoCo server's heartbeat progress shows in its node view; a new registration clears it; too many rounds are refused", () =>
  withCoordinator(async ({ view, register, beat }) => {
    await register(1);
    assert.equal((await view()).training, undefined);
    const training = { jobId: 'job-1', round: 2, rounds: 10, metrics: [{ round: 0, innerLoss: 5.1, heldOutLoss: 5.3, participants: 2 }, { round: 1, innerLoss: 4.8, participants: 3 }] };
    const ok = await beat({ training });
    assert.equal(ok.status, 200, await ok.text());
    assert.deepEqual((await view()).training, training);
    const metrics = Array.from({ length: MAX_REPORTED_ROUNDS + 1 }, (_, round) => ({ round }));
    const big = await beat({ training: { ...training, metrics } });
    assert.equal(big.status, 400);
    await big.body?.cancel();
    assert.deepEqual((await view()).training, training, 'the refused beat changed nothing');
    await register(2);
    assert.equal((await view()).training, undefined, 'a new incarnation has reported nothing yet');
  }));
