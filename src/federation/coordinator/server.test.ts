/**
 * HTTP tests against a real coordinator on 127.0.0.1 (port 0). Requests are made with fetch, so the
 * edge (status codes, error shape, headers) is tested independently of CoordinatorClient.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { localTestConfig } from '../config.ts';
import { ErrorBodySchema, HealthSchema, NodeListSchema, NodeViewSchema, PROTOCOL_HEADER, PROTOCOL_VERSION } from '../protocol.ts';
import { GossipResponseSchema, ManifestListSchema, SpecialistListSchema, SpecialistViewSchema } from '../protocol-directory.ts';
import { startCoordinator } from './coordinator.ts';
import type { RunningCoordinator } from './coordinator.ts';
import { createEphemeralIdentity } from '../identity.ts';
import { silentLogger } from '../../util/log.ts';
import type { LogFields, Logger } from '../../util/log.ts';
import { MemoryStore } from './memory-store.ts';
import { makeHeartbeat, makeLeave, makeManifest, makeRegistration, makeRevocation, tempDir } from './testing.ts';

const TOKEN = 'correct horse battery staple';
// Fast heartbeats, but no node expires between two requests of a test on a loaded machine.
const config = { ...localTestConfig(), suspectTimeoutMs: 60_000, deadTimeoutMs: 60_000 };
let coordinator: RunningCoordinator;
let dir: ReturnType<typeof tempDir>;

before(async () => {
  dir = tempDir();
  coordinator = await startCoordinator({ host: '127.0.0.1', port: 0, dataDir: dir.path, joinToken: TOKEN, config, logger: silentLogger });
});

after(async () => {
  await coordinator.close();
  dir.cleanup();
});

interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

async function call(method: string, path: string, options: { body?: unknown; raw?: string; token?: string | null; contentType?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  const token = options.token === undefined ? TOKEN : options.token;
  if (token !== null) headers['authorization'] = `Bearer ${token}`;
  const payload = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  if (payload !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
  const res = await fetch(`${coordinator.url}${path}`, { method, headers, ...(payload === undefined ? {} : { body: payload }) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text.length > 0 ? JSON.parse(text) : undefined };
}

function assertError(answer: Answer, status: number, code: string): void {
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  const body = ErrorBodySchema.parse(answer.body);
  assert.equal(body.error.code, code);
  assert.ok(body.error.message.length > 0);
}

test('register, heartbeat, list, get, health', async () => {
  const node = createEphemeralIdentity();
  const registration = makeRegistration({ nodeId: 'flow-w1', incarnation: 3 }, node);
  const registered = await call('POST', '/v1/nodes/register', { body: registration });
  assert.equal(registered.status, 200);
  assert.equal(registered.headers.get(PROTOCOL_HEADER), String(PROTOCOL_VERSION));
  assert.deepEqual(registered.body, {
    nodeId: 'flow-w1',
    incarnation: 3,
    state: 'alive',
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    protocolVersion: PROTOCOL_VERSION,
    coordinator: coordinator.identity,
  });

  const beat = await call('POST', '/v1/nodes/flow-w1/heartbeat', { body: makeHeartbeat(node, { nodeId: 'flow-w1', incarnation: 3, freeMemoryBytes: 1234, load: 0.75 }) });
  assert.equal(beat.status, 200);
  assert.deepEqual(beat.body, { nodeId: 'flow-w1', incarnation: 3, state: 'alive', heartbeatIntervalMs: config.heartbeatIntervalMs });

  const view = NodeViewSchema.parse((await call('GET', '/v1/nodes/flow-w1')).body);
  assert.equal(view.freeMemoryBytes, 1234);
  assert.equal(view.load, 0.75);
  assert.deepEqual(view.candidates, registration.candidates);
  assert.equal(view.publicKey, registration.publicKey);
  assert.equal('signature' in ((await call('GET', '/v1/nodes/flow-w1')).body as object), false);

  const primaryKey = createEphemeralIdentity();
  await call('POST', '/v1/nodes/register', { body: makeRegistration({ nodeId: 'flow-p1', role: 'primary' }, primaryKey) });
  const workers = NodeListSchema.parse((await call('GET', '/v1/nodes?role=worker&state=alive')).body);
  assert.ok(workers.nodes.some((node) => node.nodeId === 'flow-w1'));
  assert.ok(workers.nodes.every((node) => node.role === 'worker' && node.state === 'alive'));
  const all = NodeListSchema.parse((await call('GET', '/v1/nodes')).body);
  assert.ok(all.nodes.some((node) => node.nodeId === 'flow-p1'));

  const health = HealthSchema.parse((await call('GET', '/health', { token: null })).body);
  assert.equal(health.protocolVersion, PROTOCOL_VERSION);
  assert.ok(health.nodes.total >= 2 && health.nodes.alive >= 2);
  assert.deepEqual(health.coordinator, coordinator.identity);

  const left = await call('POST', '/v1/nodes/flow-p1/leave', { body: makeLeave(primaryKey, { nodeId: 'flow-p1', incarnation: 1 }) });
  assert.deepEqual(left.body, { nodeId: 'flow-p1', state: 'left' });
});

test('join token: missing or wrong -> 401 with a hint; /health needs none', async () => {
  const missing = await call('GET', '/v1/nodes', { token: null });
  assertError(missing, 401, 'unauthorized');
  assert.match(ErrorBodySchema.parse(missing.body).error.hint ?? '', /join token/i);
  assert.match(missing.headers.get('www-authenticate') ?? '', /^Bearer/);
  assertError(await call('GET', '/v1/nodes', { token: 'wrong' }), 401, 'unauthorized');
  assertError(await call('GET', '/v1/nodes', { token: `${TOKEN}x` }), 401, 'unauthorized');
  assertError(await call('POST', '/v1/nodes/register', { token: null, body: makeRegistration() }), 401, 'unauthorized');
  assertError(await call('GET', '/v1/no-such-route', { token: null }), 401, 'unauthorized'); // no route probing
  assert.equal((await call('GET', '/health', { token: null })).status, 200);
});

test('malformed JSON -> 400 invalid_json; schema mismatch -> 400 invalid_body naming the field', async () => {
  assertError(await call('POST', '/v1/nodes/register', { raw: '{"nodeId": ' }), 400, 'invalid_json');
  const invalid = await call('POST', '/v1/nodes/register', { body: { ...makeRegistration(), threads: 'many' } });
  assertError(invalid, 400, 'invalid_body');
  assert.match(ErrorBodySchema.parse(invalid.body).error.message, /threads/);
  assertError(await call('POST', '/v1/nodes/register', { raw: '{}', contentType: 'text/plain' }), 415, 'unsupported_media_type');
});

test('oversize body -> 413', async () => {
  const huge = JSON.stringify({ padding: 'x'.repeat(2 * 1024 * 1024) });
  assertError(await call('POST', '/v1/nodes/register', { raw: huge }), 413, 'payload_too_large');
  // the server still answers afterwards
  assert.equal((await call('GET', '/health')).status, 200);
});

test('unknown routes -> 404 and wrong methods -> 405, in the error shape', async () => {
  assertError(await call('GET', '/v1/nothing-here'), 404, 'not_found');
  assertError(await call('GET', '/nope', { token: null }), 404, 'not_found');
  const wrongMethod = await call('DELETE', '/v1/nodes');
  assertError(wrongMethod, 405, 'method_not_allowed');
  assert.equal(wrongMethod.headers.get('allow'), 'GET');
  assertError(await call('GET', '/v1/nodes/nobody'), 404, 'not_found');
  assertError(await call('GET', '/v1/nodes?state=zombie'), 400, 'bad_request');
});

test('registration: bad signature, other protocol version, stale incarnation, id held by another key', async () => {
  const identity = createEphemeralIdentity();
  const good = makeRegistration({ nodeId: 'reg-w1', incarnation: 5 }, identity);
  assertError(await call('POST', '/v1/nodes/register', { body: { ...good, name: 'tampered' } }), 400, 'invalid_signature');
  assertError(await call('POST', '/v1/nodes/register', { body: makeRegistration({ protocolVersion: PROTOCOL_VERSION + 1 }) }), 400, 'protocol_version');

  // fields this version does not know are covered by the signature and accepted
  const future = makeRegistration({ nodeId: 'reg-w2', ...({ gpuName: 'H100' } as object) });
  assert.equal((await call('POST', '/v1/nodes/register', { body: future })).status, 200);

  assert.equal((await call('POST', '/v1/nodes/register', { body: good })).status, 200);
  assertError(await call('POST', '/v1/nodes/register', { body: makeRegistration({ nodeId: 'reg-w1', incarnation: 4 }, identity) }), 409, 'stale_incarnation');
  assertError(await call('POST', '/v1/nodes/register', { body: makeRegistration({ nodeId: 'reg-w1', incarnation: 6 }) }), 409, 'identity_mismatch');
});

test('heartbeat and leave: unknown node 404, stale 409, path/body mismatch 400', async () => {
  const node = createEphemeralIdentity();
  const hb = { nodeId: 'hb-w1', incarnation: 2, freeMemoryBytes: 1, load: 0 };
  const unknown = await call('POST', '/v1/nodes/hb-w1/heartbeat', { body: makeHeartbeat(node, hb) });
  assertError(unknown, 404, 'unknown_node');
  assert.match(ErrorBodySchema.parse(unknown.body).error.hint ?? '', /register again/);
  await call('POST', '/v1/nodes/register', { body: makeRegistration({ nodeId: 'hb-w1', incarnation: 2 }, node) });
  assertError(await call('POST', '/v1/nodes/hb-w1/heartbeat', { body: makeHeartbeat(node, { ...hb, incarnation: 1 }) }), 409, 'stale_incarnation');
  assertError(await call('POST', '/v1/nodes/other/heartbeat', { body: makeHeartbeat(node, hb) }), 400, 'bad_request');
  assertError(await call('POST', '/v1/nodes/hb-w1/leave', { body: makeLeave(node, { nodeId: 'hb-w1', incarnation: 1 }) }), 409, 'stale_incarnation');
  assertError(await call('POST', '/v1/nodes/ghost/leave', { body: makeLeave(node, { nodeId: 'ghost', incarnation: 1 }) }), 404, 'unknown_node');
});

test('heartbeat and leave must be signed by the node\'s registered key; a replayed heartbeat is refused', async () => {
  const node = createEphemeralIdentity();
  const intruder = createEphemeralIdentity();
  await call('POST', '/v1/nodes/register', { body: makeRegistration({ nodeId: 'sig-w1', incarnation: 1 }, node) });
  const hb = { nodeId: 'sig-w1', incarnation: 1, freeMemoryBytes: 1, load: 0 };
  // Someone with the join token but another key cannot keep the node alive, change its report, or make it leave.
  assertError(await call('POST', '/v1/nodes/sig-w1/heartbeat', { body: makeHeartbeat(intruder, hb) }), 400, 'invalid_signature');
  assertError(await call('POST', '/v1/nodes/sig-w1/leave', { body: makeLeave(intruder, { nodeId: 'sig-w1', incarnation: 1 }) }), 400, 'invalid_signature');
  const signed = makeHeartbeat(node, hb);
  assertError(await call('POST', '/v1/nodes/sig-w1/heartbeat', { body: { ...signed, freeMemoryBytes: 999 } }), 400, 'invalid_signature');
  assertError(await call('POST', '/v1/nodes/sig-w1/heartbeat', { body: { ...hb } }), 400, 'invalid_body');
  assert.equal((await call('POST', '/v1/nodes/sig-w1/heartbeat', { body: signed })).status, 200);
  assertError(await call('POST', '/v1/nodes/sig-w1/heartbeat', { body: signed }), 409, 'stale_heartbeat');
  assert.equal((await call('POST', '/v1/nodes/sig-w1/heartbeat', { body: makeHeartbeat(node, hb) })).status, 200);
  // Registering again starts a new run of beats (a restarted node).
  await call('POST', '/v1/nodes/register', { body: makeRegistration({ nodeId: 'sig-w1', incarnation: 2 }, node) });
  assert.equal((await call('POST', '/v1/nodes/sig-w1/heartbeat', { body: makeHeartbeat(node, { ...hb, incarnation: 2, beat: 1 }) })).status, 200);
  assert.equal((await call('POST', '/v1/nodes/sig-w1/leave', { body: makeLeave(node, { nodeId: 'sig-w1', incarnation: 2 }) })).status, 200);
});

test('specialists: publish (201), replace with a newer version (200), refuse conflicts, replays and forgeries, revoke, list', async () => {
  const publisher = createEphemeralIdentity();
  const v1 = makeManifest({ modelId: 'srv-code', version: 1 }, publisher);
  const created = await call('POST', '/v1/specialists', { body: v1 });
  assert.equal(created.status, 201);
  assert.deepEqual(created.body, { status: 'stored', key: 'srv-code', version: 1 });
  assert.equal((await call('POST', '/v1/specialists', { body: v1 })).status, 200, 'the same manifest again is a duplicate');
  const v2 = makeManifest({ modelId: 'srv-code', version: 2, quant: 'f16' }, publisher);
  assert.deepEqual((await call('POST', '/v1/manifests', { body: v2 })).body, { status: 'stored', key: 'srv-code', version: 2, replaced: 1 });
  assertError(await call('POST', '/v1/specialists', { body: v1 }), 409, 'stale_version');
  assertError(await call('POST', '/v1/specialists', { body: makeManifest({ modelId: 'srv-code', version: 3 }) }), 409, 'manifest_conflict');
  assertError(await call('POST', '/v1/specialists', { body: { ...v2, nLayers: 31 } }), 400, 'invalid_signature');
  assertError(await call('POST', '/v1/specialists', { body: { ...v2, version: 'two' } }), 400, 'invalid_body');
  assertError(await call('POST', '/v1/specialists/revoke', { body: v2 }), 400, 'invalid_body');

  const list = SpecialistListSchema.parse((await call('GET', '/v1/specialists')).body);
  const view = list.specialists.find((entry) => entry.modelId === 'srv-code')!;
  assert.equal(view.version, 2);
  assert.equal(view.status, 'active');
  assert.equal(view.source, 'local');
  assert.equal(view.manifest!.quant, 'f16');
  assert.equal(SpecialistViewSchema.parse((await call('GET', '/v1/specialists/srv-code')).body).version, 2);
  const one = await call('GET', `/v1/manifests/${encodeURIComponent(v2.contentHash)}`);
  assert.equal((one.body as { quant: string }).quant, 'f16');
  assertError(await call('GET', '/v1/manifests/sha256%3A00'), 404, 'not_found');
  assertError(await call('GET', '/v1/specialists/nobody'), 404, 'not_found');

  assert.equal((await call('POST', '/v1/specialists/revoke', { body: makeRevocation(publisher, { modelId: 'srv-code', version: 2 }) })).status, 200);
  assert.equal(SpecialistViewSchema.parse((await call('GET', '/v1/specialists/srv-code')).body).status, 'revoked');
  assert.ok(!ManifestListSchema.parse((await call('GET', '/v1/manifests')).body).manifests.some((m) => m.modelId === 'srv-code'));
  assertError(await call('POST', '/v1/specialists', { body: v2 }), 409, 'revoked');
});

test('directory exchange: a node pulls what it lacks and pushes what the coordinator lacks', async () => {
  const mine = makeManifest({ modelId: 'from-node' });
  await call('POST', '/v1/specialists', { body: makeManifest({ modelId: 'from-coordinator' }) });
  const digest = [{ key: 'from-node', kind: 'manifest', version: 1, hash: '0123456789abcdef' }];
  const answer = GossipResponseSchema.parse((await call('POST', '/v1/directory/exchange', { body: { from: 'node-x', digest } })).body);
  assert.ok(answer.entries.some((entry) => (entry as { modelId: string }).modelId === 'from-coordinator'));
  assert.deepEqual(answer.want, ['from-node']);
  await call('POST', '/v1/directory/exchange', { body: { from: 'node-x', push: [mine] } });
  assert.equal(SpecialistViewSchema.parse((await call('GET', '/v1/specialists/from-node')).body).source, 'node-x');
  assertError(await call('POST', '/v1/directory/exchange', { body: { from: 'node-x', digest: 'no' } }), 400, 'invalid_body');
});

test('an unexpected failure is a 500 in the error shape, logged once with its stack, details not leaked', async () => {
  class BrokenStore extends MemoryStore {
    broken = false;
    override listNodes() {
      if (this.broken) throw new Error('disk on fire');
      return super.listNodes();
    }
  }
  const logged: { event: string; fields: LogFields | undefined }[] = [];
  const capture = (event: string, fields?: LogFields) => void logged.push({ event, fields });
  const logger: Logger = { debug: () => {}, info: () => {}, warn: capture, error: capture };
  const broken = tempDir();
  const store = new BrokenStore();
  let server: RunningCoordinator | undefined;
  try {
    server = await startCoordinator({ host: '127.0.0.1', port: 0, dataDir: broken.path, config: { ...localTestConfig(), sweepIntervalMs: 60_000 }, logger, store });
    store.broken = true;
    const res = await fetch(`${server.url}/v1/nodes`);
    assert.equal(res.status, 500);
    const body = ErrorBodySchema.parse(await res.json());
    assert.equal(body.error.code, 'internal');
    assert.doesNotMatch(body.error.message, /disk on fire/);
    const errors = logged.filter((entry) => entry.event === 'http_error');
    assert.equal(errors.length, 1);
    assert.match(String((errors[0]!.fields!['error'] as Error).stack), /disk on fire/);
  } finally {
    await server?.close();
    broken.cleanup();
  }
});
