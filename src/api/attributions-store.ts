/**
 * Where a primary keeps the mixture's trails: personal data (they follow a user's text token by token), so
 * they stay on this primary, expire after the retention (default 24 h), and their owner can delete them.
 * SQLite in the node's data dir (`attributions.db`), or in memory (tests, nodes without a data dir).
 * Rows are parsed with a zod schema on read: a corrupt row is an error, not data.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { MIXTURE_MODES, type MixtureTrail } from '../model/mixture/index.ts';

export interface StoredAttribution {
  /** The completion's id (chatcmpl-…, cmpl-…). */
  id: string;
  owner: string;
  model: string;
  /** Unix seconds. */
  created: number;
  /** One per choice. */
  trails: MixtureTrail[];
}

export interface AttributionStore {
  put(a: StoredAttribution): void;
  /** The trail if it exists, has not expired, and belongs to `owner`. */
  get(id: string, owner: string): StoredAttribution | undefined;
  /** Deletes one of the owner's trails; false when there was none. */
  delete(id: string, owner: string): boolean;
  /** Deletes every trail of the owner; returns how many. */
  deleteOwner(owner: string): number;
  close(): void;
}

export const ATTRIBUTION_STORE_CONFIG = {
  /** How long a trail is kept (`--attribution-retention`). */
  retentionSeconds: 24 * 3600,
  /** File name in the node's data dir. */
  file: 'attributions.db',
} as const;

const ShareSchema = z.object({ model: z.string(), share: z.number() });
const WeightSchema = z.object({ model: z.string(), weight: z.number() });
export const MixtureTrailSchema = z.object({
  mode: z.enum(MIXTURE_MODES),
  routed: z.array(WeightSchema),
  notRouted: z.array(WeightSchema),
  tokens: z.array(z.object({ token: z.number().int(), attribution: z.array(ShareSchema), weights: z.array(WeightSchema) })),
  dropped: z.array(z.object({ model: z.string(), atToken: z.number().int(), reason: z.string() })),
});
const TrailsSchema = z.array(MixtureTrailSchema);

const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** Trails in memory, same rules as the SQLite store. */
export class MemoryAttributionStore implements AttributionStore {
  private readonly rows = new Map<string, StoredAttribution>();
  constructor(private readonly retentionSeconds: number = ATTRIBUTION_STORE_CONFIG.retentionSeconds, private readonly now: () => number = nowSeconds) {}

  put(a: StoredAttribution): void {
    this.prune();
    this.rows.set(a.id, structuredClone(a));
  }

  get(id: string, owner: string): StoredAttribution | undefined {
    this.prune();
    const a = this.rows.get(id);
    return a?.owner === owner ? structuredClone(a) : undefined;
  }

  delete(id: string, owner: string): boolean {
    if (this.rows.get(id)?.owner !== owner) return false;
    return this.rows.delete(id);
  }

  deleteOwner(owner: string): number {
    let n = 0;
    for (const [id, a] of this.rows) if (a.owner === owner && this.rows.delete(id)) n++;
    return n;
  }

  close(): void {
    this.rows.clear();
  }

  private prune(): void {
    const cutoff = this.now() - this.retentionSeconds;
    for (const [id, a] of this.rows) if (a.created < cutoff) this.rows.delete(id);
  }
}

interface Row {
  id: string;
  owner: string;
  model: string;
  created: number;
  trails: string;
}

export class SqliteAttributionStore implements AttributionStore {
  private constructor(private readonly db: Database.Database, private readonly retentionSeconds: number, private readonly now: () => number) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS attributions (
        id      TEXT PRIMARY KEY,
        owner   TEXT NOT NULL,
        model   TEXT NOT NULL,
        created INTEGER NOT NULL,   -- unix seconds
        trails  TEXT NOT NULL       -- JSON: one MixtureTrail per choice
      );
      CREATE INDEX IF NOT EXISTS attributions_owner ON attributions (owner);
      CREATE INDEX IF NOT EXISTS attributions_created ON attributions (created);
    `);
  }

  /** Opens (or creates) the database file; `:memory:` for a throwaway one. */
  static open(path: string, retentionSeconds: number = ATTRIBUTION_STORE_CONFIG.retentionSeconds, now: () => number = nowSeconds): SqliteAttributionStore {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const db = new Database(path);
    try {
      if (path !== ':memory:') db.pragma('journal_mode = WAL');
      db.pragma('busy_timeout = 5000');
      return new SqliteAttributionStore(db, retentionSeconds, now);
    } catch (error) {
      db.close();
      throw error;
    }
  }

  put(a: StoredAttribution): void {
    this.prune();
    this.db.prepare('INSERT OR REPLACE INTO attributions (id, owner, model, created, trails) VALUES (?, ?, ?, ?, ?)').run(a.id, a.owner, a.model, a.created, JSON.stringify(a.trails));
  }

  get(id: string, owner: string): StoredAttribution | undefined {
    this.prune();
    const row = this.db.prepare('SELECT id, owner, model, created, trails FROM attributions WHERE id = ? AND owner = ?').get(id, owner) as Row | undefined;
    if (row === undefined) return undefined;
    return { id: row.id, owner: row.owner, model: row.model, created: row.created, trails: TrailsSchema.parse(JSON.parse(row.trails)) };
  }

  delete(id: string, owner: string): boolean {
    return this.db.prepare('DELETE FROM attributions WHERE id = ? AND owner = ?').run(id, owner).changes > 0;
  }

  deleteOwner(owner: string): number {
    return this.db.prepare('DELETE FROM attributions WHERE owner = ?').run(owner).changes;
  }

  close(): void {
    this.db.close();
  }

  private prune(): void {
    this.db.prepare('DELETE FROM attributions WHERE created < ?').run(this.now() - this.retentionSeconds);
  }
}
