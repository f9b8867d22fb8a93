// Our engine against llama.cpp (through node-llama-cpp) on the same files: logits of F32/F16 models in the
// real widths of TinyLlama-1.1B, Phi-3-mini, SmolLM2-360M and Qwen2-0.5B (fewer layers), with real vocabularies.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { loadModelPart } from './load.ts';
import { cachedModel } from './testing/cached-model.ts';
import { maxRelDiff } from './testing/compare.ts';
import type { ShapeName } from './testing/make-model.ts';
import { loadReference } from './testing/reference.ts';

const TOLERANCE = 1e-3;
const cases: [ShapeName, 'F32' | 'F16', number[]][] = [
  ['tinyllama', 'F32', [1, 15043, 3186, 29892, 920, 526, 366, 29973]],
  ['tinyllama', 'F16', [1, 450, 4996, 17354, 1701]],
  ['phi3', 'F16', [1, 450, 4996, 17354, 1701, 432]],
  ['smollm2', 'F32', [15496, 995, 11, 703, 389, 345, 30]],
  ['qwen2', 'F16', [9707, 1879, 11, 1246, 525, 498, 30]],
];
const disposers: (() => Promise<void>)[] = [];
after(async () => {
  for (const d of disposers) await d();
});

for (const [shape, type, tokens] of cases) {
  test(`${shape} ${type}: logits at every position equal llama.cpp's within ${TOLERANCE} relative`, async () => {
    const path = cachedModel({ shape, nLayer: 2, type, seed: 7 });
    const { part } = await loadModelPart(path, { gpu: 'off', threads: 2, nCtx: 64 });
    const seq = part.openSequence();
    const ours = part.step([{ seq, tokens: Int32Array.from(tokens), logits: 'all' }]).logits[0]!;
    part.dispose();
    const ref = await loadReference(path, 2, 64);
    disposers.push(() => ref.dispose());
    const theirs = await ref.logits(tokens);
    let worst = { maxAbs: 0, rel: 0 };
    for (let i = 0; i < tokens.length; i++) {
      const d = maxRelDiff(ours[i]!, theirs[i]!);
      if (d.rel > worst.rel) worst = d;
    }
    console.log(`# ${shape} ${type}: largest difference ${worst.maxAbs.toExponential(2)} (relative ${worst.rel.toExponential(2)}) over ${tokens.length} positions`);
    assert.ok(worst.rel <= TOLERANCE, `relative difference ${worst.rel} > ${TOLERANCE}`);
  });
}
