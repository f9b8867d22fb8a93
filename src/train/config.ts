// What is trained and how: the model's shape (a llama-family decoder), the optimisation settings, and the
// named presets, one comment per setting.
import { TrainError } from './errors.ts';

/** A llama-architecture decoder: pre-norm blocks of RoPE attention and SwiGLU feed-forward, RMSNorm. */
export interface ModelConfig {
  /** Tokens in the vocabulary (the trained tokenizer's size). */
  nVocab: number;
  /** Training context: tokens per row; also written as llama.context_length. */
  nCtx: number;
  /** Width of the residual stream. */
  nEmbd: number;
  nLayer: number;
  nHead: number;
  /** Key/value heads (grouped-query attention when < nHead). */
  nHeadKv: number;
  /** Hidden width of the SwiGLU feed-forward. */
  nFf: number;
  ropeBase: number;
  rmsEps: number;
}

/** How the optimiser runs. */
export interface OptimConfig {
  /** Rows (sequences of nCtx tokens) per optimiser step. */
  batch: number;
  /** Total optimiser steps; the learning-rate schedule spans them. */
  steps: number;
  /** Peak learning rate, reached after `warmup` steps. */
  lr: number;
  /** Linear warmup steps from lr/warmup to lr. */
  warmup: number;
  /** The cosine decay ends at lr * minLrRatio at the last step. */
  minLrRatio: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** AdamW decoupled weight decay of matrices (norm gains are not decayed). */
  weightDecay: number;
  /** Clip the global gradient norm to this (0 disables). */
  clip: number;
  /** Seeds the initial weights and the order of training windows. */
  seed: number;
}

export interface Preset {
  model: Omit<ModelConfig, 'nVocab'>;
  /** Vocabulary size of the BPE tokenizer trained for this preset. */
  vocabSize: number;
  optim: Omit<OptimConfig, 'steps' | 'seed'>;
  /** Default number of steps. */
  steps: number;
}

const ADAMW = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, clip: 1, minLrRatio: 0.1 } as const;

export const PRESET_NAMES = ['tiny', 'small', '30m'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

export const PRESETS: Record<PresetName, Preset> = {
  // ~7.2M parameters: trains on a 2-core laptop in tens of minutes (SharedLLM-tiny).
  tiny: {
    model: { nCtx: 256, nEmbd: 256, nLayer: 6, nHead: 8, nHeadKv: 8, nFf: 768, ropeBase: 10000, rmsEps: 1e-5 },
    vocabSize: 4096,
    optim: { batch: 8, lr: 2e-3, warmup: 50, ...ADAMW },
    steps: 1000,
  },
  // ~17M parameters.
  small: {
    model: { nCtx: 512, nEmbd: 384, nLayer: 6, nHead: 6, nHeadKv: 6, nFf: 1024, ropeBase: 10000, rmsEps: 1e-5 },
    vocabSize: 8192,
    optim: { batch: 8, lr: 1.5e-3, warmup: 100, ...ADAMW },
    steps: 2000,
  },
  // ~33M parameters.
  '30m': {
    model: { nCtx: 512, nEmbd: 512, nLayer: 8, nHead: 8, nHeadKv: 8, nFf: 1344, ropeBase: 10000, rmsEps: 1e-5 },
    vocabSize: 8192,
    optim: { batch: 8, lr: 1e-3, warmup: 200, ...ADAMW },
    steps: 4000,
  },
};

export function headDim(m: ModelConfig): number {
  return m.nEmbd / m.nHead;
}

/** Check the shape is one ggml and llama.cpp can run, and Q8_0 can store (rows in blocks of 32). */
export function validateModelConfig(m: ModelConfig): void {
  const bad = (what: string, expected: string, actual: string) => {
    throw new TrainError(`bad model shape: ${what}`, expected, actual, 'pick a preset or fix the shape');
  };
  for (const [k, v] of Object.entries(m)) if (!(Number.isFinite(v) && v > 0)) bad(k, 'a positive number', String(v));
  if (m.nEmbd % m.nHead !== 0) bad('nEmbd / nHead', 'a whole head size', `${m.nEmbd} / ${m.nHead}`);
  if (headDim(m) % 2 !== 0) bad('head size', 'even (RoPE rotates pairs)', String(headDim(m)));
  if (m.nHead % m.nHeadKv !== 0) bad('nHead / nHeadKv', 'a whole number of query heads per KV head', `${m.nHead} / ${m.nHeadKv}`);
  if (m.nEmbd % 32 !== 0 || m.nFf % 32 !== 0) bad('nEmbd and nFf', 'multiples of 32 (Q8_0 blocks)', `${m.nEmbd}, ${m.nFf}`);
}

/** Trainable parameters: embeddings, per layer 4 attention + 3 FFN matrices + 2 norms, final norm, head. */
export function paramCount(m: ModelConfig): number {
  const kv = headDim(m) * m.nHeadKv;
  const layer = m.nEmbd * (2 * m.nEmbd + 2 * kv) + 3 * m.nEmbd * m.nFf + 2 * m.nEmbd;
  return 2 * m.nVocab * m.nEmbd + m.nLayer * layer + m.nEmbd;
}

/**
 * Training FLOPs per token: 6 per parameter (forward 2, backward 4; the embedding lookup is counted as a
 * matmul, as llm.c and PaLM do) plus attention's score and value products, 6 * 2 * nLayer * nCtx * nEmbd
 * over a full row (half of it masked, counted anyway, as is usual).
 */
export function trainFlopsPerToken(m: ModelConfig): number {
  return 6 * paramCount(m) + 12 * m.nLayer * m.nCtx * m.nEmbd;
}

export function presetConfig(name: PresetName, nVocab: number): ModelConfig {
  return { ...PRESETS[name].model, nVocab };
}
