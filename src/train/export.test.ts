// A trained model exported to GGUF gives the logits the trainer computes, in our engine (loadModelPart)
// and in llama.cpp (node-llama-cpp), for F32 and Q8_0 exports.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { getGgml } from '../ggml/runtime.ts';
import { openGguf } from '../gguf/reader.ts';
import { loadModelPart } from '../model/load.ts';
import { loadReference } from '../model/testing/reference.ts';
import { type ModelConfig, PRESETS } from './config.ts';
import { loadCorpus } from './corpus.ts';
import { BatchCursor, prepareData } from './data.ts';
import { evaluateTokens } from './evaluate.ts';
import { exportGguf } from './export.ts';
import { initialParams } from './params.ts';
import { tokenizerGgufMetadata } from './tokenizer-gguf.ts';
import { Trainer } from './trainer.ts';

const ggml = getGgml({ gpu: 'off', threads: 1 });
const dir = mkdtempSync(join(tmpdir(), 'sharedllm-export-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const data = prepareData(loadCorpus('test/fixtures/prose'), { vocabSize: 384, heldOutFraction: 0.1, splitSeed: 1 });
const model: ModelConfig = { nVocab: data.tokenizer.vocabSize, nCtx: 64, nEmbd: 64, nLayer: 2, nHead: 4, nHeadKv: 2, nFf: 128, ropeBase: 10000, rmsEps: 1e-5 };
const o = { ...PRESETS.tiny.optim, batch: 4, lr: 3e-3, warmup: 5, steps: 15, seed: 3 };
const trainer = new Trainer(ggml, model, o, initialParams(model, o.seed));
const cursor = new BatchCursor(data.train, o.batch, model.nCtx, o.seed);
while (trainer.step < o.steps) {
  const b = cursor.next();
  trainer.trainStep(b.input, b.target);
}
const prompt = [data.tokenizer.bosId, ...data.tokenizer.encode('It is a truth universally acknowledged, that a single man in possession of a good fortune')];
const ours = trainer.logits(prompt);
after(() => trainer.dispose());

function exportAs(type: 'F32' | 'Q8_0'): string {
  const path = join(dir, `m-${type}.gguf`);
  exportGguf(path, { model, params: trainer.params.getParams(), tokenizer: tokenizerGgufMetadata(data.tokenizer), type, name: 'test' });
  return path;
}

/** Largest |a - b| over all positions, relative to the largest |b|. */
function relDiff(a: Float32Array[], b: Float32Array[]): { abs: number; rel: number } {
  let abs = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    for (let j = 0; j < b[i]!.length; j++) {
      abs = Math.max(abs, Math.abs(a[i]![j]! - b[i]![j]!));
      scale = Math.max(scale, Math.abs(b[i]![j]!));
    }
  }
  return { abs, rel: abs / scale };
}

async function engineLogits(path: string): Promise<Float32Array[]> {
  const { part } = await loadModelPart(path, { gpu: 'off', threads: 1 });
  try {
    const seq = part.openSequence();
    return part.step([{ seq, tokens: Int32Array.from(prompt), logits: 'all' }]).logits[0]!.map((r) => r.slice());
  } finally {
    part.dispose();
  }
}

test('F32 export: trainer, our engine and llama.cpp agree within 1e-3 relative', async () => {
  const path = exportAs('F32');
  const md = openGguf(path);
  assert.equal(md.metadata.getString('general.architecture'), 'llama');
  assert.match(md.metadata.getString('tokenizer.chat_template'), /<\|im_start\|>/);
  md.dispose();
  const engine = await engineLogits(path);
  const ref = await loadReference(path, 1, 128);
  try {
    const llama = await ref.logits(prompt);
    const a = relDiff(ours, llama);
    const b = relDiff(engine, llama);
    console.log(`F32: trainer vs llama.cpp max |diff| ${a.abs.toExponential(2)} (rel ${a.rel.toExponential(2)}); engine vs llama.cpp ${b.abs.toExponential(2)}`);
    assert.ok(a.rel < 1e-3, `trainer vs llama.cpp ${a.rel}`);
    assert.ok(b.rel < 1e-3, `engine vs llama.cpp ${b.rel}`);
  } finally {
    await ref.dispose();
  }
});

test('Q8_0 export: loads in llama.cpp, matches our engine, stays close to F32', async () => {
  const path = exportAs('Q8_0');
  const engine = await engineLogits(path);
  const ref = await loadReference(path, 1, 128);
  try {
    const llama = await ref.logits(prompt);
    const e = relDiff(engine, llama);
    const q = relDiff(llama, ours);
    console.log(`Q8_0: engine vs llama.cpp rel ${e.rel.toExponential(2)}; Q8_0 vs F32 trainer rel ${q.rel.toExponential(2)}`);
    assert.ok(e.rel < 1e-3, `engine vs llama.cpp ${e.rel}`);
    assert.ok(q.rel < 0.05, `Q8_0 vs F32 ${q.rel}`);
    const held = data.heldOut.subarray(0, 400);
    const f32 = trainer.evalBatch(held.subarray(0, 256), held.subarray(1, 257));
    const fromFile = evaluateTokens(exportAs('F32'), held.subarray(0, 257), { nCtx: 64, batch: 4 });
    assert.equal(fromFile.tokens, 256);
    assert.ok(Math.abs(fromFile.nll - f32.nll / f32.count) < 1e-4, `evaluate() on the F32 file ${fromFile.nll} equals the trainer's ${f32.nll / f32.count}`);
  } finally {
    await ref.dispose();
  }
});
