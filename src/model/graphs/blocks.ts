// Building blocks shared by the architectures' graph builders: input, RMS norm (with per-sequence
// overrides), attention over each sequence's KV cache, the SwiGLU feed-forward, and the head.
//
// Shapes are ggml's, innermost first: (n_embd, n_tokens) is n_tokens columns of n_embd floats.
import { type Graph, type RopeParams, T } from '../../ggml/graph.ts';
import { type Tensor, tensorShape } from '../../ggml/tensor.ts';
import type { WeightSet } from '../../ggml/weights.ts';
import { type Group, causalMask } from '../batch.ts';
import type { GainBank } from '../gain-bank.ts';
import type { HParams } from '../hparams.ts';
import { OUTPUT, OUTPUT_NORM, ROPE_FREQS, TOKEN_EMBD } from '../tensors.ts';

export interface BuildContext {
  g: Graph;
  h: HParams;
  w: WeightSet;
  groups: readonly Group[];
  nTokens: number;
  /** (n_tokens) I32: rope position of each row. */
  pos: Tensor;
  rope: RopeParams;
  /** llama3-style rope frequency factors, when the file has them. */
  ropeFreqs: Tensor | null;
  /** Per-sequence norm gains on the backend (adapters): a row per adapted sequence (its cache's gainSlot). */
  gains: GainBank;
  /** Per row -> group array (built once per step, shared by the norms over those rows): its (n_rows) I32
   * row -> gain slot input, and when small enough every norm's gains of those rows, (slot_floats, n_rows). */
  gainRows: Map<Int32Array, { slots: Tensor; all?: Tensor }>;
  /** Per group: (n_kv, n) F16 causal mask, built once per step and shared by every layer. */
  masks: Tensor[];
  /**
   * Which of the head's rows get logits: undefined for all of them; otherwise (n_logits) I32 indices into
   * them, or null for none (the other rows are pooled into embeddings from the head's `normed` output).
   */
  logitRows?: Tensor | null;
}

export function ropeParams(h: HParams): RopeParams {
  return { nDims: h.nRot, mode: h.ropeType, nCtxOrig: h.nCtxTrain, freqBase: h.ropeFreqBase, freqScale: h.ropeFreqScale, extFactor: 0, attnFactor: 1, betaFast: 32, betaSlow: 1 };
}

export function makeMasks(g: Graph, h: HParams, groups: readonly Group[]): Tensor[] {
  return groups.map((gr) => g.input(T.F16, [gr.pos0 + gr.n, gr.n], causalMask(gr.pos0, gr.n, h.slidingWindow)));
}

/** First stage: token ids -> embeddings (n_embd, n_tokens); later stages: the hidden states given. */
export function inputLayer(c: BuildContext, tokens: Int32Array | undefined, hidden: Float32Array | undefined): Tensor {
  if (tokens) {
    const ids = c.g.input(T.I32, [tokens.length], tokens);
    return c.g.getRows(c.w.get(TOKEN_EMBD), ids); // (n_embd, n_tokens)
  }
  return c.g.input(T.F32, [c.h.nEmbd, c.nTokens], hidden!); // (n_embd, n_tokens)
}

/**
 * rms_norm(x) * gain. `rowGroup[r]` is the group of row r; when a group's sequence has a per-user adapter,
 * every row takes its own gains from the GainBank (uploaded once per sequence): one get_rows gathers all the
 * norms' gains of a step's rows (a view per norm), or, above GainBank.gatherAllBytes, one per norm.
 */
export function rmsNorm(c: BuildContext, x: Tensor, name: string, rowGroup: Int32Array): Tensor {
  const bank = c.groups.some((gr) => gr.cache.gainSlot > 0) ? c.gains.tensor() : undefined;
  const at = c.gains.slice(name);
  if (!bank || at === undefined) return c.g.mul(c.g.rmsNorm(x, c.h.rmsEps), c.w.get(name)); // (n_embd, n_rows)
  const { g } = c;
  const n = c.gains.slotFloats;
  const { off, len } = at;
  let rows = c.gainRows.get(rowGroup);
  if (!rows) {
    const idx = Int32Array.from(rowGroup, (gi) => c.groups[gi]!.cache.gainSlot);
    const slots = g.input(T.I32, [idx.length], idx); // (n_rows)
    rows = n * 4 * idx.length <= c.gains.gatherAllBytes ? { slots, all: g.getRows(bank, slots) } : { slots }; // all: (slot_floats, n_rows)
    c.gainRows.set(rowGroup, rows);
  }
  const gains = rows.all
    ? g.view2d(rows.all, len, rowGroup.length, n * 4, off * 4) // (n_embd, n_rows), rows n floats apart
    : g.getRows(g.view2d(bank, len, tensorShape(bank)[1], n * 4, off * 4), rows.slots); // (n_embd, n_rows)
  // gains first, so that rms_norm comes right before the mul in the graph and ggml fuses them as on the base.
  return g.mul(gains, g.rmsNorm(x, c.h.rmsEps)); // (n_embd, n_rows)
}

