/** DirectoryReplica in a Map: for tests, simulations and nodes without a data directory. */
import { DirectoryEntrySchema } from '../protocol-directory.ts';
import { entryKey } from './entry.ts';
import type { DirectoryReplica, ReplicaChange, StoredEntry } from './replica.ts';
import { ReplicaError } from './replica.ts';

export class MemoryReplica implements DirectoryReplica {
  private readonly entries = new Map<string, StoredEntry>();
  private closed = false;

  get(key: string): StoredEntry | undefined {
    this.checkOpen();
    const stored = this.entries.get(key);
    return stored === undefined ? undefined : structuredClone(stored);
  }

  list(): StoredEntry[] {
    this.checkOpen();
    return [...this.entries.keys()].sort(compareStrings).map((key) => structuredClone(this.entries.get(key)!));
  }

  countByPublisher(publisherKey: string): number {
    this.checkOpen();
    let count = 0;
    for (const { entry } of this.entries.values()) if (entry.kind !== 'serving' && entry.publisherKey === publisherKey) count += 1;
    return count;
  }

  servingOf(modelId: string): StoredEntry[] {
    this.checkOpen();
    return this.list().filter(({ entry }) => entry.kind === 'serving' && entry.modelId === modelId);
  }

  size(): number {
    this.checkOpen();
    return this.entries.size;
  }

  apply(change: ReplicaChange): void {
    this.checkOpen();
    // Parse before removing anything, so that a bad entry leaves the replica as it was.
    const entry = change.put === undefined ? undefined : DirectoryEntrySchema.parse(change.put.entry); // known fields only
    for (const key of change.remove) this.entries.delete(key);
    if (change.put === undefined || entry === undefined) return;
    this.entries.set(entryKey(entry), { entry, source: change.put.source, receivedAt: change.put.receivedAt });
  }

  close(): void {
    this.closed = true;
  }

  private checkOpen(): void {
    if (this.closed) throw new ReplicaError('MemoryReplica used after close()', 'create a new replica');
  }
}

/** Byte-order comparison, as SQLite's BINARY collation orders ASCII keys. */
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
