/**
 * The merge rules of the RFC-0006 directory as a pure function: given what a replica holds and an entry
 * whose signature was already checked (entry.ts parseEntry), decide whether to store it, and what it
 * removes. Every node applies the same rules, and compareVersions is a total order, so replicas that have
 * seen the same entries hold the same ones whatever the order they arrived in.
 */
import type { DirectoryEntry } from '../protocol-directory.ts';
import type { DirectoryConfig } from './config.ts';
import { compareVersions, digestItem, entryKey, entrySigner } from './entry.ts';
import type { ReplicaView } from './replica.ts';

export const REFUSAL_CODES = ['manifest_conflict', 'stale_version', 'revoked', 'quota_exceeded', 'unknown_specialist'] as const;
export type RefusalCode = (typeof REFUSAL_CODES)[number];

export type Decision =
  | { status: 'stored'; key: string; entry: DirectoryEntry; replaced?: DirectoryEntry; remove: string[] }
  | { status: 'duplicate'; key: string; entry: DirectoryEntry }
  | { status: 'refused'; key: string; code: RefusalCode; reason: string; hint: string };

type Limits = Pick<DirectoryConfig, 'maxEntries' | 'maxPerPublisher' | 'maxServingPerModel'>;

export function decide(view: ReplicaView, entry: DirectoryEntry, limits: Limits): Decision {
  const key = entryKey(entry);
  const refuse = (code: RefusalCode, reason: string, hint: string): Decision => ({ status: 'refused', key, code, reason, hint });

  if (entry.kind === 'serving') {
    const model = view.get(entry.modelId)?.entry;
    if (model?.kind === 'revocation') return refuse('revoked', `${entry.modelId} is revoked`, 'a revoked specialist cannot be served');
    if (model?.kind !== 'manifest') return refuse('unknown_specialist', `no manifest for ${entry.modelId} here`, 'publish the manifest first; gossip delivers it before the serving record');
    if (model.contentHash !== entry.contentHash) {
      return refuse('unknown_specialist', `${entry.modelId} v${model.version} is ${model.contentHash}, the node serves ${entry.contentHash}`, 'serve the file the current manifest names');
    }
  }

  const current = view.get(key)?.entry;
  if (current !== undefined) {
    if (entrySigner(current) !== entrySigner(entry)) {
      return refuse('manifest_conflict', `${key} is held by publisher key ${entrySigner(current).slice(0, 12)}…, this entry is signed by ${entrySigner(entry).slice(0, 12)}…`, 'pick another model id, or sign with the key that published it');
    }
    const order = compareVersions(digestItem(entry), digestItem(current));
    if (order === 0) return { status: 'duplicate', key, entry };
    if (order < 0) {
      if (current.kind === 'revocation' && entry.kind === 'manifest') {
        return refuse('revoked', `${key} was revoked at version ${current.version}; this manifest is version ${entry.version}`, `publish version ${current.version + 1} or higher to bring it back`);
      }
      return refuse('stale_version', `${key} is held at version ${current.version}; this ${entry.kind} is version ${entry.version}`, `a replay or an old copy; publish version ${current.version + 1} or higher`);
    }
  } else {
    if (view.size() >= limits.maxEntries) return refuse('quota_exceeded', `the directory holds ${view.size()} entries, the most it keeps`, 'config maxEntries; revoke unused specialists');
    if (entry.kind === 'serving') {
      const servers = view.servingOf(entry.modelId).length;
      if (servers >= limits.maxServingPerModel) return refuse('quota_exceeded', `${entry.modelId} already lists ${servers} serving nodes`, 'config maxServingPerModel');
    } else if (view.countByPublisher(entry.publisherKey) >= limits.maxPerPublisher) {
      return refuse('quota_exceeded', `publisher ${entry.publisherKey.slice(0, 12)}… already holds ${limits.maxPerPublisher} model ids`, 'revoke some, or ask the federation to raise config maxPerPublisher');
    }
  }

  // Serving records that no longer apply: all of them on revocation, those of another file on a new manifest.
  let remove: string[] = [];
  if (entry.kind === 'revocation' || (entry.kind === 'manifest' && current?.kind === 'manifest' && current.contentHash !== entry.contentHash)) {
    remove = view
      .servingOf(entry.modelId)
      .filter(({ entry: serving }) => entry.kind === 'revocation' || (serving.kind === 'serving' && serving.contentHash !== entry.contentHash))
      .map(({ entry: serving }) => entryKey(serving));
  }
  return current === undefined ? { status: 'stored', key, entry, remove } : { status: 'stored', key, entry, replaced: current, remove };
}
