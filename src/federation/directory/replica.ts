/**
 * A node's copy of the specialist directory. One interface, two implementations passing one conformance
 * suite (replica.conformance.ts): MemoryReplica (tests, nodes without a data dir, simulations) and
 * SqliteReplica (the coordinator and nodes with a data dir).
 *
 * Replicas store what they are given: the merge rules (rules.ts) and the signature checks (entry.ts) run
 * before, in Directory (directory.ts). Values returned are copies.
 */
import type { DirectoryEntry } from '../protocol-directory.ts';

export interface StoredEntry {
  entry: DirectoryEntry;
  /** 'local' when published at this node, else the id of the peer (or 'http') it came from. */
  source: string;
  /** Epoch ms when this node stored this version. */
  receivedAt: number;
}

/** One atomic change: put an entry (replacing the one at its key) and remove others. */
export interface ReplicaChange {
  put?: StoredEntry;
  remove: readonly string[];
}

/** What the merge rules read (rules.ts): a replica is one. */
export interface ReplicaView {
  get(key: string): StoredEntry | undefined;
  /** Manifests and tombstones whose publisherKey is this key. */
  countByPublisher(publisherKey: string): number;
  /** Serving records of one model id, sorted by key. */
  servingOf(modelId: string): StoredEntry[];
  size(): number;
}

export interface DirectoryReplica extends ReplicaView {
  /** Every entry, sorted by key. */
  list(): StoredEntry[];
  apply(change: ReplicaChange): void;
  /** Releases resources; the replica must not be used afterwards. */
  close(): void;
}

export class ReplicaError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(`${message}. ${hint}`);
    this.name = 'ReplicaError';
  }
}
