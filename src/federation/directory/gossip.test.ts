// Push-pull anti-entropy over plain function calls: many nodes in one process, seeded, rounds driven by hand.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createEphemeralIdentity } from '../identity.ts';
import type { DirectoryEntry, GossipRequest, GossipResponse } from '../protocol-directory.ts';
import { mulberry32 } from '../../util/random.ts';
import { testDirectoryConfig } from './config.ts';
import type { DirectoryConfig } from './config.ts';
import { Directory } from './directory.ts';
import { GossipError, GossipNode } from './gossip.ts';
import type { Exchange } from './gossip.ts';
import { MemoryReplica } from './memory-replica.ts';
import { makeManifest, makeRevocation } from './testing.ts';

interface Sim {
  ids: string[];
  nodes: Map<string, { directory: Directory; gossip: GossipNode }>;
  /** Runs rounds on every node (in parallel) until `done` or `maxRounds`; returns the rounds it took. */
  runUntil(done: () => boolean, maxRounds: number): Promise<number>;
}

/** `n` nodes whose exchange is a direct call to the other node's handle(); `intercept` may lose or replace answers. */
function simulate(n: number, options: { seed: number; config?: Partial<DirectoryConfig>; intercept?: (peer: string, request: GossipRequest, answer: () => GossipResponse) => GossipResponse } = { seed: 1 }): Sim {
  const random = mulberry32(options.seed);
  const ids = Array.from({ length: n }, (_, i) => `n${i}`);
  const nodes = new Map<string, { directory: Directory; gossip: GossipNode }>();
  for (const id of ids) {
    const directory = new Directory(new MemoryReplica(), { ...testDirectoryConfig(), ...options.config });
    const exchange: Exchange = async (peer, request) => {
      const answer = () => nodes.get(peer)!.gossip.handle(id, structuredClone(request));
      return options.intercept ? options.intercept(peer, request, answer) : answer();
    };
    nodes.set(id, { directory, gossip: new GossipNode({ id, directory, exchange, random }) });
  }
  return {
    ids,
    nodes,
    async runUntil(done, maxRounds) {
      for (let round = 1; round <= maxRounds; round++) {
        await Promise.all([...nodes.values()].map(({ gossip }) => gossip.round(ids)));
        if (done()) return round;
      }
      return Infinity;
    },
  };
}

const holds = (sim: Sim, check: (directory: Directory) => boolean) => () => [...sim.nodes.values()].every(({ directory }) => check(directory));
const hasVersion = (modelId: string, version: number, status = 'active') => (directory: Directory) => {
  const view = directory.view(modelId);
  return view?.version === version && view.status === status;
};

test('a manifest published at one of 100 nodes reaches every node in a few rounds (fanout 3, 3 seeds)', async () => {
  for (const seed of [1, 2, 3]) {
    const sim = simulate(100, { seed });
    const manifest = makeManifest();
    assert.equal(sim.nodes.get('n17')!.directory.accept(manifest, 'local').status, 'stored');
    const rounds = await sim.runUntil(holds(sim, hasVersion(manifest.modelId, 1)), 30);
    // Push-pull with fanout 3 takes about log3(100) + a few rounds; 30 is far above it and still finite.
    assert.ok(rounds <= 30, `seed ${seed}: not converged after 30 rounds`);
  }
});

test('with 10% of messages lost the directory still converges, and a revocation spreads the same way', async () => {
  const lossy = mulberry32(99);
  const sim = simulate(100, {
    seed: 4,
    intercept: (_peer, _request, answer) => {
      if (lossy() < 0.1) throw new Error('lost');
      return answer();
    },
  });
  const publisher = createEphemeralIdentity();
  sim.nodes.get('n0')!.directory.accept(makeManifest({ version: 1 }, publisher), 'local');
  sim.nodes.get('n50')!.directory.accept(makeManifest({ modelId: 'other' }), 'local');
  assert.ok((await sim.runUntil(holds(sim, (dir) => hasVersion('smollm2-135m-code', 1)(dir) && hasVersion('other', 1)(dir)), 40)) <= 40);
  sim.nodes.get('n99')!.directory.accept(makeRevocation(publisher, { version: 1 }), 'local');
  assert.ok((await sim.runUntil(holds(sim, hasVersion('smollm2-135m-code', 1, 'revoked')), 40)) <= 40);
  for (const { directory } of sim.nodes.values()) assert.deepEqual(directory.manifests().map((m) => m.modelId), ['other']);
});

