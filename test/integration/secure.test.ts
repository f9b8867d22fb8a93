// A locked-down federation of real processes: coordinator over TLS (a `sharedllm certs` pair) with a join
// token and its relay; one worker on the LAN (127.0.0.2), one reachable only through the relay (no LAN
// address), and a primary. Nodes trust the coordinator with --ca; the LAN worker's own data plane is TLS with
// the certificate from its signed registration. A node without --ca, and one with a wrong
// token, stop at once with a one-line error.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { CoordinatorClient } from '../../src/federation/coordinator/client.ts';
import { call } from '../../src/federation/dataplane.ts';
import { ConnectError, connect } from '../../src/federation/transport/rpc.ts';
import { createEphemeralIdentity } from '../../src/federation/identity.ts';
import { asMember } from './member-probe.ts';
import { type CoordinatorHandle, Cluster, type NodeHandle, type PrimaryHandle, complete, freePort, getJson, modelId, testModel } from './harness.ts';

const PROMPT = 'Once upon a time';
const N_TOKENS = 32;
const TOKEN = 'integration-test-token';

const cluster = new Cluster();
let model: string;
let id: string;
let reference: string;
let ca: string;
let coordinator: CoordinatorHandle;
let lanWorker: NodeHandle;
let relayWorker: NodeHandle;
let primary: PrimaryHandle;

cluster.setup(async () => {
  model = testModel();
  id = modelId(model);
  const certs = join(cluster.dir, 'certs');
  const made = await cluster.run('certs', ['certs', '--out', certs, '--host', '127.0.0.1']);
  assert.equal(made.code, 0, made.stderr);
  ca = join(certs, 'coordinator.crt');
  coordinator = await cluster.coordinator({ joinToken: TOKEN, tls: { cert: ca, key: join(certs, 'coordinator.key') } });
  assert.match(coordinator.url, /^https:/);
  [reference, lanWorker, relayWorker] = await Promise.all([
    cluster.referenceText(model, PROMPT, N_TOKENS),
    cluster.worker('worker-lan', { coordinatorUrl: coordinator.url, host: '127.0.0.2', joinToken: TOKEN, ca }),
    // `--relay` alone: the worker finds the relay's (random) port in the coordinator's /health.
    cluster.worker('worker-relay', { coordinatorUrl: coordinator.url, relay: true, joinToken: TOKEN, ca }),
  ]);
  primary = await cluster.primary('primary', { coordinatorUrl: coordinator.url, model, waitWorkers: 2, joinToken: TOKEN, ca });
});

/** The stderr lines that are not JSON log lines (what a person reads). */
/** stderr of a node started without --log-format (so JSON lines, stderr being a pipe): every line is JSON
 *  (never mixed with plain text), and the lines for people are the errors that carry a message. */
const humanLines = (stderr: string) => stderr.split('\n').filter((l) => l.trim() !== '')
  .map((l) => JSON.parse(l) as { level: string; message?: unknown })
  .filter((r) => r.level === 'error' && typeof r.message === 'string').map((r) => r.message as string);

