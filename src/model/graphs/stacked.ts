// One step of K models of the same shape at once (a stacked model, src/model/stacked-model.ts): every weight
// carries the models as its last dimension, so each operation of the llama graph runs once for all K, and the
// graph has the node count of one model. ggml's mul_mat batches over that dimension ((in, out, K) x
// (in, n, K) -> (out, n, K)), get_rows picks each model's embeddings, rope and flash attention iterate over
// it, and norms' gains (n, 1, K) broadcast over the tokens. This is how a mixture of local specialists steps
// in one graph (issue 13: decode of 3 specialists within 1.3x of one model).
//
// The KV cache of a sequence is one SequenceCache of K * nCtx rows per layer: model m's positions are rows
// m * nCtx .. m * nCtx + nCtx - 1 (a shared trunk layer uses model 0's rows only).
// Models that share a trunk (their first layers byte-identical: specialists fine-tuned on their top layers)
// run it once: what they share costs what it costs one model. Shapes are ggml's, innermost first; K is the models' count.
import { type Graph, type RopeParams, T } from '../../ggml/graph.ts';
import { type Tensor, tensorShape } from '../../ggml/tensor.ts';
import type { WeightSet } from '../../ggml/weights.ts';
import { concatTyped } from '../../util/typed-arrays.ts';
import { causalMask } from '../batch.ts';
import type { HParams } from '../hparams.ts';
import type { SequenceCache } from '../kv-cache.ts';
import { OUTPUT, OUTPUT_NORM, TOKEN_EMBD } from '../tensors.ts';

export interface StackedSeqInput {
  cache: SequenceCache;
  tokens: Int32Array;
  pos0: number;
}

export interface StackedBuild {
  g: Graph;
  h: HParams;
  /** Stacked weights: (.., .., K) each; rope_freqs (when present) unstacked. */
  w: WeightSet;
  /** Models in the stack. */
  k: number;
  /** Positions per model in the cache (its rows per model). */
  nCtx: number;
  /** The sequences of the step, each with its own cache: its tokens (the same text for every model) and the position of the first. */
  seqs: readonly StackedSeqInput[];
  rope: RopeParams;
  ropeFreqs: Tensor | null;
  /**
   * The trunk the models share (byte-identical tensors, loaded once, unstacked): the embeddings, and the
   * first `layers` layers when the embeddings are shared. It runs once for all K; the rest runs stacked.
   */
  shared: { embeddings: boolean; layers: number };
  /** Weights stacked per model, (.., .., K); the others (identical in every model) are loaded once. */
  perModel: ReadonlySet<string>;
}

/**
 * Builds one step over one or more sequences (their tokens side by side, n in all); returns every model's
 * logits of every token, (n_vocab, n, K).
 */
