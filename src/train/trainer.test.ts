// Training on ggml: the loss goes down, the same seed gives the same model, and a run stopped at a
// checkpoint and resumed ends with exactly the weights of an unbroken run.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { getGgml } from '../ggml/runtime.ts';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.ts';
import { type ModelConfig, type OptimConfig, PRESETS } from './config.ts';
import { loadCorpus } from './corpus.ts';
import { BatchCursor, prepareData } from './data.ts';
import { TrainError } from './errors.ts';
import { type TensorMap, initialParams } from './params.ts';
import { learningRate } from './schedule.ts';
import { Trainer } from './trainer.ts';

const ggml = getGgml({ gpu: 'off', threads: 1 });
const dir = mkdtempSync(join(tmpdir(), 'sharedllm-trainer-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const data = prepareData(loadCorpus('test/fixtures/prose'), { vocabSize: 384, heldOutFraction: 0.1, splitSeed: 1 });
const model: ModelConfig = { nVocab: data.tokenizer.vocabSize, nCtx: 32, nEmbd: 64, nLayer: 2, nHead: 4, nHeadKv: 2, nFf: 128, ropeBase: 10000, rmsEps: 1e-5 };
const optim = (steps: number, seed = 7): OptimConfig => ({ ...PRESETS.tiny.optim, batch: 4, lr: 3e-3, warmup: 5, steps, seed });

/** Train `steps` steps from the start or from a trainer's current step; returns the trainer. */
function trainSteps(t: Trainer, cursor: BatchCursor, until: number): number[] {
  const losses: number[] = [];
  while (t.step < until) {
    const b = cursor.next();
    losses.push(t.trainStep(b.input, b.target).loss);
  }
  return losses;
}

function sameTensors(a: TensorMap, b: TensorMap): boolean {
  for (const [k, v] of a) {
    const w = b.get(k);
    if (!w || w.length !== v.length) return false;
    for (let i = 0; i < v.length; i++) if (v[i] !== w[i]) return false;
  }
  return a.size === b.size;
}

function heldOutLoss(t: Trainer): number {
  const n = Math.min(data.heldOut.length - 1, 4 * model.nCtx);
  const r = t.evalBatch(data.heldOut.subarray(0, n), data.heldOut.subarray(1, n + 1));
  return r.nll / r.count;
}

test('the loss goes down, on training batches and on held-out text', () => {
  const o = optim(40);
  const t = new Trainer(ggml, model, o, initialParams(model, o.seed));
  try {
    const before = heldOutLoss(t);
    assert.ok(Math.abs(before - Math.log(model.nVocab)) < 0.2, `initial loss ${before} is about ln(vocab) ${Math.log(model.nVocab)}`);
    const losses = trainSteps(t, new BatchCursor(data.train, o.batch, model.nCtx, o.seed), o.steps);
    const after = heldOutLoss(t);
    const first = losses.slice(0, 5).reduce((a, b) => a + b) / 5;
    const last = losses.slice(-5).reduce((a, b) => a + b) / 5;
    console.log(`training loss ${first.toFixed(3)} -> ${last.toFixed(3)}, held-out ${before.toFixed(3)} -> ${after.toFixed(3)}`);
    assert.ok(last < first - 1, `training loss fell from ${first} to ${last}`);
    assert.ok(after < before - 0.8, `held-out loss fell from ${before} to ${after}`);
  } finally {
    t.dispose();
  }
});

test('the same seed gives the same model; another seed another', () => {
  const run = (seed: number) => {
    const o = optim(6, seed);
    const t = new Trainer(ggml, model, o, initialParams(model, seed));
    try {
      trainSteps(t, new BatchCursor(data.train, o.batch, model.nCtx, seed), o.steps);
      return t.getState().params;
    } finally {
      t.dispose();
    }
  };
  const a = run(11);
  assert.ok(sameTensors(a, run(11)), 'two runs with seed 11 are bit-identical');
  assert.ok(!sameTensors(a, run(12)), 'seed 12 differs');
});

test('20 steps equal 10 steps, a checkpoint, a new process state, and 10 more (bit-identical)', () => {
  const o = optim(20);
  const straight = new Trainer(ggml, model, o, initialParams(model, o.seed));
  const first = new Trainer(ggml, model, o, initialParams(model, o.seed));
  try {
    trainSteps(straight, new BatchCursor(data.train, o.batch, model.nCtx, o.seed), 20);
    trainSteps(first, new BatchCursor(data.train, o.batch, model.nCtx, o.seed), 10);
    const path = join(dir, 'resume.ckpt');
    const st = first.getState();
    saveCheckpoint(path, { model, optim: o, step: st.step, corpus: { fingerprint: data.fingerprint, heldOutFraction: 0.1, splitSeed: 1 }, tokenizer: data.tokenizer, params: st.params, moments: st.moments });
    first.dispose();

    const ck = loadCheckpoint(path);
    assert.equal(ck.step, 10);
    assert.deepEqual(ck.model, model);
    assert.deepEqual(ck.tokenizer.tokens, data.tokenizer.tokens);
    const resumed = new Trainer(ggml, ck.model, ck.optim, ck.params);
    try {
      resumed.setState({ step: ck.step, params: ck.params, moments: ck.moments });
      trainSteps(resumed, new BatchCursor(data.train, o.batch, model.nCtx, o.seed, ck.step), 20);
      assert.ok(sameTensors(straight.getState().params, resumed.getState().params), 'weights are bit-identical');
      assert.ok(sameTensors(straight.getState().moments, resumed.getState().moments), 'AdamW moments are bit-identical');
    } finally {
      resumed.dispose();
    }
  } finally {
    first.dispose();
    straight.dispose();
  }
});

test('gradient clipping bounds the update; a wrong batch is refused', () => {
  const o = { ...optim(3), clip: 1e-6, lr: 1 };
  const t = new Trainer(ggml, model, o, initialParams(model, 1));
  try {
    const b = new BatchCursor(data.train, o.batch, model.nCtx, 1).next();
    const before = t.getState().params;
    const s = t.trainStep(b.input, b.target);
    assert.ok(s.gradNorm > 1e-3, 'the reported norm is the norm before clipping');
    // AdamW normalises the step, so clipping shows in the first moment: |m| <= (1 - beta1) * clip.
    let mMax = 0;
    for (const [k, v] of t.getState().moments) if (k.startsWith('adam.m.')) for (const x of v) mMax = Math.max(mMax, Math.abs(x));
    assert.ok(mMax <= (1 - o.beta1) * o.clip * 1.001, `first moment ${mMax} reflects the clipped gradient`);
    assert.ok(!sameTensors(before, t.getState().params));
    assert.throws(() => t.trainStep(b.input.subarray(1), b.target), TrainError);
  } finally {
    t.dispose();
  }
});

test('learning rate: linear warmup, cosine decay to the floor', () => {
  const o = { lr: 1e-3, warmup: 10, steps: 110, minLrRatio: 0.1 };
  assert.equal(learningRate(0, o), 1e-4);
  assert.equal(learningRate(9, o), 1e-3);
  assert.ok(Math.abs(learningRate(10, o) - 1e-3) < 1e-12);
  assert.ok(Math.abs(learningRate(109, o) - 1e-4) < 1e-12);
  assert.ok(learningRate(60, o) < 6e-4 && learningRate(60, o) > 5e-4);
});
