// The stacked mixture on a deep model (issue 13's 1.3x target where the shared trunk is most of the work):
// a 22-layer TinyLlama-shaped model (random Q8_0 weights, 1.1 GB, the engine section's) and two copies whose
// last layer holds other numbers (that of layers 20 and 19: same shapes, written once under .cache/bench-models,
// 1.1 GB each), as three specialists fine-tuned on their last layer would be. ms per decode token of one
// model against the stack's step that runs and mixes all three (model compute only: no sampler, no generator),
// runs alternated, medians.
import { existsSync, mkdirSync } from 'node:fs';
import type { GgufValue } from '../src/gguf/value.ts';
import { writeGguf } from '../src/gguf/writer.ts';
import { loadModelPart, openModelFile } from '../src/model/load.ts';
import { StackedModel } from '../src/model/stacked-model.ts';
import { cachedModel } from '../src/model/testing/cached-model.ts';
import { fmt, log, median, table } from './stats.ts';

/** A copy of `base` whose layer `last` holds the bytes of layer `from`. */
function ownLastLayer(base: string, last: number, from: number): string {
  mkdirSync('.cache/bench-models', { recursive: true });
  const out = `.cache/bench-models/${base.split('/').pop()!.replace(/\.gguf$/, '')}-own${last}-from${from}.gguf`;
  if (existsSync(out)) return out;
  const f = openModelFile(base);
  try {
    const data = (name: string) => () => f.readTensor(name.startsWith(`blk.${last}.`) ? name.replace(`blk.${last}.`, `blk.${from}.`) : name);
    writeGguf(out, { metadata: new Map<string, GgufValue>(f.metadata), tensors: f.tensorInfos.map((t) => ({ name: t.name, type: t.type, dims: t.dims, data: data(t.name) })) });
  } finally {
    f.dispose();
  }
  return out;
}

export async function benchMixtureDeep(o: { runs: number; threads: number; tokens?: number }): Promise<Record<string, number>> {
  const nLayer = 22;
  const base = cachedModel({ shape: 'tinyllama', nLayer, type: 'Q8_0', seed: 1 });
  const files = [base, ownLastLayer(base, nLayer - 1, nLayer - 2), ownLastLayer(base, nLayer - 1, nLayer - 3)];
  const n = o.tokens ?? 16;
  const load = { gpu: 'off' as const, threads: o.threads, nCtx: 256 };
  log(`\n## mixture, deep model: 3 specialists owning the last of ${nLayer} layers (TinyLlama shape, Q8_0) vs one, ${n} tokens, ${o.threads} threads`);
  const part = (await loadModelPart(base, load)).part;
  const stack = await StackedModel.load(files, load);
  try {
    const w = Float64Array.of(0.5, 0.3, 0.2);
    const prompt = Int32Array.from({ length: 14 }, (_, i) => i + 1);
    const m = { one: [] as number[], stack: [] as number[] };
    const time = (f: (i: number) => void) => {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) f(i);
      return (performance.now() - t0) / n;
    };
    for (let r = 0; r < o.runs; r++) {
      const s1 = part.openSequence();
      part.step([{ seq: s1, tokens: prompt }]);
      const s2 = stack.openSequence();
      stack.prefill(s2, prompt);
      const one = () => m.one.push(time((i) => part.step([{ seq: s1, tokens: Int32Array.of(5 + i) }])));
      const mixed = () => m.stack.push(time((i) => stack.stepMixed(s2, 5 + i, w).likelihoods(7)));
      if (r % 2 === 0) (one(), mixed());
      else (mixed(), one());
      part.closeSequence(s1);
      stack.closeSequence(s2);
      log(`run ${r + 1}/${o.runs}: one ${fmt(m.one.at(-1)!)} | stacked 3 ${fmt(m.stack.at(-1)!)} ms/token`);
    }
    const [one, st] = [median(m.one), median(m.stack)];
    log(table([
      ['median ms/token', 'value', 'ratio to one model', 'target'],
      ['one model', fmt(one, 2), '1.000', ''],
      [`3 specialists owning layer ${nLayer - 1}, stacked, mixed`, fmt(st, 2), fmt(st / one, 3), '<= 1.30'],
    ]));
    log(`shared trunk: embeddings and ${stack.shared.layers} layers; weights ${(stack.weightBytes / 2 ** 20).toFixed(0)} MiB against one model's ${(part.weights.bytes / 2 ** 20).toFixed(0)} MiB`);
    return { 'mixture3.deep.ratio': st / one };
  } finally {
    stack.dispose();
    part.dispose();
  }
}
