/**
 * Persistence of the coordinator: the node table, the coordinator's own identity, and its replica of
 * the RFC-0006 specialist directory (federation/directory: the coordinator is one directory participant). One interface, two implementations that pass the same conformance suite
 * (store.conformance.ts): SqliteStore (sqlite-store.ts, the real one) and MemoryStore (memory-store.ts,
 * for unit tests and throwaway coordinators).
 *
 * The interface is synchronous: better-sqlite3 is, and the coordinator's tables are small.
 * Values returned are copies; mutating them does not change the store.
 *
 * Stores keep only the fields the protocol's schemas know: registrations go through storedRegistration
 * below on every write, directory entries through DirectoryEntrySchema (and SQLite parses on read),
 * so fields nobody validated are never persisted or served again, whoever the caller is.
 */
import { NodeRegistrationSchema } from '../protocol.ts';
import type { NodeRegistration, NodeRole, NodeState } from '../protocol.ts';
import type { DirectoryReplica } from '../directory/replica.ts';

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

  /** The specialist directory's replica (same database, same lifetime: closed by close()). */
  readonly directory: DirectoryReplica;

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
