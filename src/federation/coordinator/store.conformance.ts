/**
 * The conformance suite every CoordinatorStore implementation passes (run from store.test.ts).
 * `open` returns a fresh, empty store.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CoordinatorStore } from './store.ts';
import { makeManifest, makeNodeRecord } from './testing.ts';
import { createEphemeralIdentity } from '../identity.ts';

export function storeConformance(name: string, open: () => { store: CoordinatorStore; cleanup: () => void }): void {
  const withStore = (body: (store: CoordinatorStore) => void) => () => {
    const { store, cleanup } = open();
    try {
      body(store);
    } finally {
      store.close();
      cleanup();
    }
  };

  test(`${name}: empty store`, withStore((store) => {
    assert.equal(store.getNode('nobody'), undefined);
    assert.deepEqual(store.listNodes(), []);
    assert.equal(store.deleteNode('nobody'), false);
    assert.equal(store.getIdentity(), undefined);
    assert.deepEqual(store.directory.list(), []);
  }));

  test(`${name}: put, get, replace and delete nodes`, withStore((store) => {
    const record = makeNodeRecord({ nodeId: 'node-b' });
    store.putNode(record);
    assert.deepEqual(store.getNode('node-b'), record);

    const replaced = { ...record, state: 'suspect' as const, incarnation: 7, lastSeen: record.lastSeen + 5, load: 1.5 };
    store.putNode(replaced);
    assert.deepEqual(store.getNode('node-b'), replaced);
    assert.equal(store.listNodes().length, 1);

    assert.equal(store.deleteNode('node-b'), true);
    assert.equal(store.getNode('node-b'), undefined);
    assert.equal(store.deleteNode('node-b'), false);
  }));

  test(`${name}: listNodes sorts by nodeId`, withStore((store) => {
    for (const nodeId of ['node-c', 'node-a', 'node-b']) store.putNode(makeNodeRecord({ nodeId }));
    assert.deepEqual(store.listNodes().map((record) => record.nodeId), ['node-a', 'node-b', 'node-c']);
  }));

  test(`${name}: returns copies, not live objects`, withStore((store) => {
    const record = makeNodeRecord({ nodeId: 'node-a' });
    store.putNode(record);
    record.state = 'dead'; // mutating the input after put
    const read = store.getNode('node-a')!;
    assert.equal(read.state, 'alive');
    read.registration.candidates.length = 0; // mutating an output
    assert.equal(store.getNode('node-a')!.registration.candidates.length, 1);
  }));

  test(`${name}: keeps only the fields the protocol knows (an open coordinator is not free storage)`, withStore((store) => {
    const record = makeNodeRecord({ nodeId: 'node-a' });
    const junk = { junk: 'x'.repeat(1000) };
    const candidates = record.registration.candidates.map((candidate) => ({ ...candidate, ...junk }));
    store.putNode({ ...record, registration: { ...record.registration, candidates, ...junk } });
    assert.deepEqual(store.getNode('node-a')!.registration, record.registration);
    assert.ok(!JSON.stringify(store.listNodes()).includes('xxx'));
  }));

  test(`${name}: identity`, withStore((store) => {
    const identity = { coordinatorId: 'abcd', publicKey: 'A'.repeat(43) + '=', createdAt: 42 };
    store.putIdentity(identity);
    assert.deepEqual(store.getIdentity(), identity);
    store.putIdentity({ ...identity, coordinatorId: 'efgh' });
    assert.equal(store.getIdentity()!.coordinatorId, 'efgh');
  }));

  test(`${name}: holds a directory replica that closes with the store`, withStore((store) => {
    const manifest = makeManifest({}, createEphemeralIdentity());
    store.directory.apply({ put: { entry: manifest, source: 'local', receivedAt: 3 }, remove: [] });
    assert.deepEqual(store.directory.get(manifest.modelId), { entry: manifest, source: 'local', receivedAt: 3 });
  }));

  test(`${name}: use after close throws`, () => {
    const { store, cleanup } = open();
    store.close();
    try {
      assert.throws(() => store.listNodes());
    } finally {
      cleanup();
    }
  });
}
