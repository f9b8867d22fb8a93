import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { MemoryStore } from './memory-store.ts';
import { SQLITE_FILE, SqliteStore } from './sqlite-store.ts';
import { StoreError } from './store.ts';
import { storeConformance } from './store.conformance.ts';
import { makeManifest, makeNodeRecord, tempDir } from './testing.ts';

storeConformance('MemoryStore', () => ({ store: new MemoryStore(), cleanup: () => {} }));

storeConformance('SqliteStore', () => {
  const dir = tempDir();
  return { store: new SqliteStore(join(dir.path, SQLITE_FILE)), cleanup: dir.cleanup };
});

test('SqliteStore: data survives reopening, in WAL mode, at the latest schema version', () => {
  const dir = tempDir();
  try {
    const path = join(dir.path, 'nested', SQLITE_FILE);
    const record = makeNodeRecord({ nodeId: 'node-a' });
    const manifest = makeManifest();
    const first = new SqliteStore(path);
    first.putNode(record);
    first.directory.apply({ put: { entry: manifest, source: 'local', receivedAt: 5 }, remove: [] });
    first.putIdentity({ coordinatorId: 'c1', publicKey: 'B'.repeat(43) + '=', createdAt: 1 });
    assert.equal(first.schemaVersion(), 2);
    first.close();

    const second = new SqliteStore(path);
    assert.deepEqual(second.getNode('node-a'), record);
    assert.deepEqual(second.directory.get(manifest.modelId), { entry: manifest, source: 'local', receivedAt: 5 });
    assert.equal(second.getIdentity()!.coordinatorId, 'c1');
    assert.equal(second.schemaVersion(), 2);
    second.close();

    const raw = new Database(path, { readonly: true });
    assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
    assert.deepEqual(raw.prepare('SELECT version FROM schema_migrations ORDER BY version').all(), [{ version: 1 }, { version: 2 }]);
    raw.close();
  } finally {
    dir.cleanup();
  }
});

test('SqliteStore: refuses a database from a newer schema, with a hint', () => {
  const dir = tempDir();
  try {
    const path = join(dir.path, SQLITE_FILE);
    new SqliteStore(path).close();
    const raw = new Database(path);
    raw.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, ?, 0)').run('from the future');
    raw.close();
    assert.throws(() => new SqliteStore(path), (error: unknown) => {
      assert.ok(error instanceof StoreError);
      assert.match(error.message, /schema version 99/);
      assert.match(error.hint, /upgrade/);
      return true;
    });
  } finally {
    dir.cleanup();
  }
});

test('SqliteStore: migration 2 drops version-2 placeholder manifests and adds the directory table', () => {
  const dir = tempDir();
  try {
    const path = join(dir.path, SQLITE_FILE);
    const raw = new Database(path);
    raw.exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL);
      CREATE TABLE nodes (node_id TEXT PRIMARY KEY, incarnation INTEGER NOT NULL, state TEXT NOT NULL, role TEXT NOT NULL, last_seen INTEGER NOT NULL,
        state_changed_at INTEGER NOT NULL, registered_at INTEGER NOT NULL, free_memory_bytes INTEGER NOT NULL, load REAL NOT NULL, registration TEXT NOT NULL);
      CREATE TABLE identity (id INTEGER PRIMARY KEY CHECK (id = 1), coordinator_id TEXT NOT NULL, public_key TEXT NOT NULL, created_at INTEGER NOT NULL);
      CREATE TABLE manifests (content_hash TEXT PRIMARY KEY, model_id TEXT NOT NULL, publisher_key TEXT NOT NULL, manifest TEXT NOT NULL, stored_at INTEGER NOT NULL);
      INSERT INTO schema_migrations VALUES (1, 'nodes, identity, manifests', 0);
      INSERT INTO manifests VALUES ('sha256:00', 'old', 'k', '{}', 0);`);
    raw.close();
    const store = new SqliteStore(path);
    assert.equal(store.schemaVersion(), 2);
    assert.deepEqual(store.directory.list(), []);
    store.close();
  } finally {
    dir.cleanup();
  }
});
