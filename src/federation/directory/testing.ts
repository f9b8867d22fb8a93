/** Fixtures for directory tests: signed manifests, revocations and serving records. */
import { createEphemeralIdentity, signBody } from '../identity.ts';
import type { Identity } from '../identity.ts';
import type { Manifest, Revocation, ServingRecord, UnsignedManifest, UnsignedRevocation, UnsignedServingRecord } from '../protocol-directory.ts';

/** A manifest signed by `publisher` (a fresh identity by default); overrides apply before signing. */
export function makeManifest(overrides: Partial<UnsignedManifest> = {}, publisher: Identity = createEphemeralIdentity()): Manifest {
  const body: UnsignedManifest = {
    kind: 'manifest',
    modelId: 'smollm2-135m-code',
    version: 1,
    issuedAt: 1_700_000_000_000,
    architecture: 'llama',
    vocabSize: 49152,
    hiddenDim: 576,
    nLayers: 30,
    quant: 'q8_0',
    fileBytes: 144_000_000,
    contentHash: `sha256:${'cd'.repeat(32)}`,
    tokenizerHash: `sha256:${'0e'.repeat(32)}`,
    domains: ['code'],
    description: 'SmolLM2 135M fine-tuned on Go and Python source',
    publisherKey: publisher.publicKey,
    ...overrides,
  };
  return signBody(publisher, body);
}

export function makeRevocation(publisher: Identity, overrides: Partial<UnsignedRevocation> = {}): Revocation {
  const body: UnsignedRevocation = {
    kind: 'revocation',
    modelId: 'smollm2-135m-code',
    version: 1,
    issuedAt: 1_700_000_001_000,
    publisherKey: publisher.publicKey,
    ...overrides,
  };
  return signBody(publisher, body);
}

/** A serving record signed by `node` for `manifest`'s file. */
export function makeServing(node: Identity, manifest: Manifest, overrides: Partial<UnsignedServingRecord> = {}): ServingRecord {
  const body: UnsignedServingRecord = {
    kind: 'serving',
    modelId: manifest.modelId,
    contentHash: manifest.contentHash,
    nodeId: node.id,
    nodeKey: node.publicKey,
    serving: true,
    version: 1,
    issuedAt: 1_700_000_002_000,
    ...overrides,
  };
  return signBody(node, body);
}
