// What Bets 04 and 18 share: specialists fine-tuned from SharedLLM-tiny on three domains, their random-split
// controls (BTM's), one model trained on the union, and the real mixture code (src/model/mixture/: the ggml
// Combiner, mixStep's Bayes update and shares) run over held-out windows, token by token.
//
// Data (full): three domain corpora of scripts/fetch-corpora.ts (Go source, the Spanish Bible, kernel
// documentation). Each domain's files are split once, by a hash of the file name (the same for every seed),
// into training files and held-out files. Training text: training files in seeded order, cut into chunks of
// CHUNK_CHARS characters, up to `trainChars` per domain. Held-out: the first `windows` windows of `window`
// tokens of the held-out files' text; the mixed-domain set: windows made of one segment of each domain (in
// rotating order), so the text moves between domains inside a window.
// Models per seed (all from the same base, same optimiser, `steps` steps of batch x ctx tokens each):
//   domain specialists  one per domain, on that domain's chunks;
//   random splits       the union of the three domains' chunks, shuffled with the seed, cut into three equal
//                       parts, one model per part (same data and compute as the specialists);
//   union model         all chunks, 3 x `steps` steps (the specialists' compute together).
// Smoke: the same code on test/fixtures/prose split into three pseudo-domains, a few steps.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { getGgml, type Ggml } from '../../src/ggml/runtime.ts';
import { Combiner, mixStep } from '../../src/model/mixture/combine.ts';
import { type MixtureMode, argmax, dropSpecialist, mixingWeights, uniformWeights } from '../../src/model/mixture/weights.ts';
import type { BpeTokenizer } from '../../src/train/bpe.ts';
import { type ModelConfig, type OptimConfig, PRESETS } from '../../src/train/config.ts';
import { hashString } from '../../src/train/corpus.ts';
import { BatchCursor } from '../../src/train/data.ts';
import { loadGgufParams } from '../../src/train/gguf-model.ts';
import type { TensorMap } from '../../src/train/params.ts';
import { type OwnedPart, partialTarget } from '../../src/train/partial.ts';
import { tokenizerFromGgufMetadata } from '../../src/train/tokenizer-gguf.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { ROOT } from './_common.ts';
import { shuffled } from './_stats.ts';

export const BASE_MODEL = join(ROOT, 'models', 'sharedllm-tiny.gguf');
const CHUNK_CHARS = 2000;

export interface MixtureSizes {
  /** 'corpora': data/corpora's go, spanish-bible, kernel-docs; 'fixtures': test/fixtures/prose in thirds. */
  data: 'corpora' | 'fixtures';
  /** Optimiser steps per specialist (the union model gets 3x). */
  steps: number;
  batch: number;
  /** Training and evaluation context (tokens per row). */
  ctx: number;
  lr: number;
  /** Characters of training text per domain. */
  trainChars: number;
  /** Held-out windows per domain and in the mixed set, of `window` tokens each. */
  windows: number;
  window: number;
  /** Also score the posterior mixture with this fixed share (Herbster & Warmuth's tracking of switches): Bet 19. */
  fixedShare?: number;
}

export interface Domain {
  name: string;
  train: string[];
  heldOut: string;
}

const CORPORA = ['go', 'spanish-bible', 'kernel-docs'] as const;

/** The three domains: training chunks (seeded order) and held-out text (fixed split by file name). */
export function loadDomains(sizes: MixtureSizes, seed: number): Domain[] {
  if (sizes.data === 'fixtures') {
    const dir = join(ROOT, 'test', 'fixtures', 'prose');
    const files = readdirSync(dir).filter((f) => f.endsWith('.txt')).sort();
    const third = Math.ceil(files.length / 3);
    return [0, 1, 2].map((d) => {
      const texts = files.slice(d * third, (d + 1) * third).map((f) => readFileSync(join(dir, f), 'utf8'));
      const all = texts.join('\n\n');
      const cut = Math.floor(all.length * 0.8);
      return { name: `prose-${d + 1}`, train: chunk(all.slice(0, cut)).slice(0, Math.ceil(sizes.trainChars / CHUNK_CHARS)), heldOut: all.slice(cut) };
    });
  }
  return CORPORA.map((name) => {
    const dir = join(ROOT, 'data', 'corpora', name);
    if (!existsSync(dir)) throw new Error(`corpus '${name}' is not at ${dir}. Fetch it first: node --import tsx scripts/fetch-corpora.ts --only ${name}`);
    const files = readdirSync(dir).filter((f) => f.endsWith('.txt')).sort();
    // Held out: 1 file in 10 by a hash of its name (at least one), the same for every seed.
    let held = files.filter((f) => hashString(f) % 10 === 0);
    if (held.length === 0) held = [files.at(-1)!];
    const heldSet = new Set(held);
    const heldOut = held.map((f) => readFileSync(join(dir, f), 'utf8')).join('\n\n').slice(0, 200_000);
    const train: string[] = [];
    let chars = 0;
    for (const f of shuffled(files.filter((x) => !heldSet.has(x)), seed)) {
      for (const c of chunk(readFileSync(join(dir, f), 'utf8'))) {
        train.push(c);
        chars += c.length;
        if (chars >= sizes.trainChars) return { name, train, heldOut };
      }
    }
    return { name, train, heldOut };
  });
}

