/** CoordinatorStore kept in Maps: for unit tests and coordinators that need no persistence. */
import { MemoryReplica } from '../directory/memory-replica.ts';
import type { CoordinatorStore, NodeRecord, StoredIdentity } from './store.ts';
import { StoreError, storedRegistration } from './store.ts';

export class MemoryStore implements CoordinatorStore {
  private readonly nodes = new Map<string, NodeRecord>();
  readonly directory = new MemoryReplica();
  private identity: StoredIdentity | undefined;
  private closed = false;

  getNode(nodeId: string): NodeRecord | undefined {
    this.checkOpen();
    const record = this.nodes.get(nodeId);
    return record === undefined ? undefined : structuredClone(record);
  }

  listNodes(): NodeRecord[] {
    this.checkOpen();
    return [...this.nodes.values()]
      .sort((a, b) => compareStrings(a.nodeId, b.nodeId))
      .map((record) => structuredClone(record));
  }

  putNode(record: NodeRecord): void {
    this.checkOpen();
    this.nodes.set(record.nodeId, structuredClone({ ...record, registration: storedRegistration(record.registration) }));
  }

  deleteNode(nodeId: string): boolean {
    this.checkOpen();
    return this.nodes.delete(nodeId);
  }

  getIdentity(): StoredIdentity | undefined {
    this.checkOpen();
    return this.identity === undefined ? undefined : { ...this.identity };
  }

  putIdentity(identity: StoredIdentity): void {
    this.checkOpen();
    this.identity = { ...identity };
  }

  close(): void {
    this.closed = true;
    this.directory.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new StoreError('MemoryStore used after close()', 'create a new store');
  }
}

/** Byte-order comparison (what SQLite's default BINARY collation does for ASCII ids). */
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
