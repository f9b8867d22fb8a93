// What the federated-training bets share (44, 65; 50 and 62 later): the corpus and tiny model, and the
// byzantine grid: for each (K participants, f attackers) setting, a clean run per aggregator and an attacked
// run per (attack, aggregator), in a seeded random order; each run's final held-out perplexity divided by the
// clean run with the mean aggregator at the same K and seed.
//
// The model is tiny (one layer, width 32, vocabulary 512, context 32: 43k parameters) so that a bet's full
// grid over 3 seeds fits in minutes on 2 shared cores. The corpus is the repository's prose fixture (Pride and
// Prejudice chapters, 188 KB): each participant trains on its own contiguous shard of the training stream,
// the held-out chapters are scored after every round.
import { join } from 'node:path';
import { getGgml } from '../../src/ggml/runtime.ts';
import { type ModelConfig, PRESETS, paramCount } from '../../src/train/config.ts';
import { loadCorpus } from '../../src/train/corpus.ts';
import { type PreparedData, prepareData } from '../../src/train/data.ts';
import { type Attack, alie, gaussianNoise, ipm, signFlip } from '../../src/train/diloco/attacks.testing.ts';
import { AGGREGATORS, type AggregatorName, defaultDilocoConfig } from '../../src/train/diloco/config.ts';
import { runSimulation } from '../../src/train/diloco/simulate.ts';
import { ROOT, type MeasureContext, type SeedMeasurement } from './_common.ts';
import type { Figure } from './_schema.ts';
import { bootstrapCI, mean, shuffled } from './_stats.ts';

/** The attacks the bets may name (constructed fresh for each run). */
export const ATTACKS = {
  'sign-flip': () => signFlip(1),
  'sign-flip-x4': () => signFlip(4),
  // About 20x the per-coordinate RMS of an honest round-1 delta of this model (4.7e-3).
  noise: () => gaussianNoise(0.1),
  alie: () => alie(),
  'ipm-0.1': () => ipm(0.1),
  'ipm-0.5': () => ipm(0.5),
} satisfies Record<string, () => Attack>;
export type AttackName = keyof typeof ATTACKS;

export const ROBUST: AggregatorName[] = AGGREGATORS.filter((a) => a !== 'mean');
/** A quantity-safe name of an aggregator (trimmed-mean -> trimmed_mean). */
export const key = (a: string) => a.replace(/[^a-z0-9]+/g, '_');

export interface ByzantineSizes {
  settings: { participants: number; attackers: number }[];
  attacks: AttackName[];
  aggregators: AggregatorName[];
  rounds: number;
  innerSteps: number;
}

/**
 * A simulation runs synchronously for seconds: let the event loop through between runs, so that SIGINT and
 * SIGTERM (npm run bet's handlers) stop a bet between two runs instead of never.
 */
