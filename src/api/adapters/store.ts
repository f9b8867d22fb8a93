/**
 * The primary's personal-data store in SQLite (better-sqlite3): one file, `<data-dir>/primary.db`, mode
 * 0600, WAL, migrations as in the coordinator's store (src/federation/coordinator/sqlite-store.ts). It holds
 *
 *   users      name, SHA-256 of their API key, creation time
 *   adapters   one row per adapter or training job: state and progress, and its CONSENT RECORD (purpose,
 *              whether the text may be kept, SHA-256 of the text, when): the row, and with it the consent
 *              record, lives exactly as long as the adapter
 *   audit      per user: what happened to their data and each request served with their adapter (time and
 *              token counts, never text)
 *   deletions  the fact that a user or an adapter was deleted (id, time): never its content
 *
 * Never in it: training text, prompts, outputs, adapter weights (files.ts holds the text until training
 * ends and the adapter files). `secure_delete` zeroes deleted rows, and a deletion ends with a WAL
 * checkpoint that truncates the log, so that a deleted consent record or audit trail does not linger in
 * free pages or in the WAL.
 *
 * `sharedllm users` (the CLI) and a running primary open the same file: WAL and a busy timeout let them.
 */
import Database from 'better-sqlite3';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { UserDirectory } from '../users.ts';

/** The database's file name inside the node's data dir. */
export const PRIMARY_DB_FILE = 'primary.db';

export class StoreError extends Error {
  constructor(message: string, readonly hint: string) {
    super(`${message}; ${hint}`);
    this.name = 'StoreError';
  }
}

const MIGRATIONS: readonly { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: 'users, adapters with consent, audit, deletions',
    sql: `
      CREATE TABLE users (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL UNIQUE,
        key_hash   BLOB NOT NULL UNIQUE, -- SHA-256 of the key (users.ts)
        created_at INTEGER NOT NULL
      );
      CREATE TABLE adapters (
        id                  TEXT PRIMARY KEY,
        user_id             TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name                TEXT NOT NULL,
        kind                TEXT NOT NULL,  -- norm | lora
        rank                INTEGER,        -- lora only
        steps               INTEGER NOT NULL,
        seed                INTEGER NOT NULL,
        base_hash           TEXT NOT NULL,  -- the base model it is trained on
        state               TEXT NOT NULL,  -- queued | training | ready | failed
        step                INTEGER NOT NULL DEFAULT 0,
        loss                REAL,
        error               TEXT,
        text_tokens         INTEGER NOT NULL,
        created_at          INTEGER NOT NULL,
        started_at          INTEGER,
        finished_at         INTEGER,
        consent_purpose     TEXT NOT NULL,
        consent_keep_text   INTEGER NOT NULL,
        consent_text_sha256 TEXT NOT NULL,
        consent_given_at    INTEGER NOT NULL,
        UNIQUE (user_id, name)
      );
      CREATE TABLE audit (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id    TEXT NOT NULL,
        at         INTEGER NOT NULL,
        event      TEXT NOT NULL,
        adapter_id TEXT,
        detail     TEXT NOT NULL -- JSON: counts, names, formats; never prompts, outputs or training text
      );
      CREATE INDEX audit_by_user ON audit (user_id, seq);
      CREATE TABLE deletions (
        seq     INTEGER PRIMARY KEY AUTOINCREMENT,
        at      INTEGER NOT NULL,
        what    TEXT NOT NULL, -- user | adapter
        subject TEXT NOT NULL  -- its id
      );
    `,
  },
];

export const ADAPTER_KINDS = ['norm', 'lora'] as const;
export type AdapterKind = (typeof ADAPTER_KINDS)[number];
export const JOB_STATES = ['queued', 'training', 'ready', 'failed'] as const;
export type JobState = (typeof JOB_STATES)[number];

export interface UserRecord {
  id: string;
  name: string;
  createdAt: number;
}

export interface ConsentRecord {
  purpose: string;
  keepText: boolean;
  /** SHA-256 (hex) of the training text the user consented to. */
  textSha256: string;
  givenAt: number;
}

export interface AdapterRecord {
  id: string;
  userId: string;
  name: string;
  kind: AdapterKind;
  rank: number | null;
  steps: number;
  seed: number;
  baseHash: string;
  state: JobState;
  step: number;
  loss: number | null;
  error: string | null;
  textTokens: number;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  consent: ConsentRecord;
}

export type NewAdapter = Omit<AdapterRecord, 'id' | 'state' | 'step' | 'loss' | 'error' | 'startedAt' | 'finishedAt' | 'createdAt'>;

export const AUDIT_EVENTS = ['consent_given', 'training_started', 'training_finished', 'training_failed', 'adapter_used', 'adapter_exported', 'adapter_deleted'] as const;
export type AuditEventName = (typeof AUDIT_EVENTS)[number];
/** What an audit event may carry: numbers, names, formats. Never a prompt, an output or training text. */
export type AuditDetail = Readonly<Record<string, string | number | boolean | null>>;

