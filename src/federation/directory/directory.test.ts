// The RFC-0006 merge rules through Directory.accept (parse, signature, decide, apply), on a MemoryReplica.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createEphemeralIdentity, signBody } from '../identity.ts';
import { mulberry32 } from '../../util/random.ts';
import { testDirectoryConfig } from './config.ts';
import type { DirectoryConfig } from './config.ts';
import { Directory } from './directory.ts';
import type { AcceptOutcome } from './directory.ts';
import { MemoryReplica } from './memory-replica.ts';
import { makeManifest, makeRevocation, makeServing } from './testing.ts';

function directory(overrides: Partial<DirectoryConfig> = {}): Directory {
  return new Directory(new MemoryReplica(), { ...testDirectoryConfig(), ...overrides }, () => 1_000);
}

function refused(outcome: AcceptOutcome, code: string): void {
  assert.equal(outcome.status, 'refused', JSON.stringify(outcome));
  if (outcome.status === 'refused') {
    assert.equal(outcome.code, code, outcome.reason);
    assert.ok(outcome.reason.length > 0 && outcome.hint.length > 0);
  }
}

const publisher = createEphemeralIdentity();

test('a manifest is stored once; the same again is a duplicate; a newer version replaces it; an older one is refused', () => {
  const dir = directory();
  const v1 = makeManifest({ version: 1 }, publisher);
  assert.equal(dir.accept(v1, 'local').status, 'stored');
  assert.equal(dir.accept(v1, 'peer').status, 'duplicate');
  const v3 = makeManifest({ version: 3, description: 'better' }, publisher);
  const replaced = dir.accept(v3, 'peer-a');
  assert.ok(replaced.status === 'stored' && replaced.replaced?.version === 1);
  refused(dir.accept(makeManifest({ version: 2 }, publisher), 'peer'), 'stale_version');
  refused(dir.accept(v1, 'peer'), 'stale_version'); // a replayed older version
  const [view] = dir.views();
  assert.equal(view!.version, 3);
  assert.equal(view!.source, 'peer-a');
  assert.equal(view!.manifest!.description, 'better');
});

test('another key cannot take or change a model id its publisher holds', () => {
  const dir = directory();
  dir.accept(makeManifest({ version: 1 }, publisher), 'local');
  refused(dir.accept(makeManifest({ version: 9 }), 'peer'), 'manifest_conflict');
  refused(dir.accept(makeRevocation(createEphemeralIdentity(), { version: 9 }), 'peer'), 'manifest_conflict');
  assert.equal(dir.views()[0]!.version, 1);
});

test('forged, altered and malformed entries are refused, nothing stored, nothing thrown', () => {
  const dir = directory();
  const manifest = makeManifest({}, publisher);
  refused(dir.accept({ ...manifest, nLayers: 31 }, 'peer'), 'invalid_signature'); // altered after signing
  refused(dir.accept({ ...manifest, publisherKey: createEphemeralIdentity().publicKey }, 'peer'), 'invalid_signature'); // key swapped
  const { signature: _signature, ...unsigned } = manifest;
  refused(dir.accept(signBody(publisher, { ...unsigned, extra: 'signed but unknown' }), 'peer'), 'invalid_signature');
  refused(dir.accept({ ...manifest, kind: 'revocation' }, 'peer'), 'invalid_signature'); // one kind replayed as another
  let nested: unknown = {};
  for (let i = 0; i < 5_000; i++) nested = { a: nested };
  for (const junk of [null, 42, 'x', [], { kind: 'manifest' }, nested, { ...manifest, domains: Array(100).fill('x') }, { ...manifest, description: 'two\nlines' }]) {
    refused(dir.accept(junk, 'peer'), 'invalid_body');
  }
  assert.equal(dir.replica.size(), 0);
});

test('a revocation removes the entry and its serving records, and the id comes back only with a higher version', () => {
  const dir = directory();
  const node = createEphemeralIdentity();
  const manifest = makeManifest({ version: 2 }, publisher);
  dir.accept(manifest, 'local');
  assert.equal(dir.accept(makeServing(node, manifest), 'local').status, 'stored');
  assert.equal(dir.views()[0]!.servedBy.length, 1);
  refused(dir.accept(makeRevocation(publisher, { version: 1 }), 'peer'), 'stale_version'); // must cover the version held
  assert.equal(dir.accept(makeRevocation(publisher, { version: 2 }), 'peer').status, 'stored');
  const [view] = dir.views();
  assert.equal(view!.status, 'revoked');
  assert.equal(view!.manifest, undefined);
  assert.deepEqual(view!.servedBy, []);
  assert.deepEqual(dir.manifests(), []);
  assert.equal(dir.replica.size(), 1, 'only the tombstone');
  refused(dir.accept(manifest, 'peer'), 'revoked');
  refused(dir.accept(makeManifest({ version: 1 }, publisher), 'peer'), 'revoked');
  refused(dir.accept(makeServing(node, manifest, { version: 2 }), 'peer'), 'revoked');
  assert.equal(dir.accept(makeManifest({ version: 3 }, publisher), 'local').status, 'stored');
});

