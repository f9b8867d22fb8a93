/**
 * CoordinatorStore in SQLite (better-sqlite3): one file in the coordinator's data directory, WAL mode,
 * schema versioned by a `schema_migrations` table. Migrations run in order, each in a transaction, on
 * open; a database written by a newer SharedLLM (a version this code does not know) is refused.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { NodeRegistrationSchema, NodeRoleSchema, NodeStateSchema } from '../protocol.ts';
import { DIRECTORY_TABLE_SQL, SqliteReplica } from '../directory/sqlite-replica.ts';
import type { CoordinatorStore, NodeRecord, StoredIdentity } from './store.ts';
import { StoreError, storedRegistration } from './store.ts';

/** File name of the database inside the coordinator's data directory. */
export const SQLITE_FILE = 'coordinator.db';

interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Append only: never edit a migration that has shipped; add the next version instead. */
const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'nodes, identity, manifests',
    sql: `
      CREATE TABLE nodes (
        node_id           TEXT PRIMARY KEY,
        incarnation       INTEGER NOT NULL,
        state             TEXT NOT NULL,
        role              TEXT NOT NULL,
        last_seen         INTEGER NOT NULL,
        state_changed_at  INTEGER NOT NULL,
        registered_at     INTEGER NOT NULL,
        free_memory_bytes INTEGER NOT NULL,
        load              REAL NOT NULL,
        registration      TEXT NOT NULL -- JSON body as received
      );
      CREATE TABLE identity (
        id             INTEGER PRIMARY KEY CHECK (id = 1), -- a single row
        coordinator_id TEXT NOT NULL,
        public_key     TEXT NOT NULL,
        created_at     INTEGER NOT NULL
      );
      CREATE TABLE manifests (
        content_hash  TEXT PRIMARY KEY,
        model_id      TEXT NOT NULL,
        publisher_key TEXT NOT NULL,
        manifest      TEXT NOT NULL, -- JSON as received
        stored_at     INTEGER NOT NULL
      );
    `,
  },
  {
    // Protocol 3 replaced the placeholder manifests (keyed by content hash, unversioned): they do not verify
    // under the new schema, so they are dropped; publishers publish again (RFC-0006).
    version: 2,
    name: 'RFC-0006 directory entries replace placeholder manifests',
    sql: `DROP TABLE manifests; ${DIRECTORY_TABLE_SQL}`,
  },
];

interface NodeRow {
  node_id: string;
  incarnation: number;
  state: string;
  role: string;
  last_seen: number;
  state_changed_at: number;
  registered_at: number;
  free_memory_bytes: number;
  load: number;
  registration: string;
}

export class SqliteStore implements CoordinatorStore {
  private readonly db: Database.Database;
  readonly directory: SqliteReplica;

  /** Opens (creating when missing) the database at `path`, then applies pending migrations. */
  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.db = new Database(path);
    try {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL'); // durable across process crashes; WAL's usual pairing
      this.db.pragma('busy_timeout = 5000');
      this.migrate();
      this.directory = new SqliteReplica(this.db);
    } catch (error) {
      this.db.close();
      throw error;
    }
  }

  /** The schema version after migrations (the highest applied). */
  schemaVersion(): number {
    const row = this.db.prepare('SELECT MAX(version) AS version FROM schema_migrations').get() as { version: number | null };
    return row.version ?? 0;
  }

  private migrate(): void {
    this.db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    INTEGER PRIMARY KEY,
      name       TEXT NOT NULL,
      applied_at INTEGER NOT NULL
    )`);
    const current = this.schemaVersion();
    const latest = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;
    if (current > latest) {
      throw new StoreError(
        `database ${this.path} has schema version ${current}, this SharedLLM knows up to ${latest}`,
        'upgrade SharedLLM, or point --data-dir at a fresh directory',
      );
    }
    const record = this.db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
    for (const migration of MIGRATIONS) {
      if (migration.version <= current) continue;
      this.db.transaction(() => {
        this.db.exec(migration.sql);
        record.run(migration.version, migration.name, Date.now());
      })();
    }
  }

  getNode(nodeId: string): NodeRecord | undefined {
    const row = this.db.prepare('SELECT * FROM nodes WHERE node_id = ?').get(nodeId) as NodeRow | undefined;
    return row === undefined ? undefined : this.nodeFromRow(row);
  }

  listNodes(): NodeRecord[] {
    const rows = this.db.prepare('SELECT * FROM nodes ORDER BY node_id').all() as NodeRow[];
    return rows.map((row) => this.nodeFromRow(row));
  }

  putNode(record: NodeRecord): void {
    this.db
      .prepare(
        `INSERT OR REPLACE INTO nodes (node_id, incarnation, state, role, last_seen, state_changed_at,
           registered_at, free_memory_bytes, load, registration)
         VALUES (@nodeId, @incarnation, @state, @role, @lastSeen, @stateChangedAt, @registeredAt,
           @freeMemoryBytes, @load, @registration)`,
      )
      .run({ ...record, registration: JSON.stringify(storedRegistration(record.registration)) });
  }

  deleteNode(nodeId: string): boolean {
    return this.db.prepare('DELETE FROM nodes WHERE node_id = ?').run(nodeId).changes > 0;
  }

  getIdentity(): StoredIdentity | undefined {
    const row = this.db.prepare('SELECT coordinator_id, public_key, created_at FROM identity WHERE id = 1').get() as
      | { coordinator_id: string; public_key: string; created_at: number }
      | undefined;
    if (row === undefined) return undefined;
    return { coordinatorId: row.coordinator_id, publicKey: row.public_key, createdAt: row.created_at };
  }

  putIdentity(identity: StoredIdentity): void {
    this.db
      .prepare('INSERT OR REPLACE INTO identity (id, coordinator_id, public_key, created_at) VALUES (1, ?, ?, ?)')
      .run(identity.coordinatorId, identity.publicKey, identity.createdAt);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private nodeFromRow(row: NodeRow): NodeRecord {
    return {
      nodeId: row.node_id,
      incarnation: row.incarnation,
      state: NodeStateSchema.parse(row.state),
      role: NodeRoleSchema.parse(row.role),
      lastSeen: row.last_seen,
      stateChangedAt: row.state_changed_at,
      registeredAt: row.registered_at,
      freeMemoryBytes: row.free_memory_bytes,
      load: row.load,
      // Parsing strips fields this version does not know (rows written before stores kept only known fields).
      registration: this.parseJson(NodeRegistrationSchema, row.registration, `node ${row.node_id}`),
    };
  }

  private parseJson<T>(schema: { safeParse(value: unknown): { success: true; data: T } | { success: false } }, text: string, what: string): T {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = undefined;
    }
    const result = schema.safeParse(value);
    if (!result.success) {
      throw new StoreError(`corrupt ${what} row in ${this.path}`, 'restore the database from a backup or delete it to start empty');
    }
    return result.data;
  }
}
