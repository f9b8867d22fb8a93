// Training benchmark: tokens/s and achieved FLOP/s of a training step of the tiny preset (batch 8 x 256
// tokens: forward, ggml's backward, gradient clipping, AdamW), next to the F32 mat-mul FLOP/s ggml reaches
// on this machine in the same run (a 2048 x 2048 x 2048 ggml_mul_mat graph), and their ratio.
// Training FLOPs: 6 x parameters x tokens + attention (config.ts trainFlopsPerToken). Target ratio >= 0.35.
import { Executor } from '../src/ggml/executor.ts';
import { Graph, T } from '../src/ggml/graph.ts';
import { getGgml } from '../src/ggml/runtime.ts';
import { WeightSet } from '../src/ggml/weights.ts';
import { PRESETS, paramCount, presetConfig, trainFlopsPerToken } from '../src/train/config.ts';
import { initialParams } from '../src/train/params.ts';
import { Trainer } from '../src/train/trainer.ts';
import { fmt, log, median, table } from './stats.ts';

export interface TrainBenchOptions {
  threads: number;
  /** Timed training steps (after one warm-up step). */
  steps?: number;
  /** Timed mat-mul runs per measurement. */
  matmulRuns?: number;
}

export interface TrainBenchResult {
  tokensPerSecond: number;
  trainFlops: number;
  peakMatmulFlops: number;
  ratio: number;
}

/** FLOP/s of a square F32 mat-mul graph (n x n weights times n columns): the median of `runs`. */
export function peakMatmulFlops(threads: number, n = 2048, runs = 5): number {
  const ggml = getGgml({ threads });
  const w = new WeightSet(ggml, [{ name: 'w', type: T.F32, ne: [n, n], matmul: false }]);
  const g = new Graph(ggml, 16);
  const ex = new Executor(ggml, 16);
  try {
    w.upload('w', new Uint8Array(new Float32Array(n * n).fill(0.001).buffer));
    const x = g.input(T.F32, [n, n], new Float32Array(n * n).fill(0.5));
    const y = g.mulMat(w.get('w'), x);
    g.expand(y);
    ex.run(g); // warm-up
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      ex.run(g);
      times.push((performance.now() - t0) / 1000);
    }
    return (2 * n * n * n) / median(times);
  } finally {
    ex.dispose();
    g.dispose();
    w.dispose();
  }
}

export async function benchTrain(o: TrainBenchOptions): Promise<TrainBenchResult> {
  const steps = o.steps ?? 5;
  const ggml = getGgml({ threads: o.threads });
  const preset = PRESETS.tiny;
  const model = presetConfig('tiny', preset.vocabSize);
  const optim = { ...preset.optim, steps: 1000, seed: 1 };
  const nTokens = optim.batch * model.nCtx;
  log(`\n## train: tiny preset (${paramCount(model).toLocaleString('en-US')} parameters), batch ${optim.batch} x ${model.nCtx} tokens, ${o.threads} threads`);

  const peakBefore = peakMatmulFlops(o.threads, 2048, o.matmulRuns ?? 5);
  const trainer = new Trainer(ggml, model, optim, initialParams(model, 1));
  const times: number[] = [];
  try {
    // Random-looking token ids: the cost of a step does not depend on the text.
    const ids = Int32Array.from({ length: nTokens + 1 }, (_, i) => (i * 7919 + 13) % model.nVocab);
    const input = ids.subarray(0, nTokens);
    const target = ids.subarray(1);
    trainer.trainStep(input, target); // warm-up: allocates the compute buffers
    for (let i = 0; i < steps; i++) {
      const t0 = performance.now();
      trainer.trainStep(input, target);
      times.push((performance.now() - t0) / 1000);
    }
  } finally {
    trainer.dispose();
  }
  const peakAfter = peakMatmulFlops(o.threads, 2048, o.matmulRuns ?? 5);
  const peak = Math.max(peakBefore, peakAfter);
  const stepSeconds = median(times);
  const tokensPerSecond = nTokens / stepSeconds;
  const trainFlops = tokensPerSecond * trainFlopsPerToken(model);
  const ratio = trainFlops / peak;
  log(
    table([
      ['', 'value'],
      ['training step (median)', `${fmt(stepSeconds * 1000, 0)} ms`],
      ['training tokens/s', fmt(tokensPerSecond, 0)],
      ['training GFLOP/s (6N + attention)', fmt(trainFlops / 1e9, 1)],
      ['F32 mat-mul GFLOP/s (2048^3, best of before/after)', `${fmt(peak / 1e9, 1)} (${fmt(peakBefore / 1e9, 1)} / ${fmt(peakAfter / 1e9, 1)})`],
      ['ratio (target >= 0.35)', fmt(ratio, 3)],
    ]),
  );
  return { tokensPerSecond, trainFlops, peakMatmulFlops: peak, ratio };
}
