// One seed of the mixture experiments (Bets 04 and 18 read the same runs): train the models of _mixture.ts,
// score every held-out window with the real combiner, and keep per-set summaries (no logits). A seed's run
// is cached under the OS temp folder by a hash of its sizes, seed and the code it runs (these helpers and
// src/model/mixture/), so the second bet reads the first one's runs; smoke runs are never cached.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mulberry32 } from '../../src/util/random.ts';
import { BETS_DIR, ROOT } from './_common.ts';
import {
  Combiner, type MixtureSizes, type TokenScore, type Window,
  baseModel, evalWindows, fineTune, loadBase, loadDomains, meanOf, randomSplits, singleNll, scoreWindow, windowLogits,
} from './_mixture.ts';

/** Mean NLL (nats/token) of each arm on one evaluation set. */
export interface SetScores {
  set: string;
  tokens: number;
  base: number;
  union: number;
  /** Each domain specialist alone (index = domain). */
  specialists: number[];
  /** Each random-split model alone. */
  randomModels: number[];
  /** The right specialist for each token's domain. */
  oracle: number;
  mixture: { posterior: number; uniform: number; top1: number };
  randomMixture: { posterior: number; uniform: number; top1: number };
  /** Domain specialists, posterior mode: share of tokens whose top-attributed specialist is their domain's. */
  topIsDomain: number;
  /** Share of tokens where dropping the top-attributed specialist raises the NLL more than dropping a random other one. */
  ablationTopWorse: number;
  /** Mean share of the token per model (domain group and random group). */
  meanShares: number[];
  randomMeanShares: number[];
  /** With sizes.fixedShare: the posterior mixture with that fixed share (mean NLL) and its top-is-domain share. */
  fixedShare?: { nll: number; topIsDomain: number };
}

export interface MixtureRun {
  domains: string[];
  sets: SetScores[];
  /** Per-token shares of the domain specialists over the first mixed window, with each token's domain. */
  trace: { shares: number[]; domain: number }[];
  trainChars: number[];
  seconds: { train: number; score: number };
}

function codeHash(): string {
  const h = createHash('sha256');
  for (const f of ['_mixture.ts', '_mixture_run.ts']) h.update(readFileSync(join(BETS_DIR, f)));
  const mix = join(ROOT, 'src', 'model', 'mixture');
  for (const f of readdirSync(mix).filter((x) => x.endsWith('.ts') && !x.endsWith('.test.ts')).sort()) h.update(readFileSync(join(mix, f)));
  return h.digest('hex');
}

/** Runs of this process (the smoke test runs both bets in one process: one smoke run serves both). */
const inProcess = new Map<string, MixtureRun>();

export async function mixtureRun(sizes: MixtureSizes, seed: number, smoke: boolean, log: (m: string) => void): Promise<MixtureRun> {
  const id = createHash('sha256').update(JSON.stringify({ code: codeHash(), sizes, seed })).digest('hex').slice(0, 16);
  const known = inProcess.get(id);
  if (known) return known;
  const run = await cachedRun(id, sizes, seed, smoke, log);
  inProcess.set(id, run);
  return run;
}

async function cachedRun(id: string, sizes: MixtureSizes, seed: number, smoke: boolean, log: (m: string) => void): Promise<MixtureRun> {
  const dir = join(tmpdir(), 'sharedllm-mixture-bets');
  const file = join(dir, `${id}.json`);
  if (!smoke && existsSync(file)) {
    log(`seed ${seed}: the same code's run from ${file}`);
    return JSON.parse(readFileSync(file, 'utf8')) as MixtureRun;
  }
  const run = await runSeed(sizes, seed, log);
  if (!smoke) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, JSON.stringify(run));
  }
  return run;
}

