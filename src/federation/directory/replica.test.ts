import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../coordinator/testing.ts';
import { MemoryReplica } from './memory-replica.ts';
import { replicaConformance } from './replica.conformance.ts';
import { DIRECTORY_DB_FILE, SqliteReplica } from './sqlite-replica.ts';
import { makeManifest } from './testing.ts';

replicaConformance('MemoryReplica', () => ({ replica: new MemoryReplica(), cleanup: () => {} }));

replicaConformance('SqliteReplica', () => {
  const dir = tempDir();
  return { replica: SqliteReplica.open(join(dir.path, DIRECTORY_DB_FILE)), cleanup: dir.cleanup };
});

test('SqliteReplica: entries survive reopening', () => {
  const dir = tempDir();
  try {
    const path = join(dir.path, 'nested', DIRECTORY_DB_FILE);
    const manifest = makeManifest();
    const first = SqliteReplica.open(path);
    first.apply({ put: { entry: manifest, source: 'peer-7', receivedAt: 9 }, remove: [] });
    first.close();
    const second = SqliteReplica.open(path);
    assert.deepEqual(second.list(), [{ entry: manifest, source: 'peer-7', receivedAt: 9 }]);
    second.close();
  } finally {
    dir.cleanup();
  }
});
