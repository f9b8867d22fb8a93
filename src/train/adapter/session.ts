// A base model opened once for adapter work: its weights dequantised to F32 in a backend buffer (frozen:
// never a trainable parameter), its tokenizer, its identity (content and tokenizer hashes). Adapters are
// trained on it and evaluated on it with the Trainer's graphs; many adapters share one session (the bets
// train and score dozens).
import { T } from '../../ggml/graph.ts';
import { type Ggml, getGgml } from '../../ggml/runtime.ts';
import { WeightSet } from '../../ggml/weights.ts';
import { Tokenizer } from '../../model/tokenizer.ts';
import type { ModelConfig, OptimConfig } from '../config.ts';
import { PRESETS } from '../config.ts';
import { TokenBatcher } from '../corpus.ts';
import { TrainError } from '../errors.ts';
import { loadGgufParams } from '../gguf-model.ts';
import { type TensorMap, elements, paramSpecs } from '../params.ts';
import { Trainer } from '../trainer.ts';
import { adapterBaseOf } from './base.ts';
import { type Adapter, type AdapterBase, type AdapterKind, checkAdapterBase } from './format.ts';
import { adapterSpecs, adapterTarget, initialAdapterTensors } from './targets.ts';

/** Adapter training settings, one comment each. */
export const ADAPTER_DEFAULTS = {
  /** Optimiser steps (a few KB of parameters learn in tens of steps). */
  steps: 60,
  /** Tokens per training row (shorter than the base's context: cheaper, and enough for style). */
  ctx: 128,
  /** Rows per step; a text needs at least batch * ctx + 1 tokens. */
  batch: 4,
  /** LoRA rank. */
  rank: 4,
  /** Peak learning rate per kind (AdamW, cosine decay, no weight decay). */
  lr: { norm: 1e-2, lora: 2e-3 } satisfies Record<AdapterKind, number>,
  /** Linear warmup steps (capped at a tenth of the run). */
  warmup: 5,
} as const;

export interface AdapterTrainSettings {
  kind: AdapterKind;
  /** LoRA rank (lora only; default ADAPTER_DEFAULTS.rank). LoRA alpha is the rank: the update scale is 1. */
  rank?: number;
  steps?: number;
  seed?: number;
  lr?: number;
  name?: string;
  signal?: AbortSignal;
  /** After each step (awaited between steps, so a server stays responsive). */
  onProgress?: (step: number, total: number, loss: number) => void;
}

export interface SessionOptions {
  threads?: number;
  /** Tokens per row (default ADAPTER_DEFAULTS.ctx, at most the base's context). */
  ctx?: number;
  /** Rows per step (default ADAPTER_DEFAULTS.batch). */
  batch?: number;
}

export class AdapterSession {
  readonly ggml: Ggml;
  readonly model: ModelConfig;
  readonly base: AdapterBase;
  readonly tokenizer: Tokenizer;
  readonly batch: number;
  /** Base weights, F32, frozen. */
  private readonly frozen: WeightSet;
  private readonly baseParams: TensorMap;
  private disposed = false;

