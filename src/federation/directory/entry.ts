/**
 * RFC-0006 directory entries as values: their key, their order, their digest item, and their signature
 * check. Pure functions; the merge rules that use them are in rules.ts.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { fingerprint, verifyBody } from '../identity.ts';
import { canonicalJson } from '../protocol.ts';
import { DirectoryEntrySchema } from '../protocol-directory.ts';
import type { DigestItem, DirectoryEntry } from '../protocol-directory.ts';

/** Where an entry lives in a replica: the model id, or 'modelId@nodeId' for a serving record. */
export function entryKey(entry: DirectoryEntry): string {
  return entry.kind === 'serving' ? servingKey(entry.modelId, entry.nodeId) : entry.modelId;
}

export function servingKey(modelId: string, nodeId: string): string {
  return `${modelId}@${nodeId}`;
}

/** The key that owns an entry's model id (publisher for manifests and revocations, the node for serving). */
export function entrySigner(entry: DirectoryEntry): string {
  return entry.kind === 'serving' ? entry.nodeKey : entry.publisherKey;
}

/** First 16 hex of sha256 over the canonical entry: two different entries of one version differ here. */
export function entryHash(entry: DirectoryEntry): string {
  return createHash('sha256').update(canonicalJson(entry)).digest('hex').slice(0, 16);
}

export function digestItem(entry: DirectoryEntry): DigestItem {
  return { key: entryKey(entry), kind: entry.kind, version: entry.version, hash: entryHash(entry) };
}

/**
 * Total order of two versions of one key, the same on every node so that replicas converge whatever the
 * order of arrival: higher version first; at equal versions a revocation beats a manifest; then the hash.
 * > 0 when `a` is newer than `b`, 0 when they are the same entry.
 */
export function compareVersions(a: Pick<DigestItem, 'kind' | 'version' | 'hash'>, b: Pick<DigestItem, 'kind' | 'version' | 'hash'>): number {
  if (a.version !== b.version) return a.version - b.version;
  const rank = (kind: DigestItem['kind']) => (kind === 'revocation' ? 1 : 0);
  if (rank(a.kind) !== rank(b.kind)) return rank(a.kind) - rank(b.kind);
  return a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0;
}

export type ParsedEntry = { ok: true; entry: DirectoryEntry } | { ok: false; code: 'invalid_body' | 'invalid_signature'; reason: string };

/**
 * Validates an entry as received (from HTTP, a file or a peer) and checks its signature over exactly the
 * schema's fields. Unknown fields are dropped first; an entry signed over fields this version does not
 * know therefore fails here, which is what we want: it could not be served in a form that verifies.
 */
export function parseEntry(raw: unknown): ParsedEntry {
  const parsed = DirectoryEntrySchema.safeParse(raw);
  if (!parsed.success) return { ok: false, code: 'invalid_body', reason: `not a directory entry: ${z.prettifyError(parsed.error).slice(0, 600)}` };
  const entry = parsed.data;
  if (entry.kind === 'serving') {
    if (fingerprint(entry.nodeKey) !== entry.nodeId) {
      return { ok: false, code: 'invalid_signature', reason: `serving record names node ${entry.nodeId}, but its key's fingerprint is ${fingerprint(entry.nodeKey)}` };
    }
    if (!verifyBody(entry, 'nodeKey')) return { ok: false, code: 'invalid_signature', reason: `serving record ${entryKey(entry)} is not signed by its nodeKey` };
    return { ok: true, entry };
  }
  if (!verifyBody(entry, 'publisherKey')) {
    return { ok: false, code: 'invalid_signature', reason: `${entry.kind} of ${entry.modelId} v${entry.version} is not signed by its publisherKey over the fields of this protocol version` };
  }
  return { ok: true, entry };
}
