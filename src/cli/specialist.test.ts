// `sharedllm specialist` as a user meets it: real processes against a coordinator in this process.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { localTestConfig } from '../federation/config.ts';
import { startCoordinator } from '../federation/coordinator/coordinator.ts';
import type { RunningCoordinator } from '../federation/coordinator/coordinator.ts';
import { tempDir } from '../federation/coordinator/testing.ts';
import { ManifestSchema, SpecialistListSchema } from '../federation/protocol-directory.ts';
import { silentLogger } from '../util/log.ts';
import { cachedModel } from '../model/testing/cached-model.ts';

const bin = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../../bin/sharedllm.js');
/** Async, so the coordinator in this process keeps answering while the CLI runs. */
function cli(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, 'specialist', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

let coordinator: RunningCoordinator;
let dir: ReturnType<typeof tempDir>;
let model: string;
let other: string;

before(async () => {
  dir = tempDir();
  model = cachedModel({ shape: 'smollm2', nLayer: 2, type: 'Q8_0', seed: 5 });
  other = cachedModel({ shape: 'smollm2', nLayer: 2, type: 'Q8_0', seed: 6 });
  coordinator = await startCoordinator({ host: '127.0.0.1', port: 0, dataDir: join(dir.path, 'coordinator'), config: localTestConfig(), logger: silentLogger });
});

after(async () => {
  await coordinator.close();
  dir.cleanup();
});

test('manifest -> publish -> list -> revoke, with a publisher key made on first use (0600)', async () => {
  const data = join(dir.path, 'publisher');
  const out = join(dir.path, 'code.json');
  const made = await cli('manifest', '--model', model, '--id', 'tiny-code', '--domain', 'code,go', '--description', 'Go source', '--data-dir', data, '--out', out);
  assert.equal(made.code, 0, made.err);
  assert.match(made.err, /created publisher key/);
  assert.equal(statSync(join(data, 'publisher.key')).mode & 0o777, 0o600);
  const manifest = ManifestSchema.parse(JSON.parse(readFileSync(out, 'utf8')));
  assert.deepEqual([manifest.modelId, manifest.version, manifest.architecture, manifest.nLayers, manifest.quant, manifest.domains], ['tiny-code', 1, 'llama', 2, 'q8_0', ['code', 'go']]);
  assert.equal(manifest.fileBytes, statSync(model).size);

  // Another file of the same vocabulary: another content hash, the same tokenizer hash.
  const otherOut = join(dir.path, 'other.json');
  assert.equal((await cli('manifest', '--model', other, '--id', 'tiny-other', '--domain', 'es', '--data-dir', data, '--out', otherOut)).code, 0);
  const second = ManifestSchema.parse(JSON.parse(readFileSync(otherOut, 'utf8')));
  assert.notEqual(second.contentHash, manifest.contentHash);
  assert.equal(second.tokenizerHash, manifest.tokenizerHash);

  const url = coordinator.url;
  const published = await cli('publish', '--manifest', out, '--coordinator-url', url, '--model', model);
  assert.equal(published.code, 0, published.err);
  assert.match(published.out, /published tiny-code v1/);

  const table = await cli('list', '--coordinator-url', url);
  assert.equal(table.code, 0, table.err);
  assert.match(table.out, /^MODEL ID\s+VERSION\s+STATUS/);
  assert.match(table.out, /tiny-code\s+1\s+active\s+code,go\s+q8_0\s+2\s+0\s+local\s+Go source/);
  const listed = SpecialistListSchema.parse(JSON.parse((await cli('list', '--coordinator-url', url, '--json')).out));
  assert.equal(listed.specialists[0]!.manifest!.contentHash, manifest.contentHash);

  const revoked = await cli('revoke', '--id', 'tiny-code', '--coordinator-url', url, '--data-dir', data, '--reason', 'superseded');
  assert.equal(revoked.code, 0, revoked.err);
  assert.match(revoked.out, /revoked tiny-code at version 1/);
  assert.match((await cli('list', '--coordinator-url', url)).out, /tiny-code\s+1\s+revoked/);
});

test('bad input: one clear line, a non-zero exit, nothing stored', async () => {
  const data = join(dir.path, 'bad-publisher');
  const good = join(dir.path, 'bad-good.json');
  assert.equal((await cli('manifest', '--model', model, '--id', 'tiny-bad', '--domain', 'code', '--data-dir', data, '--out', good)).code, 0);
  const manifest = JSON.parse(readFileSync(good, 'utf8')) as Record<string, unknown>;
  const write = (name: string, text: string) => {
    const path = join(dir.path, name);
    writeFileSync(path, text);
    return path;
  };
  let nested = '0';
  for (let i = 0; i < 3_000; i++) nested = `[${nested}]`;
  const url = coordinator.url;
  const cases: [string[], RegExp][] = [
    [['publish', '--manifest', good, '--coordinator-url', url, '--model', other], /names sha256:[0-9a-f]+, but .* hashes to sha256:[0-9a-f]+/],
    [['publish', '--manifest', write('tampered.json', JSON.stringify({ ...manifest, nLayers: 40 })), '--coordinator-url', url], /not signed by its publisherKey/],
    [['publish', '--manifest', write('huge.json', JSON.stringify({ ...manifest, junk: 'x'.repeat(100_000) })), '--coordinator-url', url], /at most 16384 bytes/],
    [['publish', '--manifest', write('nested.json', `{"kind":"manifest","x":${nested}}`), '--coordinator-url', url], /not a directory entry/],
    [['publish', '--manifest', write('text.json', 'not json'), '--coordinator-url', url], /is not JSON/],
    [['manifest', '--model', model, '--id', 'bad id!', '--domain', 'code', '--out', join(dir.path, 'x.json'), '--data-dir', data], /--id is not valid/],
    [['revoke', '--id', 'nobody', '--coordinator-url', url, '--data-dir', data], /refused \(not_found\)/],
    [['frobnicate'], /which action\? one of manifest, publish, list, revoke/],
  ];
  for (const [args, re] of cases) {
    const r = await cli(...args);
    assert.notEqual(r.code, 0, `${args.join(' ')} should fail`);
    const lines = r.err.trim().split('\n');
    assert.equal(lines.length, 1, `one line for ${args[0]}: ${r.err}`);
    assert.match(lines[0]!, re);
  }
  // A replayed older version, once a newer one is held.
  assert.equal((await cli('publish', '--manifest', good, '--coordinator-url', url)).code, 0);
  const v2 = join(dir.path, 'bad-v2.json');
  assert.equal((await cli('manifest', '--model', model, '--id', 'tiny-bad', '--domain', 'code', '--version', '2', '--data-dir', data, '--out', v2)).code, 0);
  assert.match((await cli('publish', '--manifest', v2, '--coordinator-url', url)).out, /published tiny-bad v2 \(replaced v1\)/);
  const replay = await cli('publish', '--manifest', good, '--coordinator-url', url);
  assert.equal(replay.code, 1);
  assert.match(replay.err, /refused \(stale_version\): tiny-bad is held at version 2/);
  const listed = SpecialistListSchema.parse(JSON.parse((await cli('list', '--coordinator-url', url, '--json')).out));
  assert.deepEqual(listed.specialists.filter((view) => view.modelId === 'tiny-bad').map((view) => view.version), [2]);
});
