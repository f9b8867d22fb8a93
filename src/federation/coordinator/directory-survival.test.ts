// The directory survives its coordinator: three nodes reconcile with a real coordinator over HTTP
// (/v1/directory/exchange) and with each other (function calls standing in for the data plane). A
// specialist published at the coordinator reaches every node; with the coordinator stopped, one published
// at a node reaches the others; the coordinator restarts on its SQLite database and catches up.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { localTestConfig } from '../config.ts';
import { testDirectoryConfig } from '../directory/config.ts';
import { Directory } from '../directory/directory.ts';
import { GossipNode } from '../directory/gossip.ts';
import type { Exchange } from '../directory/gossip.ts';
import { MemoryReplica } from '../directory/memory-replica.ts';
import { API_PREFIX } from '../protocol.ts';
import { GossipResponseSchema, SpecialistViewSchema } from '../protocol-directory.ts';
import { mulberry32 } from '../../util/random.ts';
import { silentLogger } from '../../util/log.ts';
import { CoordinatorClient } from './client.ts';
import { startCoordinator } from './coordinator.ts';
import type { RunningCoordinator } from './coordinator.ts';
import { makeManifest, tempDir } from './testing.ts';

const COORDINATOR = 'coordinator';

test('coordinator + 3 nodes: publish, stop the coordinator, publish at a node, restart, catch up', async () => {
  const dir = tempDir();
  const start = () => startCoordinator({ host: '127.0.0.1', port: 0, dataDir: dir.path, config: localTestConfig(), logger: silentLogger });
  let coordinator: RunningCoordinator | undefined = await start();
  let client = new CoordinatorClient({ url: coordinator.url, requestTimeoutMs: 2_000 });
  const random = mulberry32(3);
  const nodes = new Map<string, { directory: Directory; gossip: GossipNode }>();
  for (const id of ['a', 'b', 'c']) {
    const directory = new Directory(new MemoryReplica(), testDirectoryConfig());
    const exchange: Exchange = async (peer, request) => {
      if (peer === COORDINATOR) return client.call('POST', `${API_PREFIX}/directory/exchange`, request, GossipResponseSchema);
      return nodes.get(peer)!.gossip.handle(id, structuredClone(request));
    };
    nodes.set(id, { directory, gossip: new GossipNode({ id, directory, exchange, random }) });
  }
  // Fanout 3 over four participants: every node talks to everyone each round.
  const rounds = async (count: number) => {
    for (let i = 0; i < count; i++) await Promise.all([...nodes.values()].map(({ gossip }) => gossip.round([COORDINATOR, 'a', 'b', 'c'])));
  };
  try {
    const first = makeManifest({ modelId: 'first' });
    assert.equal((await client.publishManifest(first)).status, 'stored');
    await rounds(2);
    for (const [id, { directory }] of nodes) assert.equal(directory.view('first')?.status, 'active', id);
    assert.ok([...nodes.values()].some(({ directory }) => directory.view('first')?.source === COORDINATOR), 'pulled from the coordinator');

    client.close();
    await coordinator.close();
    coordinator = undefined;
    const second = makeManifest({ modelId: 'second' });
    nodes.get('b')!.directory.accept(second, 'local');
    await rounds(2); // every exchange with the coordinator fails; the nodes still reach each other
    for (const [id, { directory }] of nodes) assert.equal(directory.view('second')?.status, 'active', id);

    coordinator = await start();
    client = new CoordinatorClient({ url: coordinator.url, requestTimeoutMs: 2_000 });
    const before = await client.call('GET', `${API_PREFIX}/specialists/first`, undefined, SpecialistViewSchema);
    assert.equal(before.source, 'local', 'the first entry survived the restart in SQLite');
    await rounds(1);
    const caughtUp = await client.call('GET', `${API_PREFIX}/specialists/second`, undefined, SpecialistViewSchema);
    assert.equal(caughtUp.status, 'active');
    assert.ok(['a', 'b', 'c'].includes(caughtUp.source), `pushed by a node, got ${caughtUp.source}`);
  } finally {
    client.close();
    await coordinator?.close();
    dir.cleanup();
  }
});
