// A model run as spans equals the whole model; batched sequences equal separate runs; the per-sequence norm
// override (the adapters' hook) works per sequence; the context limit is a clear error.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ContextLimitError } from './errors.ts';
import { loadModelPart } from './load.ts';
import type { ModelPart } from './model-part.ts';
import { cachedModel } from './testing/cached-model.ts';
import { maxRelDiff } from './testing/compare.ts';

let path: string;
let whole: ModelPart;
const prompt = Int32Array.from([15496, 995, 11, 703, 389, 345, 30, 314]);

before(async () => {
  path = cachedModel({ shape: 'smollm2', nLayer: 4, type: 'Q8_0', seed: 11 });
  whole = (await loadModelPart(path, { gpu: 'off', threads: 2, nCtx: 64 })).part;
});
after(() => whole.dispose());

function run(part: ModelPart, tokens: Int32Array, steps = 4): Float32Array[] {
  const seq = part.openSequence();
  const out = [part.step([{ seq, tokens }]).logits[0]![0]!];
  for (let i = 0; i < steps; i++) out.push(part.step([{ seq, tokens: Int32Array.of(100 + i) }]).logits[0]![0]!);
  part.closeSequence(seq);
  return out;
}

test('spans [0,k) then [k,n) give the same logits as one span, prefill and decode', async () => {
  const ref = run(whole, prompt);
  for (const k of [1, 2, 3]) {
    const a = (await loadModelPart(path, { gpu: 'off', layout: { first: 0, last: k, head: false }, nCtx: 64 })).part;
    const b = (await loadModelPart(path, { gpu: 'off', layout: { embeddings: false, first: k, last: 4 }, nCtx: 64 })).part;
    assert.equal(b.weights.has('token_embd.weight'), false, 'the second span does not hold the embeddings');
    const sa = a.openSequence();
    const sb = b.openSequence();
    const hidden = a.step([{ seq: sa, tokens: prompt }]).hidden!;
    assert.equal(hidden.length, prompt.length * a.h.nEmbd);
    const got = [b.step([{ seq: sb, hidden }]).logits[0]![0]!];
    for (let i = 0; i < 4; i++) {
      const h = a.step([{ seq: sa, tokens: Int32Array.of(100 + i) }]).hidden!;
      got.push(b.step([{ seq: sb, hidden: h }]).logits[0]![0]!);
    }
    got.forEach((g, i) => assert.equal(maxRelDiff(g, ref[i]!).maxAbs, 0, `split at ${k}, step ${i}`));
    a.dispose();
    b.dispose();
  }
});

test('several sequences in one step equal each run alone', () => {
  const p2 = Int32Array.from([40, 716, 257, 3290]);
  const alone1 = run(whole, prompt, 0)[0]!;
  const alone2 = run(whole, p2, 0)[0]!;
  const s1 = whole.openSequence();
  const s2 = whole.openSequence();
  const r = whole.step([{ seq: s1, tokens: prompt }, { seq: s2, tokens: p2 }]);
  assert.ok(maxRelDiff(r.logits[0]![0]!, alone1).rel < 1e-5);
  assert.ok(maxRelDiff(r.logits[1]![0]!, alone2).rel < 1e-5);
  // decode both together, one token each
  const d = whole.step([{ seq: s2, tokens: Int32Array.of(7) }, { seq: s1, tokens: Int32Array.of(7) }]);
  const s3 = whole.openSequence();
  whole.step([{ seq: s3, tokens: p2 }]);
  const alone = whole.step([{ seq: s3, tokens: Int32Array.of(7) }]).logits[0]![0]!;
  assert.ok(maxRelDiff(d.logits[0]![0]!, alone).rel < 1e-5);
  for (const s of [s1, s2, s3]) whole.closeSequence(s);
});

test('per-sequence norm overrides apply to their own sequence only', () => {
  const base = run(whole, prompt, 0)[0]!;
  const name = 'blk.1.ffn_norm.weight';
  const same = new Map([[name, whole.norms.get(name)!.slice()]]);
  const doubled = new Map([[name, whole.norms.get(name)!.map((x) => 2 * x)]]);
  const s1 = whole.openSequence();
  const s2 = whole.openSequence();
  whole.setNormOverrides(s1, same);
  whole.setNormOverrides(s2, doubled);
  const r = whole.step([{ seq: s1, tokens: prompt }, { seq: s2, tokens: prompt }]);
  assert.ok(maxRelDiff(r.logits[0]![0]!, base).rel < 1e-5, 'an override equal to the weights changes nothing');
  assert.ok(maxRelDiff(r.logits[1]![0]!, base).rel > 1e-3, 'a different override changes the output');
  assert.throws(() => whole.setNormOverrides(s1, new Map([[name, new Float32Array(3)]])), /wrong size/);
  whole.closeSequence(s1);
  whole.closeSequence(s2);
});

test('the context limit is a clear error and the sequence stays usable', () => {
  const seq = whole.openSequence();
  whole.step([{ seq, tokens: new Int32Array(60).fill(11) }]);
  assert.throws(() => whole.step([{ seq, tokens: new Int32Array(8).fill(11) }]), (e) => e instanceof ContextLimitError && /context full/.test(e.message));
  assert.equal(whole.sequenceLength(seq), 60);
  whole.truncate(seq, 10);
  assert.equal(whole.step([{ seq, tokens: Int32Array.of(5) }]).logits[0]!.length, 1);
  whole.closeSequence(seq);
});

test('a model larger than free memory is refused before anything is allocated', async () => {
  const { OutOfMemoryError } = await import('./errors.ts');
  await assert.rejects(loadModelPart(path, { gpu: 'off', nCtx: 1 << 20, nSeqMax: 256 }), (e) => e instanceof OutOfMemoryError && /does not fit in free memory/.test(e.message) && /add|smaller/.test(e.message));
});
