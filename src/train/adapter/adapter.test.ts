// Adapters over the bundled tiny model: training moves only the adapter's tensors and lowers the loss on
// the training text, the file round-trips, an adapter for another base is refused naming both hashes, and
// empty, binary or too short text gets a clear error.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { TrainError } from '../errors.ts';
import { type Adapter, AdapterBaseMismatchError, AdapterSession, adapterBytes, normOverrides, overridesForSpan, readAdapter, trainAdapter, writeAdapter } from './index.ts';

const MODEL = 'models/sharedllm-tiny.gguf';
const dir = mkdtempSync(join(tmpdir(), 'sharedllm-adapter-'));
const text = readFileSync('test/fixtures/prose/prideprejudice-01.txt', 'utf8');
let session: AdapterSession;
let tokens: Int32Array;
let norm: Adapter;

before(async () => {
  session = await AdapterSession.open(MODEL, { threads: 1, ctx: 32, batch: 2 });
  tokens = session.encodeTrainingText(text);
  norm = await session.train(tokens, { kind: 'norm', steps: 4, seed: 1, lr: 3e-2, name: 'lizzy' });
});
after(async () => {
  await session?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

test('a norm adapter holds every norm gain, moved from the base, and lowers the loss on its text', () => {
  const o = normOverrides(norm);
  assert.equal(o.size, 2 * 6 + 1, 'attn_norm and ffn_norm of 6 layers, output_norm');
  assert.ok(o.has('blk.0.attn_norm.weight') && o.has('output_norm.weight'));
  for (const g of o.values()) assert.equal(g.length, 256);
  assert.equal(adapterBytes(norm), 13 * 256 * 4);
  const window = tokens.subarray(0, 129);
  const base = session.evaluate(null, window).nll;
  const tuned = session.evaluate(norm, window).nll;
  assert.ok(tuned < base, `loss on its own text ${tuned} < base ${base}`);
  assert.deepEqual([...overridesForSpan(o, 2, 4, false).keys()].sort(), ['blk.2.attn_norm.weight', 'blk.2.ffn_norm.weight', 'blk.3.attn_norm.weight', 'blk.3.ffn_norm.weight']);
  assert.ok(overridesForSpan(o, 4, 6, true).has('output_norm.weight'));
});

test('a LoRA adapter has A (n_in, r) and B (r, n_out) for every attention and FFN matrix, and starts at the base', async () => {
  const lora = await session.train(tokens, { kind: 'lora', rank: 2, steps: 2, seed: 1 });
  assert.equal(lora.rank, 2);
  assert.equal(lora.tensors.size, 6 * 7 * 2);
  assert.deepEqual(lora.shapes.get('blk.0.attn_q.weight.lora_a'), [256, 2]);
  assert.deepEqual(lora.shapes.get('blk.0.ffn_down.weight.lora_b'), [2, 256]);
  assert.deepEqual(lora.shapes.get('blk.5.ffn_up.weight.lora_b'), [2, 768]);
  assert.throws(() => normOverrides(lora), /only norm adapters/);
  const zeroB = { ...lora, tensors: new Map([...lora.tensors].map(([k, v]) => [k, k.endsWith('.lora_b') ? new Float32Array(v.length) : v])) };
  const window = tokens.subarray(0, 65);
  assert.ok(Math.abs(session.evaluate(zeroB, window).nll - session.evaluate(null, window).nll) < 1e-5, 'B = 0 is the base');
  const path = join(dir, 'lora.gguf');
  writeAdapter(path, lora);
  const back = readAdapter(path, session.base);
  assert.equal(back.alpha, 2);
  assert.deepEqual(back.tensors.get('blk.3.attn_v.weight.lora_b'), lora.tensors.get('blk.3.attn_v.weight.lora_b'));
});

test('the adapter file round-trips and is refused for another base, naming both hashes', () => {
  const path = join(dir, 'norm.gguf');
  writeAdapter(path, norm);
  const back = readAdapter(path, session.base);
  assert.equal(back.name, 'lizzy');
  assert.equal(back.kind, 'norm');
  assert.deepEqual(back.base, session.base);
  assert.deepEqual(back.tensors.get('blk.1.ffn_norm.weight'), norm.tensors.get('blk.1.ffn_norm.weight'));
  assert.equal(back.training?.steps, 4);
  const other = { contentHash: `sha256:${'1'.repeat(64)}`, tokenizerHash: session.base.tokenizerHash };
  assert.throws(() => readAdapter(path, other), (e: unknown) => {
    assert.ok(e instanceof AdapterBaseMismatchError);
    assert.ok(e.message.includes(other.contentHash) && e.message.includes(session.base.contentHash), e.message);
    return true;
  });
  assert.throws(() => readAdapter(MODEL), /not a SharedLLM adapter/);
});

test('empty, binary and too short text are refused before any training', async () => {
  assert.throws(() => session.encodeTrainingText('  \n '), (e: unknown) => e instanceof TrainError && /empty/.test(e.message));
  assert.throws(() => session.encodeTrainingText('abc\0def'), /binary/);
  assert.throws(() => session.encodeTrainingText('\uFFFD'.repeat(50) + 'x'.repeat(100)), /not UTF-8/);
  assert.throws(() => session.encodeTrainingText('Too short.'), /too short.*at least 65 tokens/s);
  await assert.rejects(trainAdapter({ modelPath: MODEL, text: 'A few words.', kind: 'norm', threads: 1 }), /too short/);
});

test('training stops between steps when its signal aborts, and reports progress until then', async () => {
  const ac = new AbortController();
  const seen: number[] = [];
  await assert.rejects(session.train(tokens, {
    kind: 'norm', steps: 50, signal: ac.signal,
    onProgress: (step, total, loss) => {
      seen.push(step);
      assert.equal(total, 50);
      assert.ok(Number.isFinite(loss));
      if (step === 2) ac.abort();
    },
  }), /cancelled.*step 2 of 50/s);
  assert.deepEqual(seen, [1, 2]);
});
