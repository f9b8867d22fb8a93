// The llama family (TinyLlama, Llama 2/3, Mistral, SmolLM2) and qwen2, as llama.cpp builds them
// (src/models/llama.cpp, qwen2.cpp): pre-norm blocks of attention and SwiGLU FFN with RMSNorm, RoPE
// (normal for llama, NeoX for qwen2), grouped-query attention. qwen2 adds biases to q, k, v.
//
// One call builds the graph of one step over layers [first, last); it starts from token ids (the part holds
// the embeddings) or hidden states, and ends with logits (the part holds the head) or hidden states.
import type { Tensor } from '../../ggml/tensor.ts';
import { type BuildContext, attention, ffnSwiglu, head, rmsNorm } from './blocks.ts';

export interface SpanOutput {
  /** (n_embd, n_tokens) hidden states after the last layer of the span. */
  hidden: Tensor;
  /** (n_vocab, n_logits) logits of the selected rows, when the part holds the head (blocks.ts head()). */
  logits?: Tensor;
  /** (n_embd, n_out) the selected rows after the final norm, when the part holds the head. */
  normed?: Tensor;
}

export function buildLlama(c: BuildContext, inp: Tensor, first: number, last: number, outRows: Tensor | null, rowGroup: Int32Array, outRowGroup: Int32Array): SpanOutput {
  const { g, h, w } = c;
  const bias = h.arch === 'qwen2';
  let x = inp; // (n_embd, n_tokens)
  for (let il = first; il < last; il++) {
    const L = (s: string) => w.get(`blk.${il}.${s}`);
    // attention
    const cur = rmsNorm(c, x, `blk.${il}.attn_norm.weight`, rowGroup); // (n_embd, n_tokens)
    let q = g.mulMat(L('attn_q.weight'), cur); // (headDim * nHead, n_tokens)
    let k = g.mulMat(L('attn_k.weight'), cur); // (headDim * nHeadKv, n_tokens)
    let v = g.mulMat(L('attn_v.weight'), cur); // (headDim * nHeadKv, n_tokens)
    if (bias) {
      q = g.add(q, L('attn_q.bias'));
      k = g.add(k, L('attn_k.bias'));
      v = g.add(v, L('attn_v.bias'));
    }
    q = g.rope(g.reshape(q, h.headDim, h.nHead, c.nTokens), c.pos, c.ropeFreqs, c.rope); // (headDim, nHead, n_tokens)
    k = g.rope(g.reshape(k, h.headDim, h.nHeadKv, c.nTokens), c.pos, c.ropeFreqs, c.rope); // (headDim, nHeadKv, n_tokens)
    v = g.reshape(v, h.headDim, h.nHeadKv, c.nTokens); // (headDim, nHeadKv, n_tokens)
    let attn = attention(c, il, q, k, v, 1 / Math.sqrt(h.headDim)); // (headDim * nHead, n_tokens)
    attn = g.mulMat(L('attn_output.weight'), attn); // (n_embd, n_tokens)

    // On the model's last layer, keep only the rows whose logits are wanted (llama.cpp's inp_out_ids).
    let residual = x;
    let rg = rowGroup;
    if (il === h.nLayer - 1 && outRows) {
      attn = g.getRows(attn, outRows); // (n_embd, n_out)
      residual = g.getRows(residual, outRows);
      rg = outRowGroup;
    }
    const ffnInp = g.add(attn, residual); // (n_embd, n_rows)

    // feed-forward
    const f = ffnSwiglu(c, rmsNorm(c, ffnInp, `blk.${il}.ffn_norm.weight`, rg), il); // (n_embd, n_rows)
    x = g.add(f, ffnInp);
  }
  if (!outRows) return { hidden: x };
  // With no layer of this part being the model's last (head-only part), select rows here.
  const sel = last === h.nLayer && last > first ? x : g.getRows(x, outRows);
  return { hidden: x, ...head(c, sel, outRowGroup) };
}
