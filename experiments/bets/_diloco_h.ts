// The inner-steps sweep shared by Bets 50 and 62: K participants, DiLoCo with H = 1, 10, 100 inner steps per
// round against synchronous data-parallel training (one AdamW step per batch of K x 4 rows), all at the same
// inner steps per participant and the same tokens (each step consumes K x 4 rows of 32 tokens in every arm).
//
// Each arm is tuned on a small grid (the outer learning rate for DiLoCo, the AdamW learning rate for the
// synchronous baseline; the same number of values per arm) and early-stopped: the global model is scored on
// a validation split (the tail of the training stream, never seen in training) every `evalEveryInner` inner
// steps; a run stops after `patience` evaluations without a new best. An arm's result is the held-out
// perplexity at its best validation point, under its best learning rate (chosen by validation). Held-out text
// is read for the reported numbers only.
//
// Both bets measure the same runs: a seed's measurement is cached under the OS temp folder by the committed
// code it depends on (src/train and these helpers), sizes and seed (the runs are deterministic), so the
// second bet reads the first one's runs.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getGgml } from '../../src/ggml/runtime.ts';
import { BatchCursor } from '../../src/train/data.ts';
import { defaultDilocoConfig } from '../../src/train/diloco/config.ts';
import { runSimulation } from '../../src/train/diloco/simulate.ts';
import { initialParams } from '../../src/train/params.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { type MeasureContext, ROOT, type SeedMeasurement } from './_common.ts';
import { INNER, proseData, tinyModel, yieldToSignals } from './_diloco.ts';
import type { Figure } from './_schema.ts';
import { bootstrapCI, mean } from './_stats.ts';

export interface SweepSizes {
  participants: number;
  hs: number[];
  /** Inner steps per participant (= synchronous steps). */
  steps: number;
  evalEveryInner: number;
  patience: number;
  outerLrs: number[];
  syncLrs: number[];
  /** Fraction of the training stream's tail kept for validation. */
  validationFraction: number;
}

interface Trace {
  /** Inner steps per participant at each evaluation. */
  steps: number[];
  validation: number[];
  heldOut: number[];
}

interface ArmRun {
  arm: string;
  lr: number;
  trace: Trace;
  bestIndex: number;
}

export interface SweepExtra {
  arms: { arm: string; bestLr: number; perplexity: number; bestStep: number; runs: { lr: number; bestValidation: number; bestStep: number; stoppedAt: number }[]; trace: Trace }[];
}

const armName = (h: number) => `H=${h}`;

function bestOf(t: Trace): number {
  let b = 0;
  for (let i = 1; i < t.validation.length; i++) if (t.validation[i]! < t.validation[b]!) b = i;
  return b;
}

/** True once `patience` evaluations passed without a new best validation loss. */
function patienceStop(patience: number): (v: number) => boolean {
  let best = Infinity;
  let since = 0;
  return (v) => {
    if (v < best) {
      best = v;
      since = 0;
    } else since++;
    return since >= patience;
  };
}

function loss(t: Trainer, tokens: Int32Array, rows: number): number {
  return t.evalTokens(tokens, rows).nll;
}