test('entries forged or altered by a relaying node are refused by every node; the real ones still spread', async () => {
  const publisher = createEphemeralIdentity();
  const real = makeManifest({ version: 1 }, publisher);
  const forged: DirectoryEntry[] = [
    { ...makeManifest({ version: 3 }, publisher), contentHash: `sha256:${'66'.repeat(32)}` }, // altered after signing
    makeManifest({ modelId: real.modelId, version: 9 }), // signed by another key for an id the publisher holds
    { ...makeRevocation(publisher, { version: 5 }), signature: real.signature }, // a revocation nobody signed
  ];
  const liar = 'n13';
  let lying = false;
  // Once lying, the liar adds its forgeries to every answer it gives.
  const sim = simulate(60, {
    seed: 5,
    intercept: (peer, _request, answer) => {
      const honest = answer();
      return lying && peer === liar ? { entries: [...forged, ...honest.entries], want: honest.want } : honest;
    },
  });
  sim.nodes.get('n0')!.directory.accept(real, 'local');
  assert.ok((await sim.runUntil(holds(sim, hasVersion(real.modelId, 1)), 30)) <= 30);
  lying = true;
  const v2 = makeManifest({ version: 2, description: 'second release' }, publisher);
  sim.nodes.get('n40')!.directory.accept(v2, 'local');
  assert.ok((await sim.runUntil(holds(sim, hasVersion(real.modelId, 2)), 30)) <= 30);
  await sim.runUntil(() => false, 5); // more rounds: more chances to be fooled
  for (const [id, { directory }] of sim.nodes) {
    const view = directory.view(real.modelId)!;
    assert.equal(view.version, 2, id);
    assert.equal(view.manifest!.contentHash, v2.contentHash, id);
    assert.equal(view.publisherKey, publisher.publicKey, id);
  }
});

test('a digest storm from one peer is rate-limited; other peers are still answered', () => {
  let now = 0;
  const directory = new Directory(new MemoryReplica(), { ...testDirectoryConfig(), peerBurst: 3, peerRatePerSecond: 1 });
  const gossip = new GossipNode({ id: 'victim', directory, exchange: () => Promise.reject(new Error('unused')), now: () => now });
  const digest = Array.from({ length: 1000 }, (_, i) => ({ key: `m${i}`, kind: 'manifest' as const, version: 1, hash: '0'.repeat(16) }));
  for (let i = 0; i < 3; i++) assert.equal(gossip.handle('storm', { from: 'storm', digest }).want.length, testDirectoryConfig().maxEntriesPerMessage);
  assert.throws(() => gossip.handle('storm', { from: 'storm', digest }), (error: unknown) => error instanceof GossipError && error.code === 'rate_limited');
  assert.deepEqual(gossip.handle('polite', { from: 'polite', digest: [] }), { entries: [], want: [] });
  now += 1_000;
  assert.doesNotThrow(() => gossip.handle('storm', { from: 'storm', digest: [] }));
  assert.throws(() => gossip.handle('polite', { from: 'polite', digest: 'not a digest' }), (error: unknown) => error instanceof GossipError && error.code === 'bad_request');
});

test('a push is checked entry by entry: good ones stored, bad ones refused alone', () => {
  const directory = new Directory(new MemoryReplica(), testDirectoryConfig());
  const gossip = new GossipNode({ id: 'n', directory, exchange: () => Promise.reject(new Error('unused')) });
  const good = makeManifest({ modelId: 'good' });
  gossip.handle('peer', { from: 'peer', push: [{ ...makeManifest({ modelId: 'bad' }), nLayers: 1 }, good, 'junk'] });
  assert.deepEqual(directory.manifests().map((m) => m.modelId), ['good']);
  assert.equal(directory.view('good')!.source, 'peer');
});
