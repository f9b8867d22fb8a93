/**
 * One node's specialist directory: a replica plus the RFC-0006 rules. Everything that enters (an HTTP
 * publish, a gossip answer, a push) goes through accept(): parse, check the signature, decide (rules.ts),
 * apply atomically. The anti-entropy side (digest, reconcile) is here too; who to talk to and when is
 * GossipNode's business (gossip.ts).
 */
import type { DigestItem, DirectoryEntry, Manifest, ServingRecord, SpecialistView } from '../protocol-directory.ts';
import type { DirectoryConfig } from './config.ts';
import { compareVersions, digestItem, parseEntry } from './entry.ts';
import type { DirectoryReplica } from './replica.ts';
import { decide } from './rules.ts';
import type { Decision, RefusalCode } from './rules.ts';

export type AcceptOutcome = Exclude<Decision, { status: 'refused' }> | { status: 'refused'; key?: string; code: RefusalCode | 'invalid_body' | 'invalid_signature'; reason: string; hint: string };

export class Directory {
  constructor(
    readonly replica: DirectoryReplica,
    readonly config: DirectoryConfig,
    private readonly now: () => number = Date.now,
  ) {}

  /** Validates, checks and stores one entry as received from `source` ('local', a peer id, 'http'). Never throws on bad input. */
  accept(raw: unknown, source: string): AcceptOutcome {
    const parsed = parseEntry(raw);
    if (!parsed.ok) return { status: 'refused', code: parsed.code, reason: parsed.reason, hint: 'entries are signed over exactly the fields of src/federation/protocol.ts (identity.ts signBody)' };
    const decision = decide(this.replica, parsed.entry, this.config);
    if (decision.status === 'stored') {
      this.replica.apply({ put: { entry: decision.entry, source, receivedAt: this.now() }, remove: decision.remove });
    }
    return decision;
  }

  /** (key, kind, version, hash) of every entry: what a peer needs to tell what we lack. */
  digest(): DigestItem[] {
    return this.replica.list().map(({ entry }) => digestItem(entry));
  }

  /**
   * Against a peer's digest: the entries it lacks or holds older (at most maxEntriesPerMessage, oldest keys
   * first; the rest follow in later rounds) and the keys it holds newer, which we want.
   */
  reconcile(theirs: readonly DigestItem[]): { entries: DirectoryEntry[]; want: string[] } {
    const theirByKey = new Map(theirs.map((item) => [item.key, item]));
    // Each of our entries is hashed once per call (the hash is the canonical JSON's sha256: not free).
    const ours = this.replica.list().map(({ entry }) => ({ entry, item: digestItem(entry) }));
    const ourByKey = new Map(ours.map((o) => [o.item.key, o.item]));
    const entries: DirectoryEntry[] = [];
    for (const { entry, item } of ours) {
      if (entries.length >= this.config.maxEntriesPerMessage) break;
      const their = theirByKey.get(item.key);
      if (their === undefined || compareVersions(item, their) > 0) entries.push(entry);
    }
    const want: string[] = [];
    for (const item of theirs) {
      if (want.length >= this.config.maxEntriesPerMessage) break;
      const our = ourByKey.get(item.key);
      if (our === undefined || compareVersions(item, our) > 0) want.push(item.key);
    }
    return { entries, want };
  }

  /** The entries stored under these keys (unknown keys skipped), at most maxEntriesPerMessage. */
  entries(keys: readonly string[]): DirectoryEntry[] {
    const found: DirectoryEntry[] = [];
    for (const key of keys.slice(0, this.config.maxEntriesPerMessage)) {
      const stored = this.replica.get(key);
      if (stored !== undefined) found.push(stored.entry);
    }
    return found;
  }

  /** Active manifests, sorted by model id. */
  manifests(): Manifest[] {
    return this.replica.list().flatMap(({ entry }) => (entry.kind === 'manifest' ? [entry] : []));
  }

  /** This node's view of every specialist (active and revoked), sorted by model id, with its serving nodes. */
  views(): SpecialistView[] {
    const all = this.replica.list();
    const servers = new Map<string, ServingRecord[]>();
    for (const { entry } of all) {
      if (entry.kind === 'serving' && entry.serving) servers.set(entry.modelId, [...(servers.get(entry.modelId) ?? []), entry]);
    }
    return all.flatMap(({ entry, source, receivedAt }): SpecialistView[] => {
      if (entry.kind === 'serving') return [];
      const base = { modelId: entry.modelId, version: entry.version, publisherKey: entry.publisherKey, source, receivedAt };
      return entry.kind === 'manifest'
        ? [{ ...base, status: 'active', manifest: entry, servedBy: servers.get(entry.modelId) ?? [] }]
        : [{ ...base, status: 'revoked', revocation: entry, servedBy: [] }];
    });
  }

  view(modelId: string): SpecialistView | undefined {
    return this.views().find((view) => view.modelId === modelId);
  }
}
