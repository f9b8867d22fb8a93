// GossipService over real loopback TCP with authenticated HELLO, the coordinator unreachable: a worker-like
// node that listens and a primary-like node that only dials. Entries cross both ways in one exchange, the
// listener reaches the dialler over the connection it opened, forgeries are refused, the peer list is kept on
// disk, and a peer that is not a member cannot connect at all.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { testDirectoryConfig } from '../directory/config.ts';
import { makeManifest } from '../directory/testing.ts';
import { createEphemeralIdentity } from '../identity.ts';
import type { Identity } from '../identity.ts';
import type { NodeView } from '../protocol.ts';
import { HandshakeRefusal, type TransportServer, connect, listen } from '../transport/rpc.ts';
import { call } from '../dataplane.ts';
import { GossipService } from './gossip-service.ts';
import { GOSSIP_PEERS_FILE, KnownPeers } from './gossip-peers.ts';
import { silentLogger } from '../../util/log.ts';

const dir = mkdtempSync(join(tmpdir(), 'sharedllm-gossip-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function view(identity: Identity, role: 'primary' | 'worker', port?: number): NodeView {
  return {
    nodeId: identity.id, incarnation: 1, role, name: role, candidates: port === undefined ? [] : [{ kind: 'lan', addr: `127.0.0.1:${port}`, priority: 100 }],
    freeMemoryBytes: 0, threads: 1, backend: 'cpu', models: [], version: '0.0.0-test', publicKey: identity.publicKey,
    state: 'alive', load: 0, lastSeen: 0, stateChangedAt: 0, registeredAt: 0,
  };
}

/** A coordinator that is down: every call fails (the node list comes from `nodes` until `down`). */
function coordinator(nodes: () => NodeView[], down: () => boolean) {
  return {
    listNodes: async () => {
      if (down()) throw new Error('ECONNREFUSED');
      return nodes();
    },
    call: async (): Promise<never> => {
      throw new Error('ECONNREFUSED');
    },
  };
}

test('gossip over the data plane: both ways in one exchange, back over an inbound connection, forgeries refused, peers kept on disk', async () => {
  const workerId = createEphemeralIdentity();
  const primaryId = createEphemeralIdentity();
  const stranger = createEphemeralIdentity();
  const members = new Set([workerId.id, primaryId.id]);
  let coordinatorDown = false;
  let server: TransportServer | undefined;
  let nodes: NodeView[] = [];
  const config = { ...testDirectoryConfig(), exchangeTimeoutMs: 2_000 };
  const worker = new GossipService({
    nodeId: workerId.id, identity: workerId, dataDir: join(dir, 'worker'), config, logger: silentLogger,
    client: coordinator(() => nodes, () => coordinatorDown), inbound: () => server?.peers() ?? [],
  });
  server = await listen({
    host: '127.0.0.1', port: 0, session: workerId.id, methods: worker.methods(),
    auth: {
      identity: workerId,
      verifyPeer: (remote) => {
        if (!members.has(remote.nodeId)) throw new HandshakeRefusal('not_member', `${remote.nodeId} is not a member`, 'register first');
      },
    },
  });
  nodes = [view(workerId, 'worker', server.port), view(primaryId, 'primary')];
  const primary = new GossipService({
    nodeId: primaryId.id, identity: primaryId, dataDir: join(dir, 'primary'), config, logger: silentLogger,
    client: coordinator(() => nodes, () => coordinatorDown),
  });
  try {
    const publisher = createEphemeralIdentity();
    const atWorker = makeManifest({ modelId: 'from-worker' }, publisher);
    const atPrimary = makeManifest({ modelId: 'from-primary' }, publisher);
    assert.equal(worker.directory.accept(atWorker, 'local').status, 'stored');
    assert.equal(primary.directory.accept(atPrimary, 'local').status, 'stored');

    // The primary dials the worker: it pulls what the worker holds and pushes what the worker lacks.
    const report = await primary.round();
    assert.deepEqual(report.failed.filter((peer) => peer !== 'coordinator'), []);
    assert.equal(primary.directory.view('from-worker')?.source, workerId.id);
    assert.equal(worker.directory.view('from-primary')?.source, primaryId.id);
    assert.ok(primary.peers.coordinatorUp);

    // The coordinator goes down; a new entry at the worker reaches the primary over the primary's own
    // connection (the primary has no listener), and the primary's next round still finds the worker.
    coordinatorDown = true;
    worker.directory.accept(makeManifest({ modelId: 'while-down' }, publisher), 'local');
    primary.directory.accept(makeManifest({ modelId: 'while-down-2' }, publisher), 'local');
    const back = await worker.round();
    assert.ok(back.contacted.includes(primaryId.id), `the worker gossips with the connected primary: ${back.contacted.join(' ')}`);
    assert.equal(primary.directory.view('while-down')?.version, 1);
    assert.equal(worker.directory.view('while-down-2')?.version, 1);
    assert.equal(worker.peers.coordinatorUp, false);

    // An altered entry held (somehow) by one node is refused by the other, and nothing is stored.
    const forged = { ...makeManifest({ modelId: 'forged' }, publisher), nLayers: 99 };
    primary.directory.replica.apply({ put: { entry: forged, source: 'local', receivedAt: 0 }, remove: [] });
    const refused = await worker.round();
    assert.equal(refused.refused, 1);
    assert.equal(worker.directory.view('forged'), undefined);

    // The peer list survives a restart without the coordinator.
    const reloaded = new KnownPeers(primaryId.id, () => Promise.reject(new Error('down')), silentLogger, join(dir, 'primary', GOSSIP_PEERS_FILE));
    assert.deepEqual(reloaded.dialable().map((v) => v.nodeId), [workerId.id]);

    // A node that is not a member cannot even connect.
    const outsider = new GossipService({ nodeId: stranger.id, identity: stranger, config, logger: silentLogger, client: coordinator(() => nodes, () => false) });
    try {
      const attempt = await outsider.round();
      assert.ok(attempt.failed.includes(workerId.id));
      assert.equal(outsider.directory.replica.size(), 0);
    } finally {
      await outsider.close();
    }
  } finally {
    await primary.close();
    await worker.close();
    await server.close();
  }
});

test('a digest storm from one member is rate-limited by its proven id; junk payloads are refused; the server lives', async () => {
  const serverId = createEphemeralIdentity();
  const member = createEphemeralIdentity();
  const service = new GossipService({
    nodeId: serverId.id, identity: serverId, config: { ...testDirectoryConfig(), peerBurst: 3, peerRatePerSecond: 0.5 }, logger: silentLogger,
    client: coordinator(() => [], () => true),
  });
  const server = await listen({ host: '127.0.0.1', port: 0, session: serverId.id, methods: service.methods(), auth: { identity: serverId } });
  const peer = await connect(`127.0.0.1:${server.port}`, { session: 'storm', auth: { identity: member } });
  try {
    const digest = Buffer.from(JSON.stringify({ from: 'someone-else', digest: [] }));
    const outcomes = await Promise.all(Array.from({ length: 10 }, () => call(peer, 'directory_exchange', {}, { payload: digest, timeoutMs: 2_000 }).then(() => 'ok', (e: Error & { code?: string }) => e.code ?? e.message)));
    assert.equal(outcomes.filter((o) => o === 'ok').length, 3, outcomes.join(' '));
    assert.equal(outcomes.filter((o) => o === 'rate_limited').length, 7, outcomes.join(' '));
    // A second member is not held back by the first one's storm; junk is refused with a reason.
    const other = await connect(`127.0.0.1:${server.port}`, { session: 'other', auth: { identity: createEphemeralIdentity() } });
    try {
      await assert.rejects(call(other, 'directory_exchange', {}, { payload: Buffer.from('{not json'), timeoutMs: 2_000 }), /not JSON/);
      await assert.rejects(call(other, 'directory_exchange', {}, { payload: Buffer.from('{"digest": 5}'), timeoutMs: 2_000 }), /not a gossip request/);
      const answer = await call(other, 'directory_exchange', {}, { payload: digest, timeoutMs: 2_000 });
      assert.deepEqual(JSON.parse(Buffer.from(answer.payload).toString('utf8')), { entries: [], want: [] });
    } finally {
      other.close();
    }
  } finally {
    peer.close();
    await server.close();
    await service.close();
  }
});

test("--gossip-peers coordinator: rounds contact the coordinator only, whatever nodes it lists", async () => {
  const self = createEphemeralIdentity();
  const others = [createEphemeralIdentity(), createEphemeralIdentity()];
  const service = new GossipService({
    nodeId: self.id, identity: self, config: testDirectoryConfig(), logger: silentLogger, peers: 'coordinator',
    client: coordinator(() => others.map((o, i) => view(o, 'worker', 40_000 + i)), () => false),
  });
  try {
    const report = await service.round();
    assert.deepEqual(report.contacted, ['coordinator']);
  } finally {
    await service.close();
  }
});