export function buildStacked(s: StackedBuild): Tensor {
  const { g, h, w, k: K } = s;
  const tokens = concatTyped(Int32Array, s.seqs.map((q) => q.tokens));
  const n = tokens.length;
  const ids = new Int32Array(n * K);
  for (let m = 0; m < K; m++) ids.set(tokens, m * n);
  const offsets = s.seqs.map((_, i) => s.seqs.slice(0, i).reduce((a, q) => a + q.tokens.length, 0));
  const trunk = s.shared.embeddings ? s.shared.layers : 0;
  // (n_embd, n) once for a shared embedding table, else (n_embd, n, K)
  let x = s.shared.embeddings ? g.getRows(w.get(TOKEN_EMBD), g.input(T.I32, [n], tokens)) : g.getRows(w.get(TOKEN_EMBD), g.input(T.I32, [n, K], ids));
  // From the first layer the models do not share: every model's own copy of the trunk's output.
  const branch = () => g.repeat(x, g.newTensor(T.F32, [h.nEmbd, n, K])); // (n_embd, n) -> (n_embd, n, K)
  const pos = g.input(T.I32, [n], concatTyped(Int32Array, s.seqs.map((q) => Int32Array.from(q.tokens, (_, i) => q.pos0 + i)))); // (n)
  // per sequence: (n_kv, n_seq), shared by the K models and every layer
  const masks = s.seqs.map((q) => g.input(T.F16, [q.pos0 + q.tokens.length, q.tokens.length], causalMask(q.pos0, q.tokens.length, h.slidingWindow)));
  const norm = (t: Tensor, name: string) => g.mul(g.rmsNorm(t, h.rmsEps), w.get(name)); // gains (n_embd, 1, K) or (n_embd)
  // x @ W: stacked W (in, out, K) batches over the models; a W they share (in, out) is read once, for the
  // n * K columns of the models' inputs side by side.
  const mm = (name: string, t: Tensor, kl: number): Tensor => {
    if (s.perModel.has(name) || kl === 1) return g.mulMat(w.get(name), t); // (out, n, kl)
    const [nIn] = tensorShape(t);
    const out = g.mulMat(w.get(name), g.reshape(t, nIn, n * kl)); // (out, n * kl)
    return g.reshape(out, tensorShape(out)[0], n, kl); // (out, n, kl)
  };
  const bias = h.arch === 'qwen2';
  const width = h.headDim * h.nHeadKv;
  const rowBytes = width * 2; // F16 cache rows
  const modelBytes = s.nCtx * rowBytes; // one model's rows
  for (let il = 0; il < h.nLayer; il++) {
    if (s.shared.embeddings && il === trunk) x = branch();
    const kl = il < trunk ? 1 : K; // models this layer runs for (1: the shared trunk)
    const L = (name: string) => w.get(`blk.${il}.${name}`);
    const cur = norm(x, `blk.${il}.attn_norm.weight`); // (n_embd, n, K)
    let q = mm(`blk.${il}.attn_q.weight`, cur, kl); // (headDim * nHead, n, K)
    let k = mm(`blk.${il}.attn_k.weight`, cur, kl); // (width, n, K)
    let v = mm(`blk.${il}.attn_v.weight`, cur, kl); // (width, n, K)
    if (bias) {
      q = g.add(q, L('attn_q.bias')); // bias (.., 1, K)
      k = g.add(k, L('attn_k.bias'));
      v = g.add(v, L('attn_v.bias'));
    }
    q = g.rope(g.reshape(q, h.headDim, h.nHead, n, kl), pos, s.ropeFreqs, s.rope); // (headDim, nHead, n, K)
    k = g.rope(g.reshape(k, h.headDim, h.nHeadKv, n, kl), pos, s.ropeFreqs, s.rope); // (headDim, nHeadKv, n, K)
    const kAll = g.reshape(k, width, n, kl); // (width, n, K)
    const vAll = g.reshape(v, width, n, kl);
    let attnIn: Tensor | undefined; // (headDim * nHead, n, K), the sequences' rows side by side
    s.seqs.forEach((sq, i) => {
      const cache = sq.cache.layer(il);
      const [o0, ns, nKv] = [offsets[i]!, sq.tokens.length, sq.pos0 + sq.tokens.length];
      const one = s.seqs.length === 1;
      // this sequence's rows: (width, n_seq, K) of k and v, (headDim, nHead, n_seq, K) of q
      const rows = (t: Tensor) => (one ? t : g.view3d(t, width, ns, kl, width * 4, width * 4 * n, o0 * width * 4));
      const qs = one ? q : g.view4d(q, [h.headDim, h.nHead, ns, kl], [h.headDim * 4, h.headDim * h.nHead * 4, h.headDim * h.nHead * 4 * n], o0 * h.headDim * h.nHead * 4);
      // rows pos0 .. pos0 + n_seq - 1 of each model's part of its cache (expanded first: the reads below come after)
      g.expand(g.cpy(rows(kAll), g.view3d(cache.k, width, ns, kl, rowBytes, modelBytes, sq.pos0 * rowBytes)));
      g.expand(g.cpy(rows(vAll), g.view3d(cache.v, width, ns, kl, rowBytes, modelBytes, sq.pos0 * rowBytes)));
      const view = (t: Tensor) => g.permute(g.view4d(t, [h.headDim, h.nHeadKv, nKv, kl], [h.headDim * 2, rowBytes, modelBytes], 0), 0, 2, 1, 3); // (headDim, nKv, nHeadKv, K)
      const o = g.flashAttnExt(g.permute(qs, 0, 2, 1, 3), view(cache.k), view(cache.v), masks[i]!, 1 / Math.sqrt(h.headDim)); // (headDim, nHead, n_seq, K)
      g.precF32(o);
      const os = g.reshape(o, h.headDim * h.nHead, ns, kl); // (headDim * nHead, n_seq, K)
      attnIn = attnIn === undefined ? os : g.concat(attnIn, os, 1);
    });
    const attn = mm(`blk.${il}.attn_output.weight`, attnIn!, kl); // (n_embd, n, K)
    const ffnInp = g.add(attn, x); // (n_embd, n, K)
    const f = norm(ffnInp, `blk.${il}.ffn_norm.weight`);
    const ff = mm(`blk.${il}.ffn_down.weight`, g.swigluSplit(mm(`blk.${il}.ffn_gate.weight`, f, kl), mm(`blk.${il}.ffn_up.weight`, f, kl)), kl); // (n_embd, n, K)
    x = g.add(ff, ffnInp);
  }
  if (s.shared.embeddings && trunk === h.nLayer) x = branch();
  return mm(OUTPUT, norm(x, OUTPUT_NORM), K); // (n_vocab, n, K)
}
