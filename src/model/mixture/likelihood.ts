// The router's evidence: log p_k(prompt) under one specialist, from the logits of its prefill ('all' rows),
// as ggml's cross-entropy over chunks of rows (softmax over the vocabulary is vector work: it stays in ggml);
// and the same per token (teacher-forced scoring, score.ts).
//
//   rows i = 0..n-2 predict token i+1:  log p(prompt) = Σ_i log softmax(logits_i)[prompt_{i+1}]
//   cross_entropy_loss(logits (V, r), one-hot (V, r)) = -(1/r) Σ_i log softmax(logits_i)[t_i]
//   per token: softmax (V, r) viewed as (1, V·r) rows, get_rows at i·V + t_i, log  -> (1, r)
import { Executor } from '../../ggml/executor.ts';
import { Graph, T, readF32 } from '../../ggml/graph.ts';
import type { Ggml } from '../../ggml/runtime.ts';
import { MixtureError } from './weights.ts';

export const LIKELIHOOD_CONFIG = {
  /** Rows per graph (the one-hot labels are V x rows floats: 256 x 32k = 32 MiB). */
  rowsPerGraph: 256,
  /**
   * log p of a token whose f32 softmax underflowed to 0 (a logit ~87 below the best): log of the smallest
   * f32 subnormal. Only per-token scores use it; promptLogLikelihood's cross-entropy is exact there.
   */
  logFloor: Math.log(1.401298464324817e-45),
} as const;

/**
 * log p(prompt[1..]) given prompt[0]: `rows[i]` are the logits after prompt[0..i] (V floats each; the
 * prefill with logits 'all' gives prompt.length rows, the last one predicts the first generated token and
 * is not read here). A one-token prompt has log-likelihood 0 (no evidence).
 */
export function promptLogLikelihood(ggml: Ggml, rows: readonly Float32Array[], prompt: readonly number[]): number {
  const n = prompt.length - 1;
  if (n <= 0) return 0;
  if (rows.length < n) throw new MixtureError('too few logits rows for the prompt', `at least ${n}`, String(rows.length), "prefill with logits: 'all'");
  const V = rows[0]!.length;
  const executor = new Executor(ggml, 16);
  try {
    let total = 0;
    for (let first = 0; first < n; first += LIKELIHOOD_CONFIG.rowsPerGraph) {
      const r = Math.min(LIKELIHOOD_CONFIG.rowsPerGraph, n - first);
      const logits = new Float32Array(V * r);
      const labels = new Float32Array(V * r);
      for (let i = 0; i < r; i++) {
        const row = rows[first + i]!;
        const target = prompt[first + i + 1]!;
        if (row.length !== V) throw new MixtureError('logits rows differ in length', String(V), String(row.length), 'this is a bug in the caller');
        if (!Number.isInteger(target) || target < 0 || target >= V) throw new MixtureError('prompt token outside the vocabulary', `0 <= token < ${V}`, String(target), 'specialists must share the tokenizer');
        logits.set(row, i * V);
        labels[i * V + target] = 1;
      }
      const g = new Graph(ggml, 16);
      try {
        const loss = g.crossEntropyLoss(g.input(T.F32, [V, r], logits), g.input(T.F32, [V, r], labels)); // (1)
        g.output(loss);
        g.expand(loss);
        executor.run(g);
        total += -readF32(ggml, loss, 1)[0]! * r;
      } finally {
        g.dispose();
      }
    }
    return total;
  } finally {
    executor.dispose();
  }
}

/**
 * log p(tokens[i+1] | tokens[..i]) for i = 0..n-2 (n-1 values), from the 'all' rows of a prefill of `tokens`
 * (rows[i] after tokens[0..i]). Underflowed probabilities read as LIKELIHOOD_CONFIG.logFloor.
 */
export function tokenLogLikelihoods(ggml: Ggml, rows: readonly Float32Array[], tokens: readonly number[]): Float64Array {
  const n = tokens.length - 1;
  const out = new Float64Array(Math.max(0, n));
  if (n <= 0) return out;
  if (rows.length < n) throw new MixtureError('too few logits rows for the text', `at least ${n}`, String(rows.length), "prefill with logits: 'all'");
  const V = rows[0]!.length;
  const executor = new Executor(ggml, 16);
  try {
    for (let first = 0; first < n; first += LIKELIHOOD_CONFIG.rowsPerGraph) {
      const r = Math.min(LIKELIHOOD_CONFIG.rowsPerGraph, n - first);
      const logits = new Float32Array(V * r);
      const picks = new Int32Array(r);
      for (let i = 0; i < r; i++) {
        const row = rows[first + i]!;
        const target = tokens[first + i + 1]!;
        if (row.length !== V) throw new MixtureError('logits rows differ in length', String(V), String(row.length), 'this is a bug in the caller');
        if (!Number.isInteger(target) || target < 0 || target >= V) throw new MixtureError('token outside the vocabulary', `0 <= token < ${V}`, String(target), 'specialists must share the tokenizer');
        logits.set(row, i * V);
        picks[i] = i * V + target;
      }
      const g = new Graph(ggml, 16);
      try {
        const probs = g.softMaxExt(g.input(T.F32, [V, r], logits), null, 1, 0); // (V, r)
        const picked = g.getRows(g.reshape(probs, 1, V * r), g.input(T.I32, [r], picks)); // (1, r) p_i(t_i)
        const logp = g.log(picked); // (1, r)
        g.output(logp);
        g.expand(logp);
        executor.run(g);
        const got = readF32(ggml, logp, r);
        for (let i = 0; i < r; i++) out[first + i] = Number.isFinite(got[i]!) ? got[i]! : LIKELIHOOD_CONFIG.logFloor;
      } finally {
        g.dispose();
      }
    }
    return out;
  } finally {
    executor.dispose();
  }
}