export interface AuditEvent {
  seq: number;
  at: number;
  event: AuditEventName;
  adapterId: string | null;
  detail: AuditDetail;
}

interface AdapterRow {
  id: string;
  user_id: string;
  name: string;
  kind: string;
  rank: number | null;
  steps: number;
  seed: number;
  base_hash: string;
  state: string;
  step: number;
  loss: number | null;
  error: string | null;
  text_tokens: number;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  consent_purpose: string;
  consent_keep_text: number;
  consent_text_sha256: string;
  consent_given_at: number;
}

export class PrimaryStore implements UserDirectory {
  private readonly db: Database.Database;
  readonly path: string;

  /** Opens (creating when missing) `<dataDir>/primary.db`, then applies pending migrations. */
  constructor(dataDir: string) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    this.path = join(dataDir, PRIMARY_DB_FILE);
    const fresh = !existsSync(this.path);
    this.db = new Database(this.path);
    try {
      if (fresh) chmodSync(this.path, 0o600);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('busy_timeout = 5000');
      this.db.pragma('foreign_keys = ON');
      this.db.pragma('secure_delete = ON');
      this.migrate();
    } catch (error) {
      this.db.close();
      throw error;
    }
  }

  private migrate(): void {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    const current = (this.db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null }).v ?? 0;
    const latest = MIGRATIONS.at(-1)?.version ?? 0;
    if (current > latest) {
      throw new StoreError(`${this.path} has schema version ${current}, this SharedLLM knows up to ${latest}`, 'upgrade SharedLLM, or point --data-dir at another directory');
    }
    const record = this.db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue;
      this.db.transaction(() => {
        this.db.exec(m.sql);
        record.run(m.version, m.name, Date.now());
      })();
    }
  }

  // ---- users ----

  addUser(name: string, keyHash: Buffer): UserRecord {
    const user = { id: `user_${randomBytes(8).toString('hex')}`, name, createdAt: Date.now() };
    try {
      this.db.prepare('INSERT INTO users (id, name, key_hash, created_at) VALUES (?, ?, ?, ?)').run(user.id, name, keyHash, user.createdAt);
    } catch (error) {
      if (String(error).includes('UNIQUE')) throw new StoreError(`a user named '${name}' exists already`, 'pick another name, or remove that user first');
      throw error;
    }
    return user;
  }

  listUsers(): UserRecord[] {
    const rows = this.db.prepare('SELECT id, name, created_at FROM users ORDER BY name').all() as { id: string; name: string; created_at: number }[];
    return rows.map((r) => ({ id: r.id, name: r.name, createdAt: r.created_at }));
  }

  userByName(name: string): UserRecord | undefined {
    const r = this.db.prepare('SELECT id, name, created_at FROM users WHERE name = ?').get(name) as { id: string; name: string; created_at: number } | undefined;
    return r === undefined ? undefined : { id: r.id, name: r.name, createdAt: r.created_at };
  }

  userByKeyHash(keyHash: Buffer): { userId: string; name: string; keyHash: Buffer } | undefined {
    const r = this.db.prepare('SELECT id, name, key_hash FROM users WHERE key_hash = ?').get(keyHash) as { id: string; name: string; key_hash: Buffer } | undefined;
    return r === undefined ? undefined : { userId: r.id, name: r.name, keyHash: r.key_hash };
  }

  /**
   * Removes the user's row, their adapters' rows (and consent records) and their audit trail, and records
   * the deletion. Their files are files.ts's to delete (first: see deletion.ts).
   */
  deleteUser(userId: string): boolean {
    const removed = this.db.transaction(() => {
      this.db.prepare('DELETE FROM audit WHERE user_id = ?').run(userId);
      this.db.prepare('DELETE FROM adapters WHERE user_id = ?').run(userId);
      const gone = this.db.prepare('DELETE FROM users WHERE id = ?').run(userId).changes > 0;
      if (gone) this.db.prepare('INSERT INTO deletions (at, what, subject) VALUES (?, ?, ?)').run(Date.now(), 'user', userId);
      return gone;
    })();
    this.compact();
    return removed;
  }

  // ---- adapters ----

  addAdapter(a: NewAdapter): AdapterRecord {
    const record: AdapterRecord = { ...a, id: `adapter_${randomBytes(12).toString('hex')}`, state: 'queued', step: 0, loss: null, error: null, createdAt: Date.now(), startedAt: null, finishedAt: null };
    try {
      this.db
        .prepare(
          `INSERT INTO adapters (id, user_id, name, kind, rank, steps, seed, base_hash, state, text_tokens, created_at,
             consent_purpose, consent_keep_text, consent_text_sha256, consent_given_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(record.id, a.userId, a.name, a.kind, a.rank, a.steps, a.seed, a.baseHash, record.state, a.textTokens, record.createdAt,
          a.consent.purpose, a.consent.keepText ? 1 : 0, a.consent.textSha256, a.consent.givenAt);
    } catch (error) {
      if (String(error).includes('UNIQUE')) throw new StoreError(`you have an adapter named '${a.name}' already`, 'pick another name, or delete that adapter first');
      throw error;
    }
    return record;
  }

  adapter(id: string): AdapterRecord | undefined {
    const row = this.db.prepare('SELECT * FROM adapters WHERE id = ?').get(id) as AdapterRow | undefined;
    return row === undefined ? undefined : adapterFromRow(row);
  }

  adapterByName(userId: string, name: string): AdapterRecord | undefined {
    const row = this.db.prepare('SELECT * FROM adapters WHERE user_id = ? AND name = ?').get(userId, name) as AdapterRow | undefined;
    return row === undefined ? undefined : adapterFromRow(row);
  }

  adaptersOf(userId: string): AdapterRecord[] {
    return (this.db.prepare('SELECT * FROM adapters WHERE user_id = ? ORDER BY created_at, id').all(userId) as AdapterRow[]).map(adapterFromRow);
  }

  /** Jobs a restart interrupted or that never started, oldest first. */
  unfinished(): AdapterRecord[] {
    return (this.db.prepare("SELECT * FROM adapters WHERE state IN ('queued', 'training') ORDER BY created_at, id").all() as AdapterRow[]).map(adapterFromRow);
  }

  updateAdapter(id: string, change: Partial<Pick<AdapterRecord, 'state' | 'step' | 'loss' | 'error' | 'startedAt' | 'finishedAt'>>): void {
    const columns: Record<string, string> = { state: 'state', step: 'step', loss: 'loss', error: 'error', startedAt: 'started_at', finishedAt: 'finished_at' };
    const sets = Object.keys(change).filter((k) => k in columns);
    if (sets.length === 0) return;
    const sql = `UPDATE adapters SET ${sets.map((k) => `${columns[k]} = @${k}`).join(', ')} WHERE id = @id`;
    this.db.prepare(sql).run({ ...change, id });
  }

  /** Removes the adapter's row (its consent record with it) and records the deletion. */
  deleteAdapter(id: string): boolean {
    const removed = this.db.transaction(() => {
      const gone = this.db.prepare('DELETE FROM adapters WHERE id = ?').run(id).changes > 0;
      if (gone) this.db.prepare('INSERT INTO deletions (at, what, subject) VALUES (?, ?, ?)').run(Date.now(), 'adapter', id);
      return gone;
    })();
    this.compact();
    return removed;
  }

  // ---- audit ----

  /** Adds an event to the user's log; nothing when the user is gone (a late event must not outlive them). */
  audit(userId: string, event: AuditEventName, adapterId: string | null, detail: AuditDetail = {}): void {
    this.db
      .prepare('INSERT INTO audit (user_id, at, event, adapter_id, detail) SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM users WHERE id = ?)')
      .run(userId, Date.now(), event, adapterId, JSON.stringify(detail), userId);
  }

  /** The user's events, oldest first, after `afterSeq` (paging), at most `limit`. */
  auditOf(userId: string, afterSeq: number, limit: number): AuditEvent[] {
    const rows = this.db.prepare('SELECT seq, at, event, adapter_id, detail FROM audit WHERE user_id = ? AND seq > ? ORDER BY seq LIMIT ?').all(userId, afterSeq, limit) as {
      seq: number;
      at: number;
      event: AuditEventName;
      adapter_id: string | null;
      detail: string;
    }[];
    return rows.map((r) => ({ seq: r.seq, at: r.at, event: r.event, adapterId: r.adapter_id, detail: JSON.parse(r.detail) as AuditDetail }));
  }

  /** Deletions recorded (the fact only), oldest first. */
  deletions(): { at: number; what: string; subject: string }[] {
    return this.db.prepare('SELECT at, what, subject FROM deletions ORDER BY seq').all() as { at: number; what: string; subject: string }[];
  }

  /** After a deletion: the WAL written back and truncated, so deleted rows live in neither file. */
  private compact(): void {
    this.db.pragma('wal_checkpoint(TRUNCATE)');
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function adapterFromRow(r: AdapterRow): AdapterRecord {
  const kind = ADAPTER_KINDS.find((k) => k === r.kind);
  const state = JOB_STATES.find((st) => st === r.state);
  if (kind === undefined || state === undefined) {
    throw new StoreError(`corrupt adapter row ${r.id} (kind '${r.kind}', state '${r.state}')`, 'restore primary.db from a backup, or delete the adapter with `sharedllm users remove`');
  }
  return {
    id: r.id,
    userId: r.user_id,
    name: r.name,
    kind,
    rank: r.rank,
    steps: r.steps,
    seed: r.seed,
    baseHash: r.base_hash,
    state,
    step: r.step,
    loss: r.loss,
    error: r.error,
    textTokens: r.text_tokens,
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    consent: { purpose: r.consent_purpose, keepText: r.consent_keep_text === 1, textSha256: r.consent_text_sha256, givenAt: r.consent_given_at },
  };
}
