// `sharedllm node --specialist`: the files are checked before the node does any work (no coordinator is
// contacted: the URL here answers nothing), each refusal naming the flag and what to do.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { cachedModel } from '../model/testing/cached-model.ts';

const bin = join(import.meta.dirname, '../../bin/sharedllm.js');
const dir = mkdtempSync(join(tmpdir(), 'sharedllm-node-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function primary(...extra: string[]) {
  const base = cachedModel({ shape: 'smollm2', nLayer: 2, type: 'Q8_0', seed: 5 });
  const args = ['node', '--role', 'primary', '--model', base, '--coordinator-url', 'http://127.0.0.1:9', '--data-dir', join(dir, 'node'), ...extra];
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, err: r.stderr, base };
}

test('--specialist: a missing file, the base again, a file twice, two files of one name are refused before any work', () => {
  const missing = primary('--specialist', join(dir, 'nope.gguf'));
  assert.equal(missing.code, 2, missing.err);
  assert.match(missing.err, /nope\.gguf \(--specialist\)/);

  const asBase = primary('--specialist', missing.base);
  assert.equal(asBase.code, 2, asBase.err);
  assert.match(asBase.err, /same file as --model/);

  const specialist = cachedModel({ shape: 'smollm2', nLayer: 2, type: 'Q8_0', seed: 6 });
  const twice = primary('--specialist', specialist, '--specialist', specialist);
  assert.equal(twice.code, 2, twice.err);
  assert.match(twice.err, /same file as --specialist/);

  mkdirSync(join(dir, 'other'), { recursive: true });
  const copy = join(dir, 'other', specialist.split('/').pop()!);
  copyFileSync(specialist, copy);
  const sameName = primary('--specialist', specialist, '--specialist', copy);
  assert.equal(sameName.code, 2, sameName.err);
  assert.match(sameName.err, /same file name .* rename one/);
});

test('--mixture-listen on every interface needs --mixture-advertise; --mixture-advertise needs --mixture-listen', () => {
  const wildcard = primary('--mixture-listen', '0.0.0.0:7800');
  assert.equal(wildcard.code, 2, wildcard.err);
  assert.match(wildcard.err, /--mixture-listen 0\.0\.0\.0:7800 .* add --mixture-advertise/);
  const alone = primary('--mixture-advertise', '10.0.0.2:7800');
  assert.equal(alone.code, 2, alone.err);
  assert.match(alone.err, /--mixture-advertise needs --mixture-listen/);
  const bad = primary('--mixture-listen', '127.0.0.1:7800', '--mixture-advertise', 'nowhere');
  assert.equal(bad.code, 2, bad.err);
  assert.match(bad.err, /--mixture-advertise nowhere/);
});
