// `sharedllm train` and `sharedllm eval` as a user runs them (real processes): a tiny-preset run on a
// small prose corpus produces a GGUF that llama.cpp loads; bad input gives one clear error line and
// overwrites nothing.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadReference } from '../model/testing/reference.ts';
import { runCli } from './run-cli.testing.ts';

const dir = mkdtempSync(join(tmpdir(), 'sharedllm-cli-train-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const FIXTURE = 'test/fixtures/prose';
const out = join(dir, 'tiny.gguf');
const heldOut = join(dir, 'heldout.txt');
const FAST = ['--steps', '3', '--batch', '2', '--ctx', '64', '--threads', '1', '--eval-every', '0'];

const cli = runCli;

/** The command failed with exit code 1 and its last stderr line names the problem. */
function failsWith(r: { code: number; stderr: string }, pattern: RegExp): void {
  assert.equal(r.code, 1, r.stderr);
  const last = r.stderr.trim().split('\n').at(-1)!;
  assert.match(last, /^sharedllm train: /);
  assert.match(last, pattern);
}

before(async () => {
  const r = await cli('train', '--preset', 'tiny', '--corpus', FIXTURE, '--out', out, '--held-out-text', heldOut, ...FAST);
  assert.equal(r.code, 0, r.stderr);
  console.log(r.stdout.trim());
});

test('train --preset tiny writes a Q8_0 GGUF that llama.cpp loads and continues', async () => {
  assert.ok(statSync(out).size < 25e6);
  assert.ok(existsSync(join(dir, 'tiny.ckpt')));
  const ref = await loadReference(out, 1, 128);
  try {
    const prompt = ref.model.tokenize('It is a truth universally acknowledged');
    const cont = await ref.greedy([ref.model.tokens.bos!, ...prompt] as number[], 8);
    assert.equal(cont.length, 8);
  } finally {
    await ref.dispose();
  }
});

test('eval prints the perplexity of the exported model on the held-out text', async () => {
  const r = await cli('eval', '--model', out, '--text', heldOut, '--threads', '1');
  assert.equal(r.code, 0, r.stderr);
  const m = /perplexity ([\d.]+) over (\d+) tokens/.exec(r.stdout);
  assert.ok(m, r.stdout);
  assert.ok(Number(m[1]) > 1 && Number(m[2]) > 100);
});

test('bad input: one clear line, nothing overwritten', async () => {
  const stamp = readFileSync(out);
  const empty = join(dir, 'empty');
  mkdirSync(empty);
  failsWith(await cli('train', '--corpus', empty, '--out', out, '--force', ...FAST), /empty corpus/);

  const binary = join(dir, 'binary.txt');
  writeFileSync(binary, Buffer.from([0x48, 0x69, 0x00, 0x01, 0x02]));
  failsWith(await cli('train', '--corpus', binary, '--out', out, '--force', ...FAST), /binary file/);

  const small = join(dir, 'small.txt');
  writeFileSync(small, 'A few words are not enough to fill one batch of training rows.\n');
  failsWith(await cli('train', '--corpus', small, '--out', out, '--force', ...FAST), /corpus smaller than one batch/);

  failsWith(await cli('train', '--corpus', FIXTURE, '--out', out, '--force', '--preset', '30m', '--max-memory', '64MiB', ...FAST), /does not fit in memory/);

  // An existing checkpoint is continued with --resume, never silently replaced.
  failsWith(await cli('train', '--corpus', FIXTURE, '--out', out, ...FAST), /checkpoint file exists/);
  failsWith(await cli('train', '--corpus', FIXTURE, '--out', out, '--resume', join(dir, 'tiny.ckpt'), '--preset', 'small', ...FAST), /checkpoint is of another model/);
  failsWith(await cli('train', '--corpus', FIXTURE, '--out', join(dir, 'b.gguf'), '--resume', out, ...FAST), /not a training checkpoint/);
  assert.ok(readFileSync(out).equals(stamp), 'the model was not overwritten');
  assert.ok(!existsSync(join(dir, 'b.gguf')));
});

test('resume continues the run from its checkpoint', async () => {
  const r = await cli('train', '--corpus', FIXTURE, '--out', out, '--resume', join(dir, 'tiny.ckpt'), '--steps', '4', '--threads', '1', '--eval-every', '0');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /steps 4 \(1 in this run\)/);
});

test('--init fine-tunes an exported GGUF (its weights and tokenizer)', async () => {
  const ft = join(dir, 'ft.gguf');
  const r = await cli('train', '--init', out, '--corpus', FIXTURE, '--out', ft, '--lr', '1e-4', ...FAST);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /steps 3 \(3 in this run\)/);
  const ref = await loadReference(ft, 1, 128);
  await ref.dispose();
});

test('--own-layers trains the last layer over the frozen rest: two such specialists share the rest byte for byte and stack', async () => {
  const files = [1, 2].map((seed) => join(dir, `own-${seed}.gguf`));
  for (const [i, f] of files.entries()) {
    const r = await cli('train', '--init', out, '--own-layers', '1', '--corpus', FIXTURE, '--out', f, '--seed', String(i + 1), '--lr', '1e-3', ...FAST);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /the last 1 layer\(s\); the rest frozen/);
    assert.match(r.stdout, /no checkpoint \(a partial fine-tune\)/);
  }
  const [{ openModelFile }, { StackedModel }] = await Promise.all([import('../model/load.ts'), import('../model/stacked-model.ts')]);
  const [a, b] = files.map((f) => openModelFile(f));
  const nLayer = a!.tensorInfos.filter((t) => t.name.endsWith('attn_q.weight')).length;
  try {
    for (const t of a!.tensorInfos) {
      const same = a!.readTensor(t.name).equals(b!.readTensor(t.name));
      assert.equal(same, !t.name.startsWith(`blk.${nLayer - 1}.`), `${t.name} ${same ? 'same' : 'differs'}`);
    }
  } finally {
    a!.dispose();
    b!.dispose();
  }
  const stack = await StackedModel.load(files, { gpu: 'off', nCtx: 64 });
  try {
    assert.deepEqual(stack.shared, { embeddings: true, layers: nLayer - 1 });
    assert.ok([...stack.perModel].every((n) => n.startsWith(`blk.${nLayer - 1}.`)));
  } finally {
    stack.dispose();
  }
  const bad = await cli('train', '--own-layers', '1', '--corpus', FIXTURE, '--out', join(dir, 'x.gguf'), ...FAST);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--own-layers needs --init/);
});
