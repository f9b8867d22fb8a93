// Lenders in the directory: serving records with `mixtureAddr`, for a manifest of this tokenizer, signed by
// another node; the address is inside the signature, and a record without it (older nodes) still verifies.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { testDirectoryConfig } from '../directory/config.ts';
import { Directory } from '../directory/directory.ts';
import { MemoryReplica } from '../directory/memory-replica.ts';
import { makeManifest } from '../directory/testing.ts';
import { type Identity, createEphemeralIdentity, signBody } from '../identity.ts';
import type { ServingRecord, UnsignedServingRecord } from '../protocol-directory.ts';
import { lendersIn } from './discovery.ts';

const TOKENIZER = `sha256:${'0e'.repeat(32)}`;
const OTHER_TOKENIZER = `sha256:${'0f'.repeat(32)}`;

function serving(node: Identity, modelId: string, contentHash: string, o: { mixtureAddr?: string; serving?: boolean; issuedAt?: number } = {}): ServingRecord {
  const issuedAt = o.issuedAt ?? 1_700_000_000_000;
  const body: UnsignedServingRecord = {
    kind: 'serving', modelId, contentHash, nodeId: node.id, nodeKey: node.publicKey, serving: o.serving ?? true,
    ...(o.mixtureAddr === undefined ? {} : { mixtureAddr: o.mixtureAddr }), version: issuedAt, issuedAt,
  };
  return signBody(node, body);
}

test('lenders: other nodes whose records carry an address, for manifests of this tokenizer, one per node', () => {
  const directory = new Directory(new MemoryReplica(), testDirectoryConfig());
  const hash = (n: number) => `sha256:${String(n).padStart(2, '0').repeat(32)}`;
  for (const [modelId, contentHash, tokenizerHash] of [['code', hash(11), TOKENIZER], ['law', hash(12), TOKENIZER], ['other-vocab', hash(13), OTHER_TOKENIZER]] as const) {
    assert.equal(directory.accept(makeManifest({ modelId, contentHash, tokenizerHash }), 'peer').status, 'stored');
  }
  const [self, lender, silent, foreign] = [createEphemeralIdentity(), createEphemeralIdentity(), createEphemeralIdentity(), createEphemeralIdentity()];
  const records = [
    serving(self, 'code', hash(11), { mixtureAddr: '10.0.0.1:7800' }), // ourselves
    serving(lender, 'code', hash(11), { mixtureAddr: '10.0.0.2:7800' }),
    serving(lender, 'law', hash(12), { mixtureAddr: '10.0.0.2:7801', issuedAt: 1_700_000_000_500 }), // newer: its address wins
    serving(silent, 'code', hash(11)), // serves, lends nothing (an older node, or no --mixture-listen)
    serving(foreign, 'other-vocab', hash(13), { mixtureAddr: '10.0.0.4:7800' }), // another tokenizer
  ];
  for (const r of records) assert.equal(directory.accept(r, 'peer').status, 'stored', JSON.stringify(r));
  assert.deepEqual(lendersIn(directory, { selfId: self.id, tokenizerHash: TOKENIZER }), [{ nodeId: lender.id, addr: '10.0.0.2:7801', modelIds: ['code', 'law'] }]);
  assert.deepEqual(lendersIn(directory, { selfId: self.id, tokenizerHash: OTHER_TOKENIZER }).map((l) => l.nodeId), [foreign.id]);

  // Withdrawn (serving: false) records lend nothing.
  for (const modelId of ['code', 'law'] as const) {
    assert.equal(directory.accept(serving(lender, modelId, modelId === 'code' ? hash(11) : hash(12), { serving: false, issuedAt: 1_700_000_001_000 }), 'peer').status, 'stored');
  }
  assert.deepEqual(lendersIn(directory, { selfId: self.id, tokenizerHash: TOKENIZER }), []);
});

test('the address is signed: a record whose address was changed in transit is refused', () => {
  const directory = new Directory(new MemoryReplica(), testDirectoryConfig());
  const contentHash = `sha256:${'11'.repeat(32)}`;
  directory.accept(makeManifest({ modelId: 'code', contentHash, tokenizerHash: TOKENIZER }), 'peer');
  const node = createEphemeralIdentity();
  const record = serving(node, 'code', contentHash, { mixtureAddr: '10.0.0.2:7800' });
  const outcome = directory.accept({ ...record, mixtureAddr: '6.6.6.6:7800' }, 'peer');
  assert.equal(outcome.status, 'refused');
  assert.equal(outcome.status === 'refused' ? outcome.code : '', 'invalid_signature');
  const stripped = directory.accept({ ...record, mixtureAddr: undefined }, 'peer');
  assert.equal(stripped.status, 'refused', 'nor can the address be removed');
  assert.equal(directory.accept({ ...record, mixtureAddr: 'not an address' }, 'peer').status, 'refused');
  assert.equal(directory.accept(record, 'peer').status, 'stored');
});