test('a revocation that arrives before its manifest blocks it', () => {
  const dir = directory();
  assert.equal(dir.accept(makeRevocation(publisher, { version: 4 }), 'peer').status, 'stored');
  refused(dir.accept(makeManifest({ version: 4 }, publisher), 'peer'), 'revoked');
});

test('serving records: signed by the node they name, for the file the manifest names; withdrawn by a newer one', () => {
  const dir = directory();
  const node = createEphemeralIdentity();
  const manifest = makeManifest({}, publisher);
  refused(dir.accept(makeServing(node, manifest), 'peer'), 'unknown_specialist');
  dir.accept(manifest, 'local');
  refused(dir.accept(makeServing(node, manifest, { contentHash: `sha256:${'00'.repeat(32)}` }), 'peer'), 'unknown_specialist');
  refused(dir.accept(makeServing(node, manifest, { nodeId: 'someone-else' }), 'peer'), 'invalid_signature');
  assert.equal(dir.accept(makeServing(node, manifest), 'peer').status, 'stored');
  assert.deepEqual(dir.views()[0]!.servedBy.map((record) => record.nodeId), [node.id]);
  assert.equal(dir.accept(makeServing(node, manifest, { version: 2, serving: false }), 'peer').status, 'stored');
  assert.deepEqual(dir.views()[0]!.servedBy, []);
  // A new file drops the serving records of the old one.
  dir.accept(makeServing(node, manifest, { version: 3 }), 'peer');
  dir.accept(makeManifest({ version: 2, contentHash: `sha256:${'77'.repeat(32)}` }, publisher), 'local');
  assert.deepEqual(dir.replica.servingOf(manifest.modelId), []);
});

test('caps: entries per publisher, serving records per model, entries in all', () => {
  const dir = directory({ maxPerPublisher: 2, maxServingPerModel: 1, maxEntries: 4 });
  dir.accept(makeManifest({ modelId: 'm1' }, publisher), 'local');
  dir.accept(makeManifest({ modelId: 'm2' }, publisher), 'local');
  refused(dir.accept(makeManifest({ modelId: 'm3' }, publisher), 'local'), 'quota_exceeded');
  assert.equal(dir.accept(makeManifest({ modelId: 'm1', version: 2 }, publisher), 'local').status, 'stored', 'updates stay allowed');
  const m1 = makeManifest({ modelId: 'm1', version: 2 }, publisher);
  dir.accept(makeServing(createEphemeralIdentity(), m1), 'peer');
  refused(dir.accept(makeServing(createEphemeralIdentity(), m1), 'peer'), 'quota_exceeded');
  dir.accept(makeManifest({ modelId: 'm4' }), 'local');
  refused(dir.accept(makeManifest({ modelId: 'm5' }), 'local'), 'quota_exceeded'); // 4 entries held
});

test('replicas converge whatever the order entries arrive in', () => {
  const other = createEphemeralIdentity();
  const node = createEphemeralIdentity();
  const base = makeManifest({ version: 1 }, publisher);
  const entries = [
    base,
    makeManifest({ version: 2 }, publisher),
    makeManifest({ version: 2, description: 'same version, other bytes' }, publisher),
    makeRevocation(publisher, { version: 2 }),
    makeManifest({ version: 5 }, publisher),
    makeServing(node, makeManifest({ version: 5 }, publisher)),
    makeManifest({ modelId: 'other-model' }, other),
    makeManifest({ modelId: 'other-model', version: 2 }, other),
  ];
  const random = mulberry32(7);
  const results = new Set<string>();
  for (let trial = 0; trial < 30; trial++) {
    const order = [...entries].sort(() => random() - 0.5);
    const dir = directory();
    // Twice: a serving record refused for lack of its manifest comes again in the next gossip round.
    for (let pass = 0; pass < 2; pass++) for (const entry of order) dir.accept(entry, 'peer');
    results.add(JSON.stringify(dir.replica.list().map((stored) => stored.entry)));
  }
  assert.equal(results.size, 1);
});