function chunk(text: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += CHUNK_CHARS) out.push(text.slice(i, i + CHUNK_CHARS));
  return out;
}

/** One evaluation window: tokens, and the domain of each token (index into the domains). */
export interface Window {
  set: string;
  tokens: number[];
  domainOf: number[];
}

/** `windows` windows per domain, and as many mixed ones (one segment per domain, rotating order). */
export function evalWindows(domains: readonly Domain[], tok: BpeTokenizer, sizes: MixtureSizes): Window[] {
  const held = domains.map((d) => tok.encode(d.heldOut));
  const need = sizes.windows * sizes.window;
  for (const [i, h] of held.entries()) {
    if (h.length < 2 * need) throw new Error(`held-out text of ${domains[i]!.name} is ${h.length} tokens, fewer than the ${2 * need} the windows need`);
  }
  const out: Window[] = [];
  for (const [d, h] of held.entries()) {
    for (let w = 0; w < sizes.windows; w++) {
      out.push({ set: domains[d]!.name, tokens: h.slice(w * sizes.window, (w + 1) * sizes.window), domainOf: new Array<number>(sizes.window).fill(d) });
    }
  }
  // Mixed windows take their segments from the second half of each held-out text (not in the domain windows).
  const seg = Math.floor(sizes.window / domains.length);
  for (let w = 0; w < sizes.windows; w++) {
    const tokens: number[] = [];
    const domainOf: number[] = [];
    for (let s = 0; s < domains.length; s++) {
      const d = (w + s) % domains.length;
      const len = s === domains.length - 1 ? sizes.window - tokens.length : seg;
      const start = need + w * sizes.window + s * seg;
      tokens.push(...held[d]!.slice(start, start + len));
      domainOf.push(...new Array<number>(len).fill(d));
    }
    out.push({ set: 'mixed', tokens, domainOf });
  }
  return out;
}

export interface Base {
  ggml: Ggml;
  model: ModelConfig;
  params: TensorMap;
  tok: BpeTokenizer;
}

export function loadBase(ctx: number): Base {
  const ggml = getGgml({ threads: 1, gpu: 'off' });
  const { model, params, file } = loadGgufParams(ggml, BASE_MODEL);
  try {
    const tok = tokenizerFromGgufMetadata((k) => file.metadata.get(k) as never);
    return { ggml, model: { ...model, nCtx: ctx }, params, tok };
  } finally {
    file.dispose();
  }
}

/**
 * Fine-tune the base on `texts` for `steps` steps (every tensor, or with `own` only that part over the frozen
 * rest: Bet 69); the Trainer stays alive for its logits.
 */
export function fineTune(base: Base, texts: readonly string[], sizes: MixtureSizes, steps: number, seed: number, own?: OwnedPart): Trainer {
  const tokens: number[] = [];
  for (const t of texts) tokens.push(...base.tok.encode(t), base.tok.eosId);
  const optim: OptimConfig = { ...PRESETS.tiny.optim, batch: sizes.batch, steps, lr: sizes.lr, warmup: Math.max(1, Math.round(steps / 10)), seed };
  const trainer = new Trainer(base.ggml, base.model, optim, base.params, own && partialTarget(base.ggml, base.model, base.params, own));
  const cursor = new BatchCursor(Int32Array.from(tokens), sizes.batch, sizes.ctx, seed);
  for (let s = 0; s < steps; s++) {
    const b = cursor.next();
    trainer.trainStep(b.input, b.target);
  }
  return trainer;
}

/** The base itself, for its logits (no training steps). */
export function baseModel(base: Base, sizes: MixtureSizes): Trainer {
  const optim: OptimConfig = { ...PRESETS.tiny.optim, batch: sizes.batch, steps: 1, lr: sizes.lr, seed: 1 };
  return new Trainer(base.ggml, base.model, optim, base.params);
}

