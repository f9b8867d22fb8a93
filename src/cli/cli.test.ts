// The `sharedllm` command as a user meets it: real processes, stdout and stderr, exit codes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { str, u32 } from '../gguf/value.ts';
import { writeGguf } from '../gguf/writer.ts';
import { cachedModel } from '../model/testing/cached-model.ts';

const bin = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../../bin/sharedllm.js');
function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

let model: string;
// Files this test writes live here, removed at the end: nothing is left in the system temp folder.
const dir = mkdtempSync(join(tmpdir(), 'sharedllm-cli-'));
before(() => {
  model = cachedModel({ shape: 'smollm2', nLayer: 2, type: 'Q8_0', seed: 5 });
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('--help lists the commands; each command documents its flags with defaults', () => {
  const top = cli('--help');
  assert.equal(top.code, 0);
  for (const c of ['demo', 'generate', 'chat', 'tokenize', 'inspect', 'coordinator', 'node', 'certs']) assert.match(top.out, new RegExp(`\\b${c}\\b`));
  const gen = cli('generate', '--help');
  assert.equal(gen.code, 0);
  assert.match(gen.out, /--n-predict N.*default: 128/);
  assert.match(gen.out, /--temp N.*default: 0\.8/);
  const node = cli('node', '--help');
  assert.match(node.out, /--rpc-port N.*default: 50052/);
  assert.match(node.out, /--api-host S.*default: 127\.0\.0\.1/);
  assert.equal(cli('help', 'node').out, node.out, '`sharedllm help node` is `sharedllm node --help`');
});

test('generate: -n -1 runs until the model stops or the context is full; --chat-template formats the prompt as a chat', () => {
  // --seed -1 is a random seed, as in llama.cpp.
  const all = cli('generate', '--model', model, '--prompt', 'Hello', '-n', '-1', '--ctx-size', '24', '--seed', '-1', '--threads', '1');
  assert.equal(all.code, 0, all.err);
  const chat = cli('generate', '--model', model, '--prompt', 'Hello', '-n', '4', '--seed', '1', '--threads', '1', '--chat-template', 'llama3');
  assert.equal(chat.code, 0, chat.err);
  const raw = cli('generate', '--model', model, '--prompt', 'Hello', '-n', '4', '--seed', '1', '--threads', '1');
  assert.notEqual(chat.out, raw.out, 'the template changed the prompt');
});

test('generate streams only the continuation to stdout, and the same seed gives the same text', () => {
  const a = cli('generate', '--model', model, '--prompt', 'Hello world', '-n', '8', '--seed', '42', '--threads', '1');
  assert.equal(a.code, 0, a.err);
  assert.ok(!a.out.includes('Hello world'), 'the prompt is not echoed');
  assert.ok(!a.out.includes('loading'), 'progress goes to stderr');
  const b = cli('generate', '--model', model, '--prompt', 'Hello world', '-n', '8', '--seed', '42', '--threads', '1');
  assert.equal(a.out, b.out);
});

test('tokenize prints one JSON array, and user text never becomes a special token', () => {
  const r = cli('tokenize', '--model', model, '--text', 'Hello <|endoftext|>');
  assert.equal(r.code, 0, r.err);
  const ids = JSON.parse(r.out) as number[];
  assert.ok(Array.isArray(ids) && ids.length > 2);
  assert.ok(!ids.includes(50256), 'no <|endoftext|> id from user text');
  const special = JSON.parse(cli('tokenize', '--model', model, '--text', 'Hello <|endoftext|>', '--special').out) as number[];
  assert.ok(special.includes(50256));
});

test('inspect describes the file', () => {
  const r = cli('inspect', model);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /architecture\s+llama/);
  assert.match(r.out, /layers\s+2\s+embedding 960/);
  assert.match(r.out, /Q8_0/);
});

test('bad input: one clear line on stderr, a non-zero exit, no stack trace', () => {
  const notGguf = join(dir, 'not-a-model.txt');
  writeFileSync(notGguf, 'just some text, not a model');
  const gpt2 = join(dir, 'gpt2.gguf');
  writeGguf(gpt2, { metadata: { 'general.architecture': str('gpt2'), 'gpt2.block_count': u32(1) } });
  const cases: [string[], RegExp][] = [
    [['generate', '--model', '/no/such/file.gguf', '--prompt', 'x'], /model file not found.*\/no\/such\/file\.gguf/],
    [['generate', '--model', notGguf, '--prompt', 'x'], /not a GGUF file/i],
    [['generate', '--model', gpt2, '--prompt', 'x'], /unsupported model architecture.*llama, qwen2, phi3.*'gpt2'/],
    [['generate', '--model', model, '--prompt', 'x', '--bogus'], /Unknown option '--bogus'/],
    [['generate', '--model', model, '--prompt', 'x', '--temp', 'hot'], /--temp needs a number/],
    [['generate', '--prompt', 'x'], /missing --model/],
    [['node', '--role', 'boss', '--coordinator-url', 'http://x'], /--role must be one of primary, worker/],
    [['frobnicate'], /unknown command 'frobnicate'/],
    // Flags are checked before any work (no model loads, no port is bound).
    [['generate', '--model', model, '--prompt', 'x', '--threads', '0'], /--threads must be between 1 and \d+ \(got 0\)/],
    [['generate', '--model', model, '--prompt', 'x', '--threads', '1000'], /--threads must be between 1 and \d+ \(got 1000\): this machine has \d+ cores/],
    [['generate', '--model', model, '--prompt', 'x', '-n', '2.5'], /--n-predict needs a whole number \(got '2\.5'\)/],
    [['generate', '--model', model, '--prompt', 'x', '--top-p', '7'], /--top-p must be between 0 and 1 \(got 7\)/],
    [['chat', '--model', model, '--temp', '-1'], /--temp must be between 0 and \d+ \(got -1\)/],
    [['generate', '--model', model, '--prompt', 'x', '--ctx-size', '100000000'], /--ctx-size 100000000 is longer than the model's context \(\d+ tokens\)/],
    [['chat', '--model', model, '--chat-template', 'no-such-template'], /--chat-template 'no-such-template' is neither a built-in template nor a file/],
    [['coordinator', '--port', '99999', '--log-format', 'text'], /--port must be between 0 and 65535 \(got 99999\)/],
    [['node', '--role', 'primary', '--model', '/no/such/file.gguf', '--coordinator-url', 'http://127.0.0.1:1', '--log-format', 'text'], /model file not found.*\/no\/such\/file\.gguf/],
    [['node', '--role', 'worker', '--coordinator-url', '192.168.1.10:8420', '--log-format', 'text'], /--coordinator-url (needs a URL|must start with http:\/\/ or https:\/\/)/],
    [['node', '--role', 'worker', '--coordinator-url', 'ftp://host:21', '--log-format', 'text'], /--coordinator-url must start with http:\/\/ or https:\/\//],
    [['node', '--role', 'primary', '--model', model, '--coordinator-url', 'http://127.0.0.1:1', '--api-tls-cert', 'x.pem', '--log-format', 'text'], /--api-tls-cert and --api-tls-key go together/],
  ];
  for (const [args, re] of cases) {
    const r = cli(...args);
    assert.notEqual(r.code, 0, `${args.join(' ')} should fail`);
    const lines = r.err.trim().split('\n').filter((l) => !l.startsWith('loading'));
    assert.equal(lines.length, 1, `one line for ${args.join(' ')}: ${r.err}`);
    assert.match(lines[0]!, re);
    assert.ok(!/\n\s+at /.test(r.err), 'no stack trace without --verbose');
  }
});