async function runSweep(sizes: SweepSizes, seed: number, log: (m: string) => void): Promise<SweepExtra> {
  const ggml = getGgml({ gpu: 'off', threads: 1 });
  const data = proseData();
  const model = tinyModel(data.tokenizer.vocabSize);
  const cut = Math.floor(data.train.length * (1 - sizes.validationFraction));
  const train = data.train.subarray(0, cut);
  const validation = data.train.subarray(cut);
  const K = sizes.participants;
  const init = initialParams(model, seed);
  const arms: SweepExtra['arms'] = [];

  const record = (arm: string, runs: ArmRun[]) => {
    const best = runs.reduce((a, b) => (b.trace.validation[b.bestIndex]! < a.trace.validation[a.bestIndex]! ? b : a));
    arms.push({
      arm,
      bestLr: best.lr,
      perplexity: Math.exp(best.trace.heldOut[best.bestIndex]!),
      bestStep: best.trace.steps[best.bestIndex]!,
      runs: runs.map((r) => ({ lr: r.lr, bestValidation: r.trace.validation[r.bestIndex]!, bestStep: r.trace.steps[r.bestIndex]!, stoppedAt: r.trace.steps.at(-1)! })),
      trace: best.trace,
    });
    log(`${arm}: best lr ${best.lr}, held-out perplexity ${Math.exp(best.trace.heldOut[best.bestIndex]!).toFixed(2)} at step ${best.trace.steps[best.bestIndex]}`);
  };

  for (const h of sizes.hs) {
    const runs: ArmRun[] = [];
    for (const lr of sizes.outerLrs) {
      const trace: Trace = { steps: [], validation: [], heldOut: [] };
      const stop = patienceStop(sizes.patience);
      runSimulation({
        ggml, model, train, heldOut: data.heldOut, validation, init, inner: INNER,
        diloco: { ...defaultDilocoConfig(), outer: { lr, momentum: 0.9 } },
        participants: K, rounds: Math.floor(sizes.steps / h), innerSteps: h, seed,
        evalEvery: Math.max(1, Math.round(sizes.evalEveryInner / h)),
        stop: (m) => {
          trace.steps.push((m.round + 1) * h);
          trace.validation.push(m.validationLoss!);
          trace.heldOut.push(m.heldOutLoss!);
          return stop(m.validationLoss!);
        },
      });
      runs.push({ arm: armName(h), lr, trace, bestIndex: bestOf(trace) });
      await yieldToSignals();
    }
    record(armName(h), runs);
  }

  // Synchronous data-parallel: the K participants' batches as one batch of K x 4 rows per step.
  const runs: ArmRun[] = [];
  for (const lr of sizes.syncLrs) {
    const optim = { ...INNER, batch: INNER.batch * K, lr, steps: sizes.steps, seed };
    const t = new Trainer(ggml, model, optim, init);
    try {
      const cursor = new BatchCursor(train, optim.batch, model.nCtx, seed);
      const trace: Trace = { steps: [], validation: [], heldOut: [] };
      const stop = patienceStop(sizes.patience);
      while (t.step < sizes.steps) {
        const b = cursor.next();
        t.trainStep(b.input, b.target);
        if (t.step % sizes.evalEveryInner === 0 || t.step === sizes.steps) {
          trace.steps.push(t.step);
          trace.validation.push(loss(t, validation, optim.batch));
          trace.heldOut.push(loss(t, data.heldOut, optim.batch));
          if (stop(trace.validation.at(-1)!)) break;
        }
      }
      runs.push({ arm: 'sync', lr, trace, bestIndex: bestOf(trace) });
    } finally {
      t.dispose();
    }
    await yieldToSignals();
  }
  record('sync', runs);
  return { arms };
}

/** The committed code the runs depend on (the training layer and these helpers), and whether it is edited. */
function codeVersion(): { version: string; dirty: boolean } {
  const paths = ['src/train', 'experiments/bets/_diloco.ts', 'experiments/bets/_diloco_h.ts'];
  const git = (args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    return { version: git(['rev-parse', ...paths.map((p) => `HEAD:${p}`)]), dirty: git(['status', '--porcelain', '--', ...paths]) !== '' };
  } catch {
    return { version: 'unknown', dirty: true };
  }
}

/** One seed of the sweep, from the cache when this commit already ran it with these sizes. */
export async function measureSweep(ctx: MeasureContext<SweepSizes>): Promise<SeedMeasurement> {
  const { sizes, seed, log, smoke } = ctx;
  const code = codeVersion();
  const id = createHash('sha256').update(JSON.stringify({ code: code.version, sizes, seed })).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), 'sharedllm-diloco-sweep');
  const file = join(dir, `${id}.json`);
  let extra: SweepExtra;
  if (!smoke && !code.dirty && existsSync(file)) {
    log(`seed ${seed}: the same code's runs from ${file}`);
    extra = JSON.parse(readFileSync(file, 'utf8')) as SweepExtra;
  } else {
    extra = await runSweep(sizes, seed, log);
    if (!smoke && !code.dirty) {
      mkdirSync(dir, { recursive: true });
      writeFileSync(file, JSON.stringify(extra));
    }
  }
  const ppl = (arm: string) => extra.arms.find((a) => a.arm === arm)!.perplexity;
  const hs = sizes.hs.map(armName);
  const values: Record<string, number> = { ppl_sync: ppl('sync') };
  for (const h of sizes.hs) values[`ppl_h${h}`] = ppl(armName(h));
  const [lo, mid, hi] = [sizes.hs[0]!, sizes.hs[1] ?? sizes.hs[0]!, sizes.hs.at(-1)!];
  values.ratio_hmax_h1 = ppl(armName(hi)) / ppl(armName(lo));
  values.ratio_hmax_hmid = ppl(armName(hi)) / ppl(armName(mid));
  values.ratio_best_diloco_sync = Math.min(...hs.map(ppl)) / ppl('sync');
  return { values, extra };
}

