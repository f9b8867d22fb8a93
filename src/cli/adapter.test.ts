// `sharedllm adapter train` and `sharedllm generate --adapter` as a user runs them (real processes): an
// adapter trained on a text changes the greedy continuation; too short text and an adapter for another base
// get one clear error line.
import assert from 'node:assert/strict';
import { copyFileSync, appendFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runCli } from './run-cli.testing.ts';

const dir = mkdtempSync(join(tmpdir(), 'sharedllm-cli-adapter-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const MODEL = 'models/sharedllm-tiny.gguf';

const cli = runCli;

const lastLine = (s: string) => s.trim().split('\n').at(-1) ?? '';
const GEN = ['--model', MODEL, '--prompt', 'It is a truth universally acknowledged', '--temp', '0', '-n', '16', '--threads', '1'];

test('train a norm adapter, then generate with it: the text changes', async () => {
  const out = join(dir, 'me.gguf');
  const r = await cli('adapter', 'train', '--model', MODEL, '--text', 'test/fixtures/prose/prideprejudice-03.txt', '--out', out, '--steps', '8', '--threads', '1');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /wrote .*me\.gguf: norm adapter 'me', 13\.0 KB/);
  assert.ok(existsSync(out));
  const base = await cli('generate', ...GEN);
  const adapted = await cli('generate', ...GEN, '--adapter', out);
  assert.equal(adapted.code, 0, adapted.stderr);
  assert.notEqual(adapted.stdout, base.stdout);

  // The same adapter on another base (one byte appended: another content hash) is refused, naming both.
  const other = join(dir, 'other.gguf');
  copyFileSync(MODEL, other);
  appendFileSync(other, Buffer.alloc(32));
  const refused = await cli('generate', ...GEN.map((a) => (a === MODEL ? other : a)), '--adapter', out);
  assert.equal(refused.code, 1);
  assert.match(lastLine(refused.stderr), /^sharedllm generate: adapter 'me' was trained for another base model.*sha256:[0-9a-f]{64}.*sha256:[0-9a-f]{64}/);
});

test('too short or empty text: one clear line, no file written', async () => {
  const short = join(dir, 'short.txt');
  writeFileSync(short, 'Just a few words.');
  const out = join(dir, 'none.gguf');
  const r = await cli('adapter', 'train', '--model', MODEL, '--text', short, '--out', out, '--threads', '1');
  assert.equal(r.code, 1);
  assert.match(lastLine(r.stderr), /^sharedllm adapter: text too short to train an adapter/);
  assert.ok(!existsSync(out));
  const usage = await cli('adapter', 'train', '--model', MODEL, '--text', short, '--out', out, '--rank', '4');
  assert.equal(usage.code, 2);
  assert.match(lastLine(usage.stderr), /--rank applies to --kind lora only/);
});
