// Adapters exported to llama.cpp (through node-llama-cpp): a merged norm adapter gives the same greedy text
// in llama.cpp as our engine with the adapter applied per sequence; a LoRA adapter in llama.cpp's LoRA
// format loads there as a LoRA and gives the text of the merged model.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { readFileSync } from 'node:fs';
import { Batcher, localForward } from '../../model/batcher.ts';
import { Generator } from '../../model/generator.ts';
import { loadModelPart } from '../../model/load.ts';
import { loadReference, referenceLlama } from '../../model/testing/reference.ts';
import { type Adapter, AdapterSession, normOverrides } from './index.ts';
import { exportLora, exportMerged } from './export.ts';

const MODEL = 'models/sharedllm-tiny.gguf';
const N = 24;
const dir = mkdtempSync(join(tmpdir(), 'sharedllm-adapter-export-'));
let session: AdapterSession;
let prompt: number[];
let norm: Adapter;
let lora: Adapter;

before(async () => {
  session = await AdapterSession.open(MODEL, { threads: 1, ctx: 32, batch: 2 });
  const tokens = session.encodeTrainingText(readFileSync('test/fixtures/prose/prideprejudice-02.txt', 'utf8'));
  // Strong learning rates: the adapters must change the greedy text for the comparisons to mean anything.
  norm = await session.train(tokens, { kind: 'norm', steps: 6, seed: 2, lr: 0.1, name: 'n' });
  lora = await session.train(tokens, { kind: 'lora', rank: 2, steps: 6, seed: 2, lr: 0.02, name: 'l' });
  prompt = session.tokenizer.encode('It is a truth universally acknowledged, that a single man');
});
after(async () => {
  await session?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/** Our engine's greedy tokens for `path`, optionally with per-sequence norm gains. */
async function ours(path: string, gains?: Map<string, Float32Array>): Promise<number[]> {
  const { part } = await loadModelPart(path, { gpu: 'off', threads: 1, nCtx: 128 });
  try {
    const gen = new Generator(new Batcher(localForward(part)), session.tokenizer);
    return (await gen.complete(prompt, { temperature: 0, maxTokens: N, ...(gains ? { normOverrides: gains } : {}) })).tokens;
  } finally {
    part.dispose();
  }
}

/** llama.cpp's greedy tokens for `path`, optionally with a LoRA adapter file. */
async function llamaCpp(path: string, loraPath?: string): Promise<number[]> {
  if (!loraPath) {
    const ref = await loadReference(path, 1, 128);
    try {
      return await ref.greedy(prompt, N);
    } finally {
      await ref.dispose();
    }
  }
  const llama = await referenceLlama();
  const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
  try {
    const ctx = await model.createContext({ contextSize: 128, flashAttention: true, threads: 1, batchSize: 128, sequences: 1, lora: { adapters: [{ filePath: loraPath }] } });
    const out: number[] = [];
    for await (const t of ctx.getSequence().evaluate([...prompt] as never, { temperature: 0 })) {
      out.push(t as number);
      if (out.length >= N) break;
    }
    await ctx.dispose();
    return out;
  } finally {
    await model.dispose();
  }
}

test('a merged norm adapter: llama.cpp gives the greedy text our engine gives with the adapter per sequence', async () => {
  const merged = join(dir, 'merged-norm.gguf');
  await exportMerged(MODEL, norm, merged);
  const adapted = await ours(MODEL, normOverrides(norm));
  assert.notDeepEqual(adapted, await ours(MODEL), 'the adapter changes the text');
  assert.deepEqual(await ours(merged), adapted, 'our engine on the merged file');
  assert.deepEqual(await llamaCpp(merged), adapted, 'llama.cpp on the merged file');
});

test('a LoRA adapter loads in llama.cpp as a LoRA and gives the merged model\'s text', async () => {
  const loraPath = join(dir, 'lora.gguf');
  const merged = join(dir, 'merged-lora.gguf');
  await exportLora(lora, loraPath);
  await exportMerged(MODEL, lora, merged);
  const withLora = await llamaCpp(MODEL, loraPath);
  assert.notDeepEqual(withLora, await llamaCpp(MODEL), 'the LoRA changes llama.cpp\'s text');
  assert.deepEqual(await llamaCpp(merged), withLora, 'llama.cpp: merged file = base + LoRA');
  assert.deepEqual(await ours(merged), withLora, 'our engine on the merged file');
  await assert.rejects(exportLora(norm, join(dir, 'x.gguf')), /only LoRA adapters/);
});
