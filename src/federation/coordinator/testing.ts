/**
 * Fixtures for the coordinator's tests (and for other roles' tests that need a registered node):
 * signed registrations, manifests, temp directories.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { POLL_DEFAULTS, pollUntil } from '../../util/poll.ts';
import { PROTOCOL_VERSION } from '../protocol.ts';
import type { Heartbeat, HeartbeatBody, Leave, LeaveBody, NodeRegistration, UnsignedNodeRegistration } from '../protocol.ts';
import { createEphemeralIdentity, signBody } from '../identity.ts';
import type { Identity } from '../identity.ts';
import type { NodeRecord } from './store.ts';

let beats = 0;

/** A heartbeat signed by `identity` (the node's registered key); `beat` increases on every call unless given. */
export function makeHeartbeat(identity: Identity, body: HeartbeatBody & { beat?: number }): Heartbeat {
  return signBody(identity, { ...body, beat: body.beat ?? ++beats });
}

/** A leave signed by `identity`. */
export function makeLeave(identity: Identity, body: LeaveBody): Leave {
  return signBody(identity, body);
}

/** A signed registration for `identity` (a fresh one by default); overrides apply before signing. */
export function makeRegistration(overrides: Partial<UnsignedNodeRegistration> = {}, identity: Identity = createEphemeralIdentity()): NodeRegistration {
  const body: UnsignedNodeRegistration = {
    protocolVersion: PROTOCOL_VERSION,
    nodeId: identity.id,
    incarnation: 1,
    role: 'worker',
    name: 'test-worker',
    candidates: [{ kind: 'lan', addr: '127.0.0.1:7801', priority: 10 }],
    freeMemoryBytes: 8 * 1024 ** 3,
    threads: 4,
    backend: 'cpu',
    models: [{ hash: `sha256:${'ab'.repeat(32)}`, name: 'smollm2-135m', nLayers: 30 }],
    version: '0.1.0',
    publicKey: identity.publicKey,
    ...overrides,
  };
  return signBody(identity, body);
}

/** A node record as the store holds it, for store tests. */
export function makeNodeRecord(overrides: Partial<NodeRecord> = {}): NodeRecord {
  const registration = makeRegistration(overrides.nodeId === undefined ? {} : { nodeId: overrides.nodeId });
  return {
    nodeId: registration.nodeId,
    incarnation: registration.incarnation,
    state: 'alive',
    role: registration.role,
    lastSeen: 1_700_000_000_000,
    stateChangedAt: 1_700_000_000_000,
    registeredAt: 1_700_000_000_000,
    freeMemoryBytes: registration.freeMemoryBytes,
    load: 0.25,
    registration,
    ...overrides,
  };
}

/** Signed directory entries: the fixtures live beside the directory. */
export { makeManifest, makeRevocation, makeServing } from '../directory/testing.ts';

/** A temp directory removed by the returned cleanup. */
export function tempDir(prefix = 'sharedllm-test-'): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/**
 * Waits until `check` returns true (src/util/poll.ts pollUntil, the one "poll until"); throws after
 * `timeoutMs` naming `what`. For waiting on background loops in tests; never use it to assert timings.
 */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number = POLL_DEFAULTS.timeoutMs): Promise<void> {
  await pollUntil(what, check, { timeoutMs });
}