  private constructor(ggml: Ggml, model: ModelConfig, base: AdapterBase, tokenizer: Tokenizer, baseParams: TensorMap, batch: number) {
    this.ggml = ggml;
    this.model = model;
    this.base = base;
    this.tokenizer = tokenizer;
    this.batch = batch;
    this.baseParams = baseParams;
    this.frozen = new WeightSet(ggml, paramSpecs(model).map((s) => ({ name: s.name, type: T.F32, ne: s.ne, matmul: false })));
    for (const [name, a] of baseParams) this.frozen.upload(name, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  }

  static async open(modelPath: string, o: SessionOptions = {}): Promise<AdapterSession> {
    const ggml = getGgml(o.threads === undefined ? {} : { threads: o.threads });
    const { model, params, file } = loadGgufParams(ggml, modelPath);
    file.dispose();
    const base = adapterBaseOf(modelPath);
    const ctx = Math.min(o.ctx ?? ADAPTER_DEFAULTS.ctx, model.nCtx);
    const tokenizer = await Tokenizer.load(modelPath);
    return new AdapterSession(ggml, { ...model, nCtx: ctx }, base, tokenizer, params, o.batch ?? ADAPTER_DEFAULTS.batch);
  }

  /** Tokens a training text needs at least: one batch of rows plus the last target. */
  get minTokens(): number {
    return this.batch * this.model.nCtx + 1;
  }

  /** The user's text as tokens, refusing empty, binary or too short text with a clear error. */
  encodeTrainingText(text: string): Int32Array {
    checkText(text);
    const ids = Int32Array.from(this.tokenizer.encode(text));
    if (ids.length < this.minTokens) {
      throw new TrainError('text too short to train an adapter', `at least ${this.minTokens} tokens (one batch of ${this.batch} rows of ${this.model.nCtx})`, `${ids.length} tokens`, 'give more text (a few pages at least)');
    }
    return ids;
  }

  /** Train an adapter on `tokens` (from encodeTrainingText, or any stream of this vocabulary). */
  async train(tokens: Int32Array, s: AdapterTrainSettings): Promise<Adapter> {
    const steps = s.steps ?? ADAPTER_DEFAULTS.steps;
    const seed = s.seed ?? 0;
    const rank = s.kind === 'lora' ? (s.rank ?? ADAPTER_DEFAULTS.rank) : 0;
    if (!Number.isInteger(steps) || steps < 1) throw new TrainError('bad step count', 'a whole number >= 1', String(steps), 'pass --steps N');
    if (s.kind === 'lora' && !(Number.isInteger(rank) && rank >= 1 && rank <= this.model.nEmbd)) {
      throw new TrainError('bad LoRA rank', `a whole number in 1..${this.model.nEmbd}`, String(rank), 'pass --rank R (e.g. 4)');
    }
    const batcher = new TokenBatcher(tokens, { batch: this.batch, ctx: this.model.nCtx, seed });
    const specs = adapterSpecs(this.model, s.kind, rank);
    const trainer = this.trainer(s.kind, rank, initialAdapterTensors(specs, this.baseParams, seed), steps, seed, s.lr);
    const losses: number[] = [];
    try {
      let epoch = 0;
      let it = batcher.epoch(epoch);
      while (trainer.step < steps) {
        if (s.signal?.aborted) throw new TrainError('adapter training cancelled', 'a finished run', `stopped at step ${trainer.step} of ${steps}`, 'start it again');
        let b = it.next();
        if (b.done) {
          it = batcher.epoch(++epoch);
          b = it.next();
        }
        const { loss } = trainer.trainStep(b.value!.input, b.value!.target);
        losses.push(loss);
        s.onProgress?.(trainer.step, steps, loss);
        await new Promise((r) => setImmediate(r));
      }
      const tensors = trainer.params.getParams();
      const few = Math.max(1, Math.min(5, Math.floor(losses.length / 2)));
      const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
      return {
        kind: s.kind, name: s.name ?? `${s.kind}-adapter`, base: { ...this.base },
        ...(s.kind === 'lora' ? { rank, alpha: rank } : {}),
        tensors, shapes: new Map(specs.map((p) => [p.name, p.ne])),
        training: { steps, seed, tokens: tokens.length, firstLoss: mean(losses.slice(0, few)), lastLoss: mean(losses.slice(-few)) },
      };
    } finally {
      trainer.dispose();
    }
  }

  /**
   * Mean negative log-likelihood (nats per token) of the model with `adapter` (null: the base) on a token
   * stream, in rows of the session's context; every token after the first is scored once.
   */
  evaluate(adapter: Adapter | null, tokens: Int32Array): { nll: number; count: number } {
    if (tokens.length < 2) throw new TrainError('text too short to evaluate', 'at least two tokens', String(tokens.length), 'give a longer text');
    const kind = adapter?.kind ?? 'norm';
    const rank = adapter?.rank ?? 0;
    if (adapter) checkAdapterBase(adapter, this.base);
    const specs = adapterSpecs(this.model, kind, rank);
    const init = adapter ? adapter.tensors : initialAdapterTensors(specs, this.baseParams, 0);
    const trainer = this.trainer(kind, rank, init, 1, 0, undefined, adapter?.alpha);
    try {
      return trainer.evalTokens(tokens, this.batch);
    } finally {
      trainer.dispose();
    }
  }

  private trainer(kind: AdapterKind, rank: number, init: TensorMap, steps: number, seed: number, lr?: number, alpha = rank): Trainer {
    const specs = adapterSpecs(this.model, kind, rank);
    for (const sp of specs) {
      const a = init.get(sp.name);
      if (!a || a.length !== elements(sp.ne)) throw new TrainError(`adapter tensor ${sp.name} missing or of the wrong size`, `${elements(sp.ne)} floats`, a ? String(a.length) : 'absent', 'the adapter was made for another model shape');
    }
    const optim: OptimConfig = {
      ...PRESETS.tiny.optim, batch: this.batch, steps, seed, lr: lr ?? ADAPTER_DEFAULTS.lr[kind],
      warmup: Math.max(1, Math.min(ADAPTER_DEFAULTS.warmup, Math.floor(steps / 10))), weightDecay: 0,
    };
    const scale = kind === 'lora' ? alpha / rank : 1;
    return new Trainer(this.ggml, this.model, optim, init, adapterTarget(kind, specs, this.frozen, scale));
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.frozen.dispose();
    await this.tokenizer.dispose();
  }
}

/** Refuse text that is empty or binary (NUL bytes, or more than a few undecodable characters). */
export function checkText(text: string): void {
  if (text.trim().length === 0) throw new TrainError('empty training text', 'some text', `${text.length} characters of whitespace`, 'give the text to train on');
  const nul = text.indexOf('\0');
  if (nul >= 0) throw new TrainError('binary training text', 'plain text without NUL characters', `a NUL at character ${nul}`, 'convert the file to plain UTF-8 text');
  let bad = 0;
  for (let i = text.indexOf('\uFFFD'); i >= 0; i = text.indexOf('\uFFFD', i + 1)) bad++;
  if (bad > MAX_REPLACEMENT_RATIO * text.length) {
    throw new TrainError('training text is not UTF-8 text', `at most ${MAX_REPLACEMENT_RATIO * 100}% undecodable characters`, `${bad} of ${text.length}`, 'convert the file to UTF-8 (e.g. `iconv -f latin1 -t utf-8`)');
  }
}

/** Share of U+FFFD (undecodable bytes) a training text may hold. */
const MAX_REPLACEMENT_RATIO = 0.01;
