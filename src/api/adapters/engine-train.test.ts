// The real engine's serving side over the bundled tiny model: a norm adapter gives per-request norm gains,
// a LoRA adapter is not served per request, and an adapter of another base is refused naming both hashes.
// (Training itself is src/train/adapter's test; the whole flow is test/integration/adapters.test.ts.)
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Tokenizer } from '../../model/tokenizer.ts';
import { type Adapter, adapterBaseOf, writeAdapter } from '../../train/adapter/index.ts';
import { AdapterBaseMismatch, type AdapterEngine } from './engine.ts';
import { trainAdapterEngine } from './engine-train.ts';

const MODEL = 'models/sharedllm-tiny.gguf';
const dir = mkdtempSync(join(tmpdir(), 'sharedllm-engine-'));
let tokenizer: Tokenizer;
let engine: AdapterEngine;

before(async () => {
  tokenizer = await Tokenizer.load(MODEL);
  engine = trainAdapterEngine({ modelPath: MODEL, tokenizer, threads: 1 });
});
after(async () => {
  await tokenizer.dispose();
  rmSync(dir, { recursive: true, force: true });
});

function normAdapter(contentHash: string): Adapter {
  const gains = new Float32Array(256).fill(1.5);
  return {
    kind: 'norm', name: 't', base: { ...adapterBaseOf(MODEL), contentHash },
    tensors: new Map([['output_norm.weight', gains]]), shapes: new Map([['output_norm.weight', [256]]]),
  };
}

test('names the base by content hash; counts tokens with the served tokenizer', () => {
  assert.match(engine.baseHash, /^sha256:[0-9a-f]{64}$/);
  assert.ok(engine.minTextTokens > 1);
  assert.equal(engine.countTokens('hello world'), tokenizer.encode('hello world').length);
});

test('a norm adapter of this base loads as per-request norm gains', () => {
  const path = join(dir, 'mine.gguf');
  writeAdapter(path, normAdapter(engine.baseHash));
  const options = engine.load(path);
  assert.deepEqual([...(options?.normOverrides?.keys() ?? [])], ['output_norm.weight']);
  assert.equal(options?.normOverrides?.get('output_norm.weight')?.[0], 1.5);
});

test('an adapter of another base is refused, naming both hashes', () => {
  const other = `sha256:${'0'.repeat(64)}`;
  const path = join(dir, 'other.gguf');
  writeAdapter(path, normAdapter(other));
  assert.throws(() => engine.load(path), (e: unknown) => e instanceof AdapterBaseMismatch && e.message.includes(other) && e.message.includes(engine.baseHash));
});
