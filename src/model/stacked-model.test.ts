import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { getGgml } from '../ggml/runtime.ts';
import { loadModelPart } from './load.ts';
import type { ModelPart } from './model-part.ts';
import { Combiner } from './mixture/combine.ts';
import { SPECIALIST_SHAPE } from './mixture/testing.ts';
import { StackError, StackedModel } from './stacked-model.ts';
import { cachedModel } from './testing/cached-model.ts';
import { maxRelDiff } from './testing/compare.ts';
import { graftModel } from './testing/graft.ts';

const ggml = getGgml({ gpu: 'off' });
const paths = [1, 2, 3].map((seed) => cachedModel({ shape: SPECIALIST_SHAPE, nLayer: 2, type: 'Q8_0', seed }));
let parts: ModelPart[];
let stack: StackedModel;
before(async () => {
  parts = await Promise.all(paths.map(async (p) => (await loadModelPart(p, { gpu: 'off', nCtx: 64 })).part));
  stack = await StackedModel.load(paths, { gpu: 'off', nCtx: 64 });
});
after(() => {
  stack.dispose();
  for (const p of parts) p.dispose();
});

const prompt = Int32Array.of(464, 6193, 1909, 318, 257, 922, 1110, 11);

test('a stack of 3 models gives each model its own logits: prefill (every row) and decode steps', () => {
  const seq = stack.openSequence();
  const seqs = parts.map((p) => p.openSequence());
  try {
    const stacked = stack.prefill(seq, prompt);
    parts.forEach((p, m) => {
      const alone = p.step([{ seq: seqs[m]!, tokens: prompt, logits: 'all' }]).logits[0]!;
      assert.equal(stacked[m]!.length, prompt.length);
      alone.forEach((row, i) => assert.ok(maxRelDiff(stacked[m]![i]!, row).rel < 1e-3, `model ${m} row ${i}: ${maxRelDiff(stacked[m]![i]!, row).rel}`));
    });
    for (const token of [13, 262, 318]) {
      const rows = stack.step(seq, token);
      parts.forEach((p, m) => {
        const alone = p.step([{ seq: seqs[m]!, tokens: Int32Array.of(token) }]).logits[0]![0]!;
        assert.ok(maxRelDiff(rows[m]!, alone).rel < 1e-3, `model ${m} after ${token}: ${maxRelDiff(rows[m]!, alone).rel}`);
      });
    }
    assert.equal(stack.sequenceLength(seq), prompt.length + 3);
  } finally {
    stack.closeSequence(seq);
    parts.forEach((p, m) => p.closeSequence(seqs[m]!));
  }
});

test('a mixed step equals the combiner over the models\' own rows; likelihoods read each model\'s p(token)', () => {
  const a = stack.openSequence();
  const b = stack.openSequence();
  const combiner = new Combiner(ggml, stack.nVocab);
  try {
    stack.prefill(a, prompt);
    stack.prefill(b, prompt);
    const w = Float64Array.of(0.5, 0.3, 0.2);
    const rows = stack.step(b, 42);
    const mixed = stack.stepMixed(a, 42, w);
    const ref = combiner.mix(rows, w);
    assert.ok(maxRelDiff(mixed.logits, ref.logits).rel < 1e-4);
    const l = mixed.likelihoods(7);
    const r = ref.likelihoods(7);
    for (let k = 0; k < 3; k++) assert.ok(Math.abs(l[k]! - r[k]!) <= 1e-6 + 1e-4 * r[k]!, `${l[k]} vs ${r[k]}`);
    // A weight of 0 leaves a model out.
    const only = stack.stepMixed(a, 5, Float64Array.of(0, 1, 0));
    const alone = stack.step(b, 5);
    const single = combiner.mix([alone[1]!], Float64Array.of(1));
    assert.ok(maxRelDiff(only.logits, single.logits).rel < 1e-4);
    // Two sequences in one step, one mixed, one not: what each gets alone.
    const [x, y] = stack.decode([{ seq: a, token: 9, weights: w }, { seq: b, token: 11 }]);
    const a2 = stack.openSequence();
    const b2 = stack.openSequence();
    try {
      for (const q of [a2, b2]) {
        stack.prefill(q, prompt);
        stack.step(q, 42);
        stack.step(q, 5);
      }
      const mixedAlone = stack.stepMixed(a2, 9, w);
      const rowsAlone = stack.step(b2, 11);
      assert.ok('mix' in x! && 'rows' in y!);
      assert.ok(maxRelDiff(x.mix.logits, mixedAlone.logits).rel < 1e-4);
      assert.ok(Math.abs(x.mix.likelihoods(3)[1]! - mixedAlone.likelihoods(3)[1]!) < 1e-6);
      rowsAlone.forEach((r, k) => assert.ok(maxRelDiff(y.rows[k]!, r).rel < 1e-4, `model ${k}`));
    } finally {
      stack.closeSequence(a2);
      stack.closeSequence(b2);
    }
    assert.throws(() => stack.decode([{ seq: a, token: 1 }, { seq: a, token: 2 }]), /a sequence twice/);
  } finally {
    combiner.dispose();
    stack.closeSequence(a);
    stack.closeSequence(b);
  }
});