export function yieldToSignals(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

let prepared: PreparedData | undefined;
export function proseData(): PreparedData {
  return (prepared ??= prepareData(loadCorpus(join(ROOT, 'test/fixtures/prose')), { vocabSize: 512, heldOutFraction: 0.1, splitSeed: 1 }));
}

export function tinyModel(nVocab: number): ModelConfig {
  return { nVocab, nCtx: 32, nEmbd: 32, nLayer: 1, nHead: 4, nHeadKv: 4, nFf: 64, ropeBase: 10000, rmsEps: 1e-5 };
}

/** Inner AdamW: the tiny preset's betas, decay and clipping; 4 rows of 32 tokens a step. */
export const INNER = { ...PRESETS.tiny.optim, batch: 4, lr: 3e-3, warmup: 10 };

interface Cell {
  participants: number;
  attackers: number;
  attack: AttackName | 'clean';
  aggregator: AggregatorName;
  finalLoss: number;
  /** Held-out loss after each round (round 0 = the initial weights). */
  curve: number[];
  ratio: number;
  refused: number;
}

export interface ByzantineExtra {
  cells: Cell[];
  params: number;
  bytesPerParticipant: number;
}

const setting = (c: { participants: number; attackers: number }) => `K=${c.participants}, f=${c.attackers}`;

/** Every run of the grid for one seed. */
export async function measureByzantine(ctx: MeasureContext<ByzantineSizes>): Promise<SeedMeasurement> {
  const { sizes, seed, log } = ctx;
  const ggml = getGgml({ gpu: 'off', threads: 1 });
  const data = proseData();
  const model = tinyModel(data.tokenizer.vocabSize);
  type Job = Omit<Cell, 'finalLoss' | 'curve' | 'ratio' | 'refused'>;
  const jobs: Job[] = [];
  for (const s of sizes.settings) {
    for (const aggregator of sizes.aggregators) {
      jobs.push({ ...s, attack: 'clean', aggregator });
      for (const attack of sizes.attacks) jobs.push({ ...s, attack, aggregator });
    }
  }
  const done: Cell[] = [];
  let bytes = 0;
  for (const job of shuffled(jobs, seed)) {
    const r = runSimulation({
      ggml, model, train: data.train, heldOut: data.heldOut, inner: INNER,
      diloco: { ...defaultDilocoConfig(), aggregator: job.aggregator, assumedByzantine: job.attackers },
      participants: job.participants, rounds: sizes.rounds, innerSteps: sizes.innerSteps, seed,
      attackers: job.attack === 'clean' ? undefined : { count: job.attackers, attack: ATTACKS[job.attack]() },
    });
    bytes = r.rounds[0]?.bytesPerParticipant ?? 0;
    done.push({ ...job, finalLoss: r.finalLoss, curve: [r.initialLoss, ...r.rounds.map((x) => x.heldOutLoss ?? Number.NaN)], ratio: Number.NaN, refused: r.rounds.reduce((a, x) => a + x.refused.length, 0) });
    log(`${setting(job)} ${job.attack} ${job.aggregator}: held-out loss ${r.initialLoss.toFixed(3)} -> ${r.finalLoss.toFixed(3)}`);
    await yieldToSignals();
  }
  for (const c of done) {
    const clean = done.find((x) => x.participants === c.participants && x.attack === 'clean' && x.aggregator === 'mean');
    c.ratio = clean ? Math.exp(c.finalLoss - clean.finalLoss) : Number.NaN;
  }
  const attacked = done.filter((c) => c.attack !== 'clean');
  const worst = (a: AggregatorName) => Math.max(...attacked.filter((c) => c.aggregator === a).map((c) => c.ratio));
  const values: Record<string, number> = {};
  for (const a of sizes.aggregators) {
    values[`${key(a)}_worst_ratio`] = worst(a);
    values[`clean_${key(a)}_ratio`] = Math.max(...done.filter((c) => c.attack === 'clean' && c.aggregator === a).map((c) => c.ratio));
  }
  const robust = sizes.aggregators.filter((a) => a !== 'mean').map(worst);
  values.robust_worst_ratio = Math.max(...robust);
  values.best_robust_worst_ratio = Math.min(...robust);
  values.clean_perplexity = mean(done.filter((c) => c.attack === 'clean' && c.aggregator === 'mean').map((c) => Math.exp(c.finalLoss)));
  const extra: ByzantineExtra = { cells: done, params: paramCount(model), bytesPerParticipant: bytes };
  return { values, extra };
}

/** The quantities measureByzantine reports, described. */
export function byzantineQuantities(aggregators: readonly AggregatorName[]): Record<string, { unit: string; description: string }> {
  const q: Record<string, { unit: string; description: string }> = {
    robust_worst_ratio: { unit: 'ratio', description: 'the worst robust aggregator: max over median, trimmed mean, centered clipping, Krum of its worst ratio' },
    best_robust_worst_ratio: { unit: 'ratio', description: 'the best robust aggregator: min over the robust aggregators of its worst ratio' },
    clean_perplexity: { unit: 'perplexity', description: 'final held-out perplexity of the clean run with the mean (the reference), averaged over the settings' },
  };
  for (const a of aggregators) {
    q[`${key(a)}_worst_ratio`] = { unit: 'ratio', description: `${a}: the largest final held-out perplexity under attack / clean mean run, over the settings and attacks` };
    q[`clean_${key(a)}_ratio`] = { unit: 'ratio', description: `${a} without attackers: final held-out perplexity / clean mean run (the price of robustness), worst setting` };
  }
  return q;
}

function band(values: number[]): { mean: number; lo: number; hi: number } {
  const [lo, hi] = bootstrapCI(values);
  return { mean: mean(values), lo, hi };
}

/** Tables and figures of a byzantine grid; `id` prefixes the figures. */
export function finishByzantine(id: string, runs: { seed: number; measurement: SeedMeasurement }[], sizes: ByzantineSizes): { details: Record<string, unknown>; figures: Figure[]; notes: string[] } {
  const extras = runs.map((r) => r.measurement.extra as ByzantineExtra);
  const cellsOf = (s: ByzantineSizes['settings'][number], attack: string, aggregator: string) =>
    extras.map((e) => e.cells.find((c) => c.participants === s.participants && c.attack === attack && c.aggregator === aggregator)!);
  const table: Record<string, unknown>[] = [];
  const figures: Figure[] = [];
  for (const s of sizes.settings) {
    const bars: Extract<Figure, { kind: 'bars' }>['bars'] = [];
    for (const attack of ['clean', ...sizes.attacks]) {
      for (const aggregator of sizes.aggregators) {
        const cs = cellsOf(s, attack, aggregator);
        const ratio = band(cs.map((c) => c.ratio));
        table.push({ setting: setting(s), attack, aggregator, pplRatio: ratio, perplexity: band(cs.map((c) => Math.exp(c.finalLoss))), refusedDeltas: mean(cs.map((c) => c.refused)) });
        bars.push({ label: aggregator, group: attack, ...ratio });
      }
    }
    figures.push({ kind: 'bars', id: `${id}_ratio_k${s.participants}`, title: `Final held-out perplexity / clean mean run, ${setting(s)}`, yLabel: 'perplexity ratio', bars });
  }
  // Loss curves at the largest setting under the attack that hurt the mean most.
  const big = sizes.settings.at(-1)!;
  const hardest = [...sizes.attacks].sort((a, b) => mean(cellsOf(big, b, 'mean').map((c) => c.ratio)) - mean(cellsOf(big, a, 'mean').map((c) => c.ratio)))[0];
  if (hardest) {
    const points: Extract<Figure, { kind: 'curve' }>['points'] = [];
    const series: [string, string, string][] = [['clean, mean', 'clean', 'mean'], ...sizes.aggregators.map((a): [string, string, string] => [`${hardest}, ${a}`, hardest, a])];
    for (const [name, attack, aggregator] of series) {
      const curves = cellsOf(big, attack, aggregator).map((c) => c.curve);
      for (let r = 0; r < curves[0]!.length; r++) points.push({ series: name, x: r, ...band(curves.map((c) => c[r]!)) });
    }
    figures.push({ kind: 'curve', id: `${id}_curves`, title: `Held-out loss per round, ${setting(big)}, attack ${hardest}`, xLabel: 'round', yLabel: 'held-out loss (nats/token)', points });
  }
  const e0 = extras[0]!;
  return {
    details: { grid: table, model: { params: e0.params, bytesPerParticipantPerRound: e0.bytesPerParticipant, rounds: sizes.rounds, innerSteps: sizes.innerSteps, innerLr: INNER.lr, outerLr: defaultDilocoConfig().outer.lr, outerMomentum: defaultDilocoConfig().outer.momentum } },
    figures,
    notes: [
      'The machine (2 cores) was shared with other helpers running builds and tests during the run: wall times are not comparable; the perplexities do not depend on it (the runs are deterministic per seed).',
      `Model: tiny llama (width 32, 1 layer, vocabulary 512, context 32; ${e0.params} parameters), corpus test/fixtures/prose (Pride and Prejudice chapters), a contiguous shard per participant; ${sizes.rounds} rounds of H = ${sizes.innerSteps} inner AdamW steps (lr ${INNER.lr}, batch 4 x 32 tokens); outer Nesterov lr 0.7, momentum 0.9; deltas in f32.`,
      'Attackers are omniscient where the attack needs it (ALIE and IPM read the honest deltas of the round); robust aggregators are told the true f (trimmed mean trims f per side, Krum scores n - f - 2 neighbours); centered clipping starts from the previous aggregate with an adaptive radius (the median distance), 3 iterations.',
    ],
  };
}