cluster.test('d) TLS: nodes trusting the certificate join and serve; a node without --ca stops with a clear error', async () => {
  const client = new CoordinatorClient({ url: coordinator.url, joinToken: TOKEN, caFile: ca });
  try {
    const nodes = await client.listNodes({ state: 'alive' });
    for (const n of [primary, lanWorker, relayWorker]) assert.ok(nodes.some((x) => x.nodeId === n.nodeId), `${n.nodeId} registered over TLS`);
    // The LAN worker's data plane speaks TLS too, with the certificate it published in its signed registration:
    // a plaintext client gets nowhere, a client trusting exactly that certificate is served.
    const view = nodes.find((x) => x.nodeId === lanWorker.nodeId)!;
    assert.match(view.dataPlaneCert ?? '', /BEGIN CERTIFICATE/);
    const addr = view.candidates.find((c) => c.kind === 'lan')!.addr;
    await assert.rejects(connect(addr, { session: 'plaintext-probe', timeoutMs: 3000 }));
    const tls = { ca: view.dataPlaneCert! };
    // Over TLS too, a connection must prove a member's key and the join token before any method runs: an
    // anonymous client, and a key the coordinator does not list (even with the token), are refused.
    await assert.rejects(connect(addr, { session: 'anonymous', timeoutMs: 5000, tls }), (e: unknown) => e instanceof ConnectError && e.code === 'unauthenticated');
    await assert.rejects(connect(addr, { session: 'stranger', timeoutMs: 5000, tls, auth: { identity: createEphemeralIdentity(), token: TOKEN } }), (e: unknown) => e instanceof ConnectError && e.code === 'not_member');
    await asMember(coordinator.url, { joinToken: TOKEN, caFile: ca }, async (auth) => {
      const peer = await connect(addr, { session: 'tls-probe', timeoutMs: 5000, tls, auth });
      try {
        const { header: info } = await call(peer, 'info', {});
        assert.ok(info.spans.length > 0, 'the LAN worker holds a span, served over TLS');
      } finally {
        peer.close();
      }
    });
  } finally {
    client.close();
  }
  assert.equal(await complete(primary.url, id, PROMPT, N_TOKENS), reference);

  const port = await freePort('127.0.0.4');
  const untrusting = cluster.spawn('worker-without-ca', [
    'node', '--role', 'worker', '--coordinator-url', coordinator.url, '--join-token', TOKEN, '--rpc-port', String(port),
    '--lan-addr', `127.0.0.4:${port}`, '--data-dir', join(cluster.dir, 'worker-without-ca'), '--threads', '1', '--gpu', 'off',
  ]);
  const exit = await untrusting.exited;
  assert.notEqual(exit.code, 0);
  const lines = humanLines(untrusting.stderr);
  assert.equal(lines.length, 1, `one line for people: ${JSON.stringify(lines)}`);
  assert.match(lines[0]!, /certificate/);
  assert.match(lines[0]!, /--ca/);
});

cluster.test('e) a wrong join token: the worker exits non-zero with a one-line error saying so', async () => {
  const port = await freePort('127.0.0.5');
  const r = await cluster.run('worker-bad-token', [
    'node', '--role', 'worker', '--coordinator-url', coordinator.url, '--ca', ca, '--join-token', 'not-the-token', '--rpc-port', String(port),
    '--lan-addr', `127.0.0.5:${port}`, '--data-dir', join(cluster.dir, 'worker-bad-token'), '--threads', '1', '--gpu', 'off',
  ]);
  assert.notEqual(r.code, 0);
  const lines = humanLines(r.stderr);
  assert.equal(lines.length, 1, `one line for people: ${JSON.stringify(lines)}`);
  assert.match(lines[0]!, /join token/);
});

cluster.test('f) a worker reachable only through the relay holds layers, and the text is right', async () => {
  const client = new CoordinatorClient({ url: coordinator.url, joinToken: TOKEN, caFile: ca });
  try {
    const view = await client.getNode(relayWorker.nodeId);
    assert.deepEqual(view.candidates.map((c) => c.kind), ['relay'], 'it advertises the relay only');
  } finally {
    client.close();
  }
  const fed = await getJson<{ plan: { nodeId: string; first: number; last: number; where: string }[] }>(`${primary.url}/v1/federation`);
  const span = fed.plan.find((s) => s.nodeId === relayWorker.nodeId);
  assert.ok(span && span.last > span.first, `the relay worker holds layers: ${JSON.stringify(fed.plan)}`);
  assert.match(span.where, /^relay:\/\//);
  assert.ok(fed.plan.some((s) => s.nodeId === lanWorker.nodeId && s.last > s.first), 'the LAN worker holds layers too');
  assert.equal(await complete(primary.url, id, PROMPT, N_TOKENS), reference);
});
