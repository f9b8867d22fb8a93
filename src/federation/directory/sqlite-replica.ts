/**
 * DirectoryReplica in SQLite (better-sqlite3). It lives in a table of a database someone else may own:
 * the coordinator passes its own handle (coordinator.db), a node with a data dir opens `directory.db`.
 * Rows are parsed with the protocol's schema on read, so a corrupt or foreign row is an error, not data.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DirectoryEntrySchema } from '../protocol-directory.ts';
import { entryKey } from './entry.ts';
import type { DirectoryReplica, ReplicaChange, StoredEntry } from './replica.ts';
import { ReplicaError } from './replica.ts';

/** File name of a node's directory database inside its data directory. */
export const DIRECTORY_DB_FILE = 'directory.db';

/** Idempotent: safe to run on every open (the coordinator's migration 2 runs it too). */
export const DIRECTORY_TABLE_SQL = `
  CREATE TABLE IF NOT EXISTS directory_entries (
    key           TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    model_id      TEXT NOT NULL,
    publisher_key TEXT,            -- NULL for serving records
    entry         TEXT NOT NULL,   -- JSON of the parsed, signature-checked entry
    source        TEXT NOT NULL,
    received_at   INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS directory_entries_model ON directory_entries (model_id);
  CREATE INDEX IF NOT EXISTS directory_entries_publisher ON directory_entries (publisher_key);
`;

interface Row {
  key: string;
  entry: string;
  source: string;
  received_at: number;
}

export class SqliteReplica implements DirectoryReplica {
  private readonly ownsDb: boolean;

  /** Uses `db` (its owner closes it) or opens the database file at a path (closed by close()). */
  constructor(private readonly db: Database.Database, options: { ownsDb?: boolean } = {}) {
    this.ownsDb = options.ownsDb ?? false;
    this.db.exec(DIRECTORY_TABLE_SQL);
  }

  static open(path: string): SqliteReplica {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const db = new Database(path);
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('busy_timeout = 5000');
      return new SqliteReplica(db, { ownsDb: true });
    } catch (error) {
      db.close();
      throw error;
    }
  }

  get(key: string): StoredEntry | undefined {
    const row = this.db.prepare('SELECT key, entry, source, received_at FROM directory_entries WHERE key = ?').get(key) as Row | undefined;
    return row === undefined ? undefined : fromRow(row);
  }

  list(): StoredEntry[] {
    const rows = this.db.prepare('SELECT key, entry, source, received_at FROM directory_entries ORDER BY key').all() as Row[];
    return rows.map(fromRow);
  }

  countByPublisher(publisherKey: string): number {
    const row = this.db.prepare("SELECT COUNT(*) AS n FROM directory_entries WHERE publisher_key = ? AND kind != 'serving'").get(publisherKey) as { n: number };
    return row.n;
  }

  servingOf(modelId: string): StoredEntry[] {
    const rows = this.db
      .prepare("SELECT key, entry, source, received_at FROM directory_entries WHERE model_id = ? AND kind = 'serving' ORDER BY key")
      .all(modelId) as Row[];
    return rows.map(fromRow);
  }

  size(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM directory_entries').get() as { n: number }).n;
  }

  apply(change: ReplicaChange): void {
    const remove = this.db.prepare('DELETE FROM directory_entries WHERE key = ?');
    const put = this.db.prepare(
      `INSERT OR REPLACE INTO directory_entries (key, kind, model_id, publisher_key, entry, source, received_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    this.db.transaction(() => {
      for (const key of change.remove) remove.run(key);
      if (change.put === undefined) return;
      const { entry, source, receivedAt } = change.put;
      const parsed = DirectoryEntrySchema.parse(entry); // known fields only, whoever the caller is
      put.run(entryKey(parsed), parsed.kind, parsed.modelId, parsed.kind === 'serving' ? null : parsed.publisherKey, JSON.stringify(parsed), source, receivedAt);
    })();
  }

  close(): void {
    if (this.ownsDb && this.db.open) this.db.close();
  }
}

function fromRow(row: Row): StoredEntry {
  let value: unknown;
  try {
    value = JSON.parse(row.entry);
  } catch {
    value = undefined;
  }
  const parsed = DirectoryEntrySchema.safeParse(value);
  if (!parsed.success) throw new ReplicaError(`corrupt directory entry '${row.key}'`, 'restore the database from a backup, or delete the entry: peers will send it again');
  return { entry: parsed.data, source: row.source, receivedAt: row.received_at };
}
