// `sharedllm users`: add prints a key once and stores only its hash; list; remove deletes the user's data.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { PrimaryStore } from '../api/adapters/store.ts';
import { AdapterFiles } from '../api/adapters/files.ts';

const bin = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../../bin/sharedllm.js');
const users = (...args: string[]) => spawnSync(process.execPath, [bin, 'users', ...args], { encoding: 'utf8', timeout: 60_000 });

test('users add, list and remove on a data dir', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sharedllm-users-'));
  try {
    const added = users('add', 'alice', '--data-dir', dir);
    assert.equal(added.status, 0, added.stderr);
    const key = added.stdout.trim();
    assert.match(key, /^sllm_[A-Za-z0-9_-]{43}$/);
    assert.ok(!readFileSync(join(dir, 'primary.db')).includes(Buffer.from(key)), 'the key itself is not stored');
    assert.equal(users('add', 'alice', '--data-dir', dir).status, 1, 'a name is taken once');
    assert.equal(users('add', '../bob', '--data-dir', dir).status, 2, 'names are checked');
    assert.equal(users('frobnicate', '--data-dir', dir).status, 2);

    // An adapter of alice's, with its files, for remove to delete.
    const store = new PrimaryStore(dir);
    const alice = store.userByName('alice')!;
    const adapter = store.addAdapter({
      userId: alice.id, name: 'a', kind: 'norm', rank: null, steps: 1, seed: 0, baseHash: 'sha256:x', textTokens: 1,
      consent: { purpose: 'purpose-to-be-forgotten', keepText: true, textSha256: 'f'.repeat(64), givenAt: Date.now() },
    });
    new AdapterFiles(dir).writeText(adapter.id, 'text-to-be-forgotten');
    store.close();

    const listed = users('list', '--data-dir', dir, '--json');
    assert.deepEqual((JSON.parse(listed.stdout) as { name: string; adapters: number }[]).map((u) => [u.name, u.adapters]), [['alice', 1]]);
    const removed = users('remove', 'alice', '--data-dir', dir);
    assert.equal(removed.status, 0, removed.stderr);
    assert.ok(!existsSync(join(dir, 'adapters', adapter.id)));
    assert.ok(!readFileSync(join(dir, 'primary.db')).includes(Buffer.from('purpose-to-be-forgotten')), 'the consent record is gone from the database file');
    assert.equal(users('remove', 'alice', '--data-dir', dir).status, 1);
    assert.match(users('list', '--data-dir', dir).stdout, /no users/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
