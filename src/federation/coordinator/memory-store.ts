/** CoordinatorStore kept in Maps: for unit tests and coordinators that need no persistence. */
import type { CoordinatorStore, NodeRecord, StoredIdentity, StoredManifest } from './store.ts';
import { StoreError, storedManifest, storedRegistration } from './store.ts';

export class MemoryStore implements CoordinatorStore {
  private readonly nodes = new Map<string, NodeRecord>();
  private readonly manifests = new Map<string, StoredManifest>();
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

  getManifest(contentHash: string): StoredManifest | undefined {
    this.checkOpen();
    const entry = this.manifests.get(contentHash);
    return entry === undefined ? undefined : structuredClone(entry);
  }

  listManifests(): StoredManifest[] {
    this.checkOpen();
    return [...this.manifests.values()]
      .sort((a, b) => a.storedAt - b.storedAt || compareStrings(a.manifest.contentHash, b.manifest.contentHash))
      .map((entry) => structuredClone(entry));
  }

  putManifest(entry: StoredManifest): void {
    this.checkOpen();
    this.manifests.set(entry.manifest.contentHash, { manifest: storedManifest(entry.manifest), storedAt: entry.storedAt });
  }

  close(): void {
    this.closed = true;
  }

  private checkOpen(): void {
    if (this.closed) throw new StoreError('MemoryStore used after close()', 'create a new store');
  }
}

/** Byte-order comparison (what SQLite's default BINARY collation does for ASCII ids). */
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
