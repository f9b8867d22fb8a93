// Greedy continuations of 32 tokens are identical to llama.cpp's for quantised models (Q8_0, Q4_0, Q4_K, Q5_K,
// Q6_K) and BF16 in
// the real widths of TinyLlama-1.1B and Llama-3-8B (one or two layers).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { loadModelPart } from './load.ts';
import { cachedModel } from './testing/cached-model.ts';
import { argmax } from './testing/compare.ts';
import type { ShapeName } from './testing/make-model.ts';
import { loadReference } from './testing/reference.ts';

const N = 32;
const cases: [ShapeName, 'Q8_0' | 'Q4_0' | 'Q4_K' | 'Q5_K' | 'Q6_K' | 'BF16', number, number[]][] = [
  ['tinyllama', 'Q8_0', 2, [1, 15043, 3186, 29892]],
  ['tinyllama', 'Q4_0', 2, [1, 450, 4996, 17354, 1701]],
  ['tinyllama', 'Q4_K', 2, [1, 1128, 526, 366]],
  ['tinyllama', 'Q5_K', 1, [1, 306, 763, 278]],
  ['tinyllama', 'Q6_K', 1, [1, 3118, 1554, 263]],
  ['tinyllama', 'BF16', 1, [1, 512, 3186, 29892]],
  ['llama3', 'Q4_0', 1, [128000, 9906, 1917, 11]],
];
const disposers: (() => Promise<void>)[] = [];
after(async () => {
  for (const d of disposers) await d();
});

for (const [shape, type, nLayer, prompt] of cases) {
  test(`${shape} ${type}: 32 greedy tokens identical to llama.cpp`, async () => {
    const path = cachedModel({ shape, nLayer, type, seed: 3 });
    const { part } = await loadModelPart(path, { gpu: 'off', threads: 2, nCtx: 128 });
    const seq = part.openSequence();
    const ours: number[] = [];
    let logits = part.step([{ seq, tokens: Int32Array.from(prompt) }]).logits[0]![0]!;
    while (ours.length < N) {
      const t = argmax(logits);
      ours.push(t);
      logits = part.step([{ seq, tokens: Int32Array.of(t) }]).logits[0]![0]!;
    }
    part.dispose();
    const ref = await loadReference(path, 2, 128);
    disposers.push(() => ref.dispose());
    const theirs = await ref.greedy(prompt, N);
    assert.deepEqual(ours, theirs);
  });
}