async function runSeed(sizes: MixtureSizes, seed: number, log: (m: string) => void): Promise<MixtureRun> {
  const base = loadBase(sizes.ctx);
  const domains = loadDomains(sizes, seed);
  const windows = evalWindows(domains, base.tok, sizes);
  const trainChars = domains.map((d) => d.train.reduce((n, t) => n + t.length, 0));
  const t0 = performance.now();
  const tick = () => new Promise<void>((r) => setImmediate(r)); // lets SIGINT through between models

  log(`seed ${seed}: ${domains.map((d) => `${d.name} ${d.train.length} chunks`).join(', ')}; ${windows.length} windows of ${sizes.window} tokens`);
  const logitsOf = (label: string, make: () => ReturnType<typeof fineTune>): Float32Array[][] => {
    const started = performance.now();
    const model = make();
    try {
      const out = windowLogits(model, windows);
      log(`seed ${seed}: ${label} (${((performance.now() - started) / 1000).toFixed(0)} s)`);
      return out;
    } finally {
      model.dispose();
    }
  };
  const baseLogits = logitsOf('base', () => baseModel(base, sizes));
  await tick();
  const specLogits: Float32Array[][][] = [];
  for (const d of domains) {
    specLogits.push(logitsOf(`specialist ${d.name}`, () => fineTune(base, d.train, sizes, sizes.steps, seed)));
    await tick();
  }
  const randLogits: Float32Array[][][] = [];
  for (const [k, part] of randomSplits(domains, seed).entries()) {
    randLogits.push(logitsOf(`random split ${k + 1}`, () => fineTune(base, part, sizes, sizes.steps, seed)));
    await tick();
  }
  const unionLogits = logitsOf('union model', () => fineTune(base, domains.flatMap((d) => d.train), sizes, sizes.steps * domains.length, seed));
  const t1 = performance.now();

  const combiner = new Combiner(base.ggml, base.model.nVocab);
  const rng = mulberry32(seed);
  const perWindow: { win: Window; spec: TokenScore[]; rand: TokenScore[]; base: number[]; union: number[] }[] = [];
  try {
    for (const [w, win] of windows.entries()) {
      perWindow.push({
        win,
        spec: scoreWindow(combiner, specLogits.map((l) => l[w]!), win, rng, sizes.fixedShare),
        rand: scoreWindow(combiner, randLogits.map((l) => l[w]!), win, rng),
        base: singleNll(combiner, baseLogits[w]!, win),
        union: singleNll(combiner, unionLogits[w]!, win),
      });
      if (w % 8 === 7) await tick();
    }
  } finally {
    combiner.dispose();
  }
  const t2 = performance.now();

  const K = domains.length;
  const sets = [...new Set(windows.map((w) => w.set))].map((set): SetScores => {
    const rows = perWindow.filter((p) => p.win.set === set);
    const spec = rows.flatMap((r) => r.spec);
    const rand = rows.flatMap((r) => r.rand);
    const col = (xs: TokenScore[], f: (s: TokenScore) => number) => meanOf(xs.map(f));
    return {
      set, tokens: spec.length,
      base: meanOf(rows.flatMap((r) => r.base)),
      union: meanOf(rows.flatMap((r) => r.union)),
      specialists: [...Array(K).keys()].map((k) => col(spec, (s) => s.single[k]!)),
      randomModels: [...Array(K).keys()].map((k) => col(rand, (s) => s.single[k]!)),
      oracle: col(spec, (s) => s.single[s.domain]!),
      mixture: { posterior: col(spec, (s) => s.nll.posterior), uniform: col(spec, (s) => s.nll.uniform), top1: col(spec, (s) => s.nll.top1) },
      randomMixture: { posterior: col(rand, (s) => s.nll.posterior), uniform: col(rand, (s) => s.nll.uniform), top1: col(rand, (s) => s.nll.top1) },
      topIsDomain: col(spec, (s) => (argmaxOf(s.shares) === s.domain ? 1 : 0)),
      ablationTopWorse: col(spec, (s) => (s.nllWithoutTop > s.nllWithoutRandom ? 1 : 0)),
      meanShares: [...Array(K).keys()].map((k) => col(spec, (s) => s.shares[k]!)),
      randomMeanShares: [...Array(K).keys()].map((k) => col(rand, (s) => s.shares[k]!)),
      ...(sizes.fixedShare === undefined ? {} : { fixedShare: { nll: col(spec, (s) => s.fixedShare!.nll), topIsDomain: col(spec, (s) => (s.fixedShare!.top === s.domain ? 1 : 0)) } }),
    };
  });
  const firstMixed = perWindow.find((p) => p.win.set === 'mixed')!;
  log(`seed ${seed}: trained in ${((t1 - t0) / 1000).toFixed(0)} s, scored in ${((t2 - t1) / 1000).toFixed(0)} s`);
  return {
    domains: domains.map((d) => d.name),
    sets,
    trace: firstMixed.spec.map((s) => ({ shares: s.shares, domain: s.domain })),
    trainChars,
    seconds: { train: (t1 - t0) / 1000, score: (t2 - t1) / 1000 },
  };
}

function argmaxOf(xs: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i]! > xs[best]!) best = i;
  return best;
}

/** Full and smoke sizes of both bets (one set of runs serves both). */
export const MIXTURE_SIZES: { full: MixtureSizes; smoke: MixtureSizes } = {
  full: { data: 'corpora', steps: 40, batch: 2, ctx: 128, lr: 1e-3, trainChars: 120_000, windows: 12, window: 128 },
  smoke: { data: 'fixtures', steps: 2, batch: 1, ctx: 32, lr: 1e-3, trainChars: 8_000, windows: 2, window: 32 },
};
