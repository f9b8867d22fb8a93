// A step's batch: tokens (or hidden states) of one or more sequences, and the host-side inputs the graph
// needs (positions, causal masks, output rows, per-row adapter choice). Building masks here is input
// preparation, as in llama.cpp's `set_input`; all model math stays in ggml.
import type { SequenceCache } from './kv-cache.ts';

/**
 * What a part holding the head returns for a sequence's tokens: the logits of the last token or of every
 * token, nothing, or 'pooled': ONE row of n_embd floats, the mean over the step's tokens of the final
 * hidden states after the final norm (what /v1/embeddings serves).
 */
export type LogitsWanted = 'last' | 'all' | 'none' | 'pooled';

export interface SeqInput {
  seq: number;
  /** Token ids (for a part holding the embeddings). */
  tokens?: Int32Array;
  /** Or hidden states, n_embd x n floats, token-major (for a part starting mid-model). */
  hidden?: Float32Array;
  /** Which logits to return (parts holding the head). Default 'last'. */
  logits?: LogitsWanted;
}

export interface Group {
  cache: SequenceCache;
  /** First row of this group in the batch. */
  offset: number;
  n: number;
  /** Position of the first token (the cache length before this step). */
  pos0: number;
  logits: LogitsWanted;
}

export const F16_NEG_INF = 0xfc00;

/** Rope positions for every row of the batch. */
export function positions(groups: readonly Group[], nTokens: number): Int32Array {
  const pos = new Int32Array(nTokens);
  for (const g of groups) for (let i = 0; i < g.n; i++) pos[g.offset + i] = g.pos0 + i;
  return pos;
}

/**
 * Causal mask of one group, F16 (nKv, n): row i (token at pos0 + i) sees cache rows j <= pos0 + i, and
 * with a sliding window only those with pos - j < window (llama.cpp's LLAMA_SWA_TYPE_STANDARD).
 */
export function causalMask(pos0: number, n: number, slidingWindow: number): Uint16Array {
  const nKv = pos0 + n;
  const m = new Uint16Array(nKv * n);
  for (let i = 0; i < n; i++) {
    const p = pos0 + i;
    const row = m.subarray(i * nKv, (i + 1) * nKv);
    if (p + 1 < nKv) row.fill(F16_NEG_INF, p + 1);
    if (slidingWindow > 0 && p - slidingWindow >= 0) row.fill(F16_NEG_INF, 0, p - slidingWindow + 1);
  }
  return m;
}

/** Rows the head reads (logits, or pooled hidden states), in batch order, and how many each group contributes. */
export function outputRows(groups: readonly Group[]): { rows: Int32Array; perGroup: number[] } {
  const rows: number[] = [];
  const perGroup: number[] = [];
  for (const g of groups) {
    const every = g.logits === 'all' || g.logits === 'pooled';
    if (every) for (let i = 0; i < g.n; i++) rows.push(g.offset + i);
    else if (g.logits === 'last') rows.push(g.offset + g.n - 1);
    perGroup.push(every ? g.n : g.logits === 'last' ? 1 : 0);
  }
  return { rows: Int32Array.from(rows), perGroup };
}