/** The three random-split parts of the union of the domains' chunks. */
export function randomSplits(domains: readonly Domain[], seed: number): string[][] {
  const all = shuffled(domains.flatMap((d) => d.train), seed ^ 0x5eed);
  const n = domains.length;
  return Array.from({ length: n }, (_, k) => all.filter((_, i) => i % n === k));
}

/** Per-token outcome of a group of K models mixed over one window (tokens 1..n-1 are predicted). */
export interface TokenScore {
  set: string;
  /** Domain of the predicted token. */
  domain: number;
  /** -log p(token) per mode, and per single model of the group (index k). */
  nll: Record<MixtureMode, number>;
  single: number[];
  /** Posterior mode: each model's share of the token, and the mixing weights before it. */
  shares: number[];
  weights: number[];
  /** Posterior mode with the top-attributed model removed, and with a random other one removed. */
  nllWithoutTop: number;
  nllWithoutRandom: number;
  /** With `fixedShare` (Bet 19): -log p(token) of the posterior mixture with that fixed share, and its top share's model. */
  fixedShare?: { nll: number; top: number };
}

/**
 * Mix a group's models over a window with the real combiner, in every mode, from a uniform prior (the
 * window is the text being generated: the weights follow it token by token).
 */
export function scoreWindow(combiner: Combiner, logits: readonly Float32Array[][], win: Window, rng: () => number, fixedShare?: number): TokenScore[] {
  const K = logits.length;
  const out: TokenScore[] = [];
  let fsPosterior = uniformWeights(K);
  const posteriors: Record<MixtureMode, Float64Array> = { posterior: uniformWeights(K), uniform: uniformWeights(K), top1: uniformWeights(K) };
  for (let t = 0; t + 1 < win.tokens.length; t++) {
    const token = win.tokens[t + 1]!;
    const rows = logits.map((l) => l[t]!);
    const nll = {} as Record<MixtureMode, number>;
    let main: TokenScore | undefined;
    for (const mode of ['posterior', 'uniform', 'top1'] as const) {
      // Exact Bayes (fixed share 0), as Bets 04 and 18 were run, whatever the serving default is.
      const step = mixStep(combiner, posteriors[mode], rows, mode, 0);
      nll[mode] = -step.mixed.logits[token]!;
      const weights = step.mixed.weights;
      const a = step.attribute(token);
      if (mode === 'posterior') {
        const top = argmax(a.shares);
        const others = [...Array(K).keys()].filter((k) => k !== top);
        const other = others[Math.floor(rng() * others.length)]!;
        // dropSpecialist gives the K-1 other weights renormalised: pair them with the K-1 other likelihoods.
        const without = (k: number) => -Math.log(Math.max(1e-30, dot(dropSpecialist(weights, k), [...a.likelihoods].filter((_, j) => j !== k))));
        main = {
          set: win.set, domain: win.domainOf[t + 1]!, nll, single: [...a.likelihoods].map((p) => -Math.log(Math.max(1e-30, p))),
          shares: [...a.shares], weights: [...mixingWeights(posteriors.posterior, 'posterior')], nllWithoutTop: without(top), nllWithoutRandom: without(other),
        };
      }
      posteriors[mode] = a.posterior;
    }
    if (fixedShare !== undefined) {
      const step = mixStep(combiner, fsPosterior, rows, 'posterior', fixedShare);
      const a = step.attribute(token);
      main!.fixedShare = { nll: -step.mixed.logits[token]!, top: argmax(a.shares) };
      fsPosterior = a.posterior;
    }
    out.push(main!);
  }
  return out;
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** -log p(next token) of one model over a window (a one-model mixture: the same ggml softmax). */
export function singleNll(combiner: Combiner, logits: readonly Float32Array[], win: Window): number[] {
  const one = Float64Array.of(1);
  const out: number[] = [];
  for (let t = 0; t + 1 < win.tokens.length; t++) {
    const step = mixStep(combiner, one, [logits[t]!], 'posterior');
    out.push(-step.mixed.logits[win.tokens[t + 1]!]!);
  }
  return out;
}

/** Logits rows (V each) of a model over every window. */
export function windowLogits(model: Trainer, windows: readonly Window[]): Float32Array[][] {
  return windows.map((w) => model.logits(w.tokens).map((r) => Float32Array.from(r)));
}

export const meanOf = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
export const ppl = (nlls: readonly number[]): number => Math.exp(meanOf(nlls));

export { Combiner };
