/**
 * Deleting an adapter or a user, the same way from the API (DELETE /v1/adapters/{id}, DELETE /v1/users/me)
 * and from the command line (`sharedllm users remove NAME`): files first (text, adapter, exports: zeroed
 * and unlinked), then the rows (the consent record goes with the adapter's row, the audit trail with the
 * user), and the deletion itself recorded as a fact (what, which id, when). A running node also stops the
 * adapter's job and forgets its cached gains (the hooks).
 */
import type { AdapterFiles } from './files.ts';
import type { PrimaryStore } from './store.ts';

export interface DeletionHooks {
  /** Stop the adapter's training job, if any, and wait until it has stopped. */
  cancelJob?: (id: string) => Promise<void>;
  /** Forget anything held in memory for the adapter (cached gains). */
  evict?: (id: string) => void;
}

/** Deletes one adapter everywhere; false when there was no such adapter. */
export async function deleteAdapter(store: PrimaryStore, files: AdapterFiles, id: string, hooks: DeletionHooks = {}): Promise<boolean> {
  const adapter = store.adapter(id);
  if (adapter === undefined) return false;
  await hooks.cancelJob?.(id);
  hooks.evict?.(id);
  files.deleteAll(id);
  store.audit(adapter.userId, 'adapter_deleted', id, { name: adapter.name });
  return store.deleteAdapter(id);
}

/** Deletes a user, every adapter of theirs, their audit trail and their key; false when unknown. */
export async function deleteUser(store: PrimaryStore, files: AdapterFiles, userId: string, hooks: DeletionHooks = {}): Promise<boolean> {
  for (const adapter of store.adaptersOf(userId)) {
    await hooks.cancelJob?.(adapter.id);
    hooks.evict?.(adapter.id);
    files.deleteAll(adapter.id);
  }
  return store.deleteUser(userId);
}
