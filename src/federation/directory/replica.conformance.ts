/**
 * The conformance suite every DirectoryReplica passes (run from replica.test.ts). `open` returns a fresh,
 * empty replica.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createEphemeralIdentity } from '../identity.ts';
import type { DirectoryReplica } from './replica.ts';
import { makeManifest, makeRevocation, makeServing } from './testing.ts';

export function replicaConformance(name: string, open: () => { replica: DirectoryReplica; cleanup: () => void }): void {
  const withReplica = (body: (replica: DirectoryReplica) => void) => () => {
    const { replica, cleanup } = open();
    try {
      body(replica);
    } finally {
      replica.close();
      cleanup();
    }
  };
  const publisher = createEphemeralIdentity();
  const node = createEphemeralIdentity();

  test(`${name}: empty`, withReplica((replica) => {
    assert.equal(replica.get('x'), undefined);
    assert.deepEqual(replica.list(), []);
    assert.equal(replica.size(), 0);
    assert.equal(replica.countByPublisher(publisher.publicKey), 0);
    assert.deepEqual(replica.servingOf('x'), []);
  }));

  test(`${name}: put, replace, remove atomically; list sorted by key`, withReplica((replica) => {
    const b = makeManifest({ modelId: 'b-model' }, publisher);
    const a = makeManifest({ modelId: 'a-model' }, publisher);
    replica.apply({ put: { entry: b, source: 'local', receivedAt: 1 }, remove: [] });
    replica.apply({ put: { entry: a, source: 'peer-1', receivedAt: 2 }, remove: [] });
    assert.deepEqual(replica.list().map((stored) => stored.entry.modelId), ['a-model', 'b-model']);
    assert.deepEqual(replica.get('a-model'), { entry: a, source: 'peer-1', receivedAt: 2 });
    assert.equal(replica.countByPublisher(publisher.publicKey), 2);

    const serving = makeServing(node, a);
    replica.apply({ put: { entry: serving, source: 'local', receivedAt: 3 }, remove: [] });
    assert.deepEqual(replica.servingOf('a-model').map((stored) => stored.entry), [serving]);
    assert.equal(replica.countByPublisher(publisher.publicKey), 2, 'serving records are not the publisher\'s');

    const revocation = makeRevocation(publisher, { modelId: 'a-model', version: 1 });
    replica.apply({ put: { entry: revocation, source: 'local', receivedAt: 4 }, remove: [`a-model@${node.id}`] });
    assert.equal(replica.get('a-model')!.entry.kind, 'revocation');
    assert.deepEqual(replica.servingOf('a-model'), []);
    assert.equal(replica.size(), 2);
  }));

  test(`${name}: keeps only the fields the protocol knows; returns copies`, withReplica((replica) => {
    const manifest = makeManifest({}, publisher);
    replica.apply({ put: { entry: { ...manifest, junk: 'x'.repeat(100) } as typeof manifest, source: 'local', receivedAt: 1 }, remove: [] });
    const read = replica.get(manifest.modelId)!;
    assert.deepEqual(read.entry, manifest);
    read.source = 'changed';
    assert.equal(replica.get(manifest.modelId)!.source, 'local');
  }));

  test(`${name}: use after close throws`, () => {
    const { replica, cleanup } = open();
    replica.close();
    try {
      assert.throws(() => replica.list());
    } finally {
      cleanup();
    }
  });
}