test('models of different shapes, too few models, or a full context are refused clearly', async () => {
  const other = cachedModel({ shape: SPECIALIST_SHAPE, nLayer: 1, type: 'Q8_0', seed: 1 });
  await assert.rejects(StackedModel.load([paths[0]!, other], { gpu: 'off' }), (e: unknown) => e instanceof StackError && /differs .* in nLayer/.test(e.message));
  const f16 = cachedModel({ shape: SPECIALIST_SHAPE, nLayer: 2, type: 'F16', seed: 1 });
  await assert.rejects(StackedModel.load([paths[0]!, f16], { gpu: 'off' }), (e: unknown) => e instanceof StackError && /tensor .* differs/.test(e.message));
  await assert.rejects(StackedModel.load([paths[0]!], { gpu: 'off' }), StackError);
  const seq = stack.openSequence();
  try {
    assert.throws(() => stack.prefill(seq, new Int32Array(65).fill(11)), /context full/);
  } finally {
    stack.closeSequence(seq);
  }
});

/** Each model of the stack gives what it gives loaded alone: every prefill row and a decode step. Returns the step's rows. */
function sameAsAlone(stacked: StackedModel, alone: readonly ModelPart[]): Float32Array[] {
  const seq = stacked.openSequence();
  try {
    const rows = stacked.prefill(seq, prompt);
    const next = stacked.step(seq, 13);
    alone.forEach((p, m) => {
      const s = p.openSequence();
      const ref = p.step([{ seq: s, tokens: prompt, logits: 'all' }]).logits[0]!;
      ref.forEach((row, i) => assert.ok(maxRelDiff(rows[m]![i]!, row).rel < 1e-3, `model ${m} row ${i}`));
      const step = p.step([{ seq: s, tokens: Int32Array.of(13) }]).logits[0]![0]!;
      assert.ok(maxRelDiff(next[m]!, step).rel < 1e-3, `model ${m} step`);
      p.closeSequence(s);
    });
    return next;
  } finally {
    stacked.closeSequence(seq);
  }
}

test('models sharing a trunk run it once and still give each model its own logits', async () => {
  // Specialists fine-tuned on their top layer only: the embeddings and layer 0 are the first model's.
  const grafted = [2, 3].map((i) => graftModel(paths[0]!, paths[i - 1]!, 1, paths[0]!.replace(/\.gguf$/, `-graft${i}.gguf`)));
  const members = [paths[0]!, ...grafted];
  const trunk = await StackedModel.load(members, { gpu: 'off', nCtx: 64 });
  const alone = await Promise.all(members.map(async (p) => (await loadModelPart(p, { gpu: 'off', nCtx: 64 })).part));
  try {
    assert.deepEqual(trunk.shared, { embeddings: true, layers: 1 });
    const next = sameAsAlone(trunk, alone);
    // The two grafted models differ from the first above the trunk.
    assert.ok(maxRelDiff(next[1]!, next[0]!).rel > 1e-2);
  } finally {
    trunk.dispose();
    for (const p of alone) p.dispose();
  }
});

test('models differing in a few tensors load the others once and read them once a step', async () => {
  // As specialists merged from LoRA adapters on two matrices of the last layer would be.
  const differ = new Set(['blk.1.attn_q.weight', 'blk.1.ffn_down.weight']);
  const grafted = [2, 3].map((i) => graftModel(paths[0]!, paths[i - 1]!, 0, paths[0]!.replace(/\.gguf$/, `-lora${i}.gguf`), (name) => differ.has(name)));
  const members = [paths[0]!, ...grafted];
  const few = await StackedModel.load(members, { gpu: 'off', nCtx: 64 });
  const alone = await Promise.all(members.map(async (p) => (await loadModelPart(p, { gpu: 'off', nCtx: 64 })).part));
  try {
    assert.deepEqual([...few.perModel].sort(), [...differ].sort());
    assert.deepEqual(few.shared, { embeddings: true, layers: 1 });
    assert.ok(few.weightBytes < 1.5 * alone[0]!.weights.bytes, `${few.weightBytes} vs one model's ${alone[0]!.weights.bytes}`);
    sameAsAlone(few, alone);
  } finally {
    few.dispose();
    for (const p of alone) p.dispose();
  }
});