/**
 * Attention of every group over its own cache. q: (headDim, nHead, n_tokens), k and v:
 * (headDim, nHeadKv, n_tokens), already roped. Writes k, v into the caches at each group's positions,
 * then flash-attends. Returns (headDim * nHead, n_tokens).
 */
export function attention(c: BuildContext, il: number, q: Tensor, k: Tensor, v: Tensor, kqScale: number): Tensor {
  const { g, h } = c;
  const width = h.headDim * h.nHeadKv;
  const qRow = h.headDim * 4;
  const kvRow = h.headDim * 4;
  let out: Tensor | undefined;
  c.groups.forEach((gr, gi) => {
    const cache = gr.cache.layer(il);
    // this group's rows of q, k, v
    const qg = g.view3d(q, h.headDim, h.nHead, gr.n, qRow, qRow * h.nHead, gr.offset * qRow * h.nHead); // (headDim, nHead, n)
    const kg = g.view3d(k, h.headDim, h.nHeadKv, gr.n, kvRow, kvRow * h.nHeadKv, gr.offset * kvRow * h.nHeadKv); // (headDim, nHeadKv, n)
    const vg = g.view3d(v, h.headDim, h.nHeadKv, gr.n, kvRow, kvRow * h.nHeadKv, gr.offset * kvRow * h.nHeadKv);
    // store them as rows pos0 .. pos0+n-1 of the F16 cache (expanded first: the reads below come after)
    const rowBytes = width * 2;
    g.expand(g.cpy(kg, g.view2d(cache.k, width, gr.n, rowBytes, gr.pos0 * rowBytes)));
    g.expand(g.cpy(vg, g.view2d(cache.v, width, gr.n, rowBytes, gr.pos0 * rowBytes)));
    const nKv = gr.pos0 + gr.n;
    const K = g.permute(g.view3d(cache.k, h.headDim, h.nHeadKv, nKv, h.headDim * 2, rowBytes, 0), 0, 2, 1, 3); // (headDim, nKv, nHeadKv)
    const V = g.permute(g.view3d(cache.v, h.headDim, h.nHeadKv, nKv, h.headDim * 2, rowBytes, 0), 0, 2, 1, 3); // (headDim, nKv, nHeadKv)
    const Q = g.permute(qg, 0, 2, 1, 3); // (headDim, n, nHead)
    const o = g.flashAttnExt(Q, K, V, c.masks[gi]!, kqScale); // (headDim, nHead, n)
    g.precF32(o);
    const o2 = g.reshape(o, h.headDim * h.nHead, gr.n); // (headDim * nHead, n)
    out = out === undefined ? o2 : g.concat(out, o2, 1);
  });
  return out!;
}

/** SwiGLU feed-forward with separate gate and up matrices: down(silu(gate x) * up x). */
export function ffnSwiglu(c: BuildContext, x: Tensor, il: number): Tensor {
  const { g, w } = c;
  const gate = g.mulMat(w.get(`blk.${il}.ffn_gate.weight`), x); // (n_ff, n_rows)
  const up = g.mulMat(w.get(`blk.${il}.ffn_up.weight`), x); // (n_ff, n_rows)
  return g.mulMat(w.get(`blk.${il}.ffn_down.weight`), g.swigluSplit(gate, up)); // (n_embd, n_rows)
}

export interface HeadOutput {
  /** (n_embd, n_out) the final hidden states after the final norm. */
  normed: Tensor;
  /** (n_vocab, n_logits) logits of the rows `c.logitRows` selects (all by default); absent for none. */
  logits?: Tensor;
}

/** Final norm and output projection: (n_embd, n_out) -> logits (n_vocab, n_out). */
export function head(c: BuildContext, x: Tensor, rowGroup: Int32Array): HeadOutput {
  const normed = rmsNorm(c, x, OUTPUT_NORM, rowGroup); // (n_embd, n_out)
  if (c.logitRows === null) return { normed };
  const rows = c.logitRows === undefined ? normed : c.g.getRows(normed, c.logitRows); // (n_embd, n_logits)
  return { normed, logits: c.g.mulMat(c.w.get(OUTPUT), rows) }; // (n_vocab, n_logits)
}

export function ropeFreqs(w: WeightSet): Tensor | null {
  return w.has(ROPE_FREQS) ? w.get(ROPE_FREQS) : null;
}

/** Row -> group index, for the rows of a batch. */
export function rowGroups(groups: readonly Group[], nTokens: number): Int32Array {
  const rg = new Int32Array(nTokens);
  groups.forEach((gr, gi) => rg.fill(gi, gr.offset, gr.offset + gr.n));
  return rg;
}
