/**
 * Persistence of the coordinator: the node table, the coordinator's own identity, and the manifest
 * directory. One interface, two implementations that pass the same conformance suite
 * (store.conformance.ts): SqliteStore (sqlite-store.ts, the real one) and MemoryStore (memory-store.ts,
 * for unit tests and throwaway coordinators).
 *
 * The interface is synchronous: better-sqlite3 is, and the coordinator's tables are small.
 * Values returned are copies; mutating them does not change the store.
 *
 * Stores keep only the fields the protocol's schemas know: registrations and manifests go through
 * storedRegistration / storedManifest below on every write (and SqliteStore parses the same way on read),
 * so fields nobody validated are never persisted or served again, whoever the caller is.
 */
import { ManifestSchema, NodeRegistrationSchema } from '../protocol.ts';
import type { Manifest, NodeRegistration, NodeRole, NodeState } from '../protocol.ts';

/** One node as the coordinator remembers it. */
export interface NodeRecord {
  nodeId: string;
  incarnation: number;
  state: NodeState;
  role: NodeRole;
  /** Epoch ms of the last registration or heartbeat. */
  lastSeen: number;
  /** Epoch ms when `state` last changed (the membership timers count from here). */
  stateChangedAt: number;
  /** Epoch ms when the current incarnation registered. */
  registeredAt: number;
  /** Latest free memory and load, from heartbeats. */
  freeMemoryBytes: number;
  load: number;
  /**
   * The registration's known fields (unknown ones dropped). Its signature was checked over the body as
   * received; it is kept as a record, not re-verified (the stored copy may lack a newer node's fields).
   */
  registration: NodeRegistration;
}

/** The coordinator's public identity (its private key stays in a 0600 file, see identity.ts). */
export interface StoredIdentity {
  coordinatorId: string;
  publicKey: string;
  createdAt: number;
}

export interface StoredManifest {
  /** The manifest's known fields, signature included (the server checks that it verifies over them). */
  manifest: Manifest;
  /** Epoch ms when it was stored or last replaced. */
  storedAt: number;
}

export interface CoordinatorStore {
  getNode(nodeId: string): NodeRecord | undefined;
  /** All nodes, sorted by nodeId. */
  listNodes(): NodeRecord[];
  /** Inserts or replaces the record with this nodeId. */
  putNode(record: NodeRecord): void;
  /** Returns whether a node was removed. */
  deleteNode(nodeId: string): boolean;

  getIdentity(): StoredIdentity | undefined;
  putIdentity(identity: StoredIdentity): void;

  getManifest(contentHash: string): StoredManifest | undefined;
  /** All manifests, oldest first (ties by contentHash). */
  listManifests(): StoredManifest[];
  /** Inserts or replaces the manifest with this contentHash. */
  putManifest(entry: StoredManifest): void;

  /** Releases the database handle; the store must not be used afterwards. */
  close(): void;
}

export class StoreError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(`${message}. ${hint}`);
    this.name = 'StoreError';
  }
}

/** `registration` with only the fields of NodeRegistrationSchema (nested objects included). */
export function storedRegistration(registration: NodeRegistration): NodeRegistration {
  const result = NodeRegistrationSchema.safeParse(registration);
  if (!result.success) throw new StoreError(`refusing to store an invalid registration of node ${String(registration.nodeId)}`, 'validate it with NodeRegistrationSchema first');
  return result.data;
}

/** `manifest` with only the fields of ManifestSchema. */
export function storedManifest(manifest: Manifest): Manifest {
  const result = ManifestSchema.safeParse(manifest);
  if (!result.success) throw new StoreError(`refusing to store an invalid manifest ${String(manifest.contentHash)}`, 'validate it with ManifestSchema first');
  return result.data;
}