export function sweepQuantities(hs: readonly number[]): Record<string, { unit: string; description: string }> {
  const q: Record<string, { unit: string; description: string }> = {
    ppl_sync: { unit: 'perplexity', description: 'synchronous data-parallel (batch K x 4 rows), tuned AdamW lr, held-out perplexity at its best validation point' },
    ratio_hmax_h1: { unit: 'ratio', description: `held-out perplexity of H = ${hs.at(-1)} / H = ${hs[0]} (each tuned and early-stopped; < 1: more inner steps win)` },
    ratio_hmax_hmid: { unit: 'ratio', description: `held-out perplexity of H = ${hs.at(-1)} / H = ${hs[1] ?? hs[0]}` },
    ratio_best_diloco_sync: { unit: 'ratio', description: 'the best DiLoCo arm / synchronous data-parallel (< 1: DiLoCo ahead)' },
  };
  for (const h of hs) q[`ppl_h${h}`] = { unit: 'perplexity', description: `DiLoCo H = ${h}, tuned outer lr, held-out perplexity at its best validation point` };
  return q;
}

function band(values: number[]): { mean: number; lo: number; hi: number } {
  const [lo, hi] = bootstrapCI(values);
  return { mean: mean(values), lo, hi };
}

export function finishSweep(id: string, runs: { seed: number; measurement: SeedMeasurement }[], sizes: SweepSizes): { details: Record<string, unknown>; figures: Figure[]; notes: string[] } {
  const extras = runs.map((r) => r.measurement.extra as SweepExtra);
  const names = [...sizes.hs.map(armName), 'sync'];
  const arm = (e: SweepExtra, n: string) => e.arms.find((a) => a.arm === n)!;
  const table = names.map((n) => ({
    arm: n,
    perplexity: band(extras.map((e) => arm(e, n).perplexity)),
    bestStep: band(extras.map((e) => arm(e, n).bestStep)),
    chosenLr: extras.map((e) => arm(e, n).bestLr).join(' / '),
  }));
  const points: Extract<Figure, { kind: 'curve' }>['points'] = [];
  for (const n of names) {
    // Steps where every seed's chosen run still had an evaluation (early stopping ends runs at different points).
    const traces = extras.map((e) => arm(e, n).trace);
    const steps = traces[0]!.steps.filter((s) => traces.every((t) => t.steps.includes(s)));
    for (const s of steps) points.push({ series: n, x: s, ...band(traces.map((t) => Math.exp(t.heldOut[t.steps.indexOf(s)]!))) });
  }
  return {
    details: { arms: table, grid: { outerLrs: sizes.outerLrs.join(', '), syncLrs: sizes.syncLrs.join(', '), participants: sizes.participants, stepsPerParticipant: sizes.steps, evalEveryInner: sizes.evalEveryInner, patience: sizes.patience } },
    figures: [
      { kind: 'curve', id: `${id}_heldout`, title: `Held-out perplexity of the chosen run per arm (K = ${sizes.participants}, equal tokens)`, xLabel: 'inner steps per participant', yLabel: 'held-out perplexity', points },
      { kind: 'bars', id: `${id}_best`, title: 'Held-out perplexity at the best validation point', yLabel: 'perplexity', bars: table.map((r) => ({ label: r.arm, group: 'arm', ...r.perplexity })) },
    ],
    notes: [
      'The machine (2 cores) was shared with other helpers running builds, tests and bets during the run: wall times mean nothing; the perplexities do not depend on it (deterministic per seed).',
      `Model: tiny llama (width 32, 1 layer, vocabulary 512, context 32; 43k parameters), corpus test/fixtures/prose; validation = the last ${sizes.validationFraction * 100}% of the training stream; each participant a contiguous shard of the rest; inner AdamW lr ${INNER.lr} (cosine over the steps), batch 4 x 32 tokens; outer Nesterov momentum 0.9.`,
      'Bets 50 and 62 read the same runs (cached per version of the training code and seed; the runs are deterministic).',
    ],
  };
}
