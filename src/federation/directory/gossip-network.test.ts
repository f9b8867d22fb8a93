// Gossip over the in-memory network: the real Peer class and frames between 100 nodes in one process. The
// data-plane method here is registered by the test; the authenticated data plane will register it for real
// (its rate-limit key is then the authenticated node id instead of the HELLO session).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createEphemeralIdentity } from '../identity.ts';
import { GossipRequestSchema, GossipResponseSchema } from '../protocol-directory.ts';
import type { DirectoryEntry } from '../protocol-directory.ts';
import { MemoryNetwork } from '../transport/memory-network.ts';
import type { MemoryServer } from '../transport/memory-network.ts';
import type { Peer } from '../transport/peer.ts';
import { mulberry32 } from '../../util/random.ts';
import { testDirectoryConfig } from './config.ts';
import { Directory } from './directory.ts';
import { GossipNode } from './gossip.ts';
import { MemoryReplica } from './memory-replica.ts';
import { makeManifest, makeRevocation } from './testing.ts';

const METHOD = 'directory.exchange';

interface NetNode {
  id: string;
  directory: Directory;
  gossip: GossipNode;
  server: MemoryServer;
  alive: boolean;
}

function buildNetwork(n: number, seed: number, forgeries: (id: string) => DirectoryEntry[]): { net: MemoryNetwork; nodes: NetNode[]; close(): Promise<void> } {
  const net = new MemoryNetwork();
  const random = mulberry32(seed);
  const nodes: NetNode[] = [];
  const dialed: Peer[] = [];
  for (let i = 0; i < n; i++) {
    const id = `n${i}`;
    const directory = new Directory(new MemoryReplica(), testDirectoryConfig());
    const connections = new Map<string, Peer>();
    const gossip = new GossipNode({
      id,
      directory,
      random,
      exchange: async (peer, request) => {
        let connection = connections.get(peer);
        if (connection === undefined || connection.closed) {
          connection = await net.connect(`${peer}:7000`, { session: id, timeoutMs: 2_000 });
          connections.set(peer, connection);
          dialed.push(connection);
        }
        const answer = await connection.request(METHOD, request, undefined, { timeoutMs: 5_000 });
        return GossipResponseSchema.parse(answer.header);
      },
    });
    const server = net.listen(`${id}:7000`, {
      session: id,
      methods: {
        [METHOD]: {
          schema: GossipRequestSchema,
          handler: ({ header, peer }) => {
            const answer = gossip.handle(peer.session ?? peer.remote, header);
            return { header: { entries: [...forgeries(id), ...answer.entries], want: answer.want } };
          },
        },
      },
    });
    nodes.push({ id, directory, gossip, server, alive: true });
  }
  return {
    net,
    nodes,
    close: async () => {
      for (const peer of dialed) peer.close();
      await net.close();
    },
  };
}

async function roundsUntil(nodes: NetNode[], done: (node: NetNode) => boolean, maxRounds: number): Promise<number> {
  const ids = nodes.map((node) => node.id);
  for (let round = 1; round <= maxRounds; round++) {
    await Promise.all(nodes.filter((node) => node.alive).map((node) => node.gossip.round(ids)));
    if (nodes.filter((node) => node.alive).every(done)) return round;
  }
  return Infinity;
}

test('100 nodes over the in-memory network: a manifest reaches all, forgeries reach none, a revocation spreads past dead nodes', async () => {
  const publisher = createEphemeralIdentity();
  const manifest = makeManifest({ version: 1 }, publisher);
  const liar = 'n42';
  const forged: DirectoryEntry[] = [
    { ...makeManifest({ modelId: 'forged-model' }, publisher), contentHash: `sha256:${'99'.repeat(32)}` }, // altered
    { ...makeRevocation(publisher, { version: 7 }), signature: manifest.signature }, // not signed by anyone
  ];
  const { nodes, net, close } = buildNetwork(100, 11, (id) => (id === liar ? forged : []));
  try {
    nodes[3]!.directory.accept(manifest, 'local');
    const rounds = await roundsUntil(nodes, (node) => node.directory.view(manifest.modelId)?.status === 'active', 30);
    assert.ok(rounds <= 30, 'not converged in 30 rounds');
    for (const node of nodes) {
      assert.equal(node.directory.view('forged-model'), undefined, node.id);
      assert.equal(node.directory.view(manifest.modelId)!.version, 1, node.id);
    }

    // Ten nodes die; a revocation published at another still reaches every live node.
    for (const node of nodes.slice(60, 70)) {
      node.alive = false;
      await node.server.close();
      net.cut(`${node.id}:7000`);
    }
    nodes[90]!.directory.accept(makeRevocation(publisher, { version: 1 }), 'local');
    const revokedIn = await roundsUntil(nodes, (node) => node.directory.view(manifest.modelId)?.status === 'revoked', 30);
    assert.ok(revokedIn <= 30, 'revocation did not reach every live node in 30 rounds');
    for (const node of nodes.filter((candidate) => candidate.alive)) assert.deepEqual(node.directory.manifests(), [], node.id);
  } finally {
    await close();
  }
});
