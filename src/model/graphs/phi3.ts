// Phi-3 as llama.cpp builds it (src/models/phi3.cpp): one fused QKV matrix, Q scaled by 1/sqrt(headDim)
// before attention (attention scale 1), NeoX RoPE, and a fused gate+up matrix whose output halves feed
// SwiGLU (silu of the first half times the second).
import type { Tensor } from '../../ggml/tensor.ts';
import { type BuildContext, attention, head, rmsNorm } from './blocks.ts';
import type { SpanOutput } from './llama.ts';

export function buildPhi3(c: BuildContext, inp: Tensor, first: number, last: number, outRows: Tensor | null, rowGroup: Int32Array, outRowGroup: Int32Array): SpanOutput {
  const { g, h, w } = c;
  const nEmbdQ = h.headDim * h.nHead;
  const nEmbdK = h.headDim * h.nHeadKv;
  let x = inp; // (n_embd, n_tokens)
  for (let il = first; il < last; il++) {
    const L = (s: string) => w.get(`blk.${il}.${s}`);
    const cur = rmsNorm(c, x, `blk.${il}.attn_norm.weight`, rowGroup); // (n_embd, n_tokens)
    const qkv = g.mulMat(L('attn_qkv.weight'), cur); // (nEmbdQ + 2 nEmbdK, n_tokens), F32
    const rowBytes = (nEmbdQ + 2 * nEmbdK) * 4;
    let q = g.view3d(qkv, h.headDim, h.nHead, c.nTokens, h.headDim * 4, rowBytes, 0); // (headDim, nHead, n_tokens)
    let k = g.view3d(qkv, h.headDim, h.nHeadKv, c.nTokens, h.headDim * 4, rowBytes, nEmbdQ * 4); // (headDim, nHeadKv, n_tokens)
    const v = g.cont(g.view3d(qkv, h.headDim, h.nHeadKv, c.nTokens, h.headDim * 4, rowBytes, (nEmbdQ + nEmbdK) * 4));
    q = g.rope(q, c.pos, c.ropeFreqs, c.rope);
    k = g.rope(k, c.pos, c.ropeFreqs, c.rope);
    q = g.scale(q, 1 / Math.sqrt(h.headDim));
    let attn = g.mulMat(L('attn_output.weight'), attention(c, il, q, k, v, 1)); // (n_embd, n_tokens)

    let residual = x;
    let rg = rowGroup;
    if (il === h.nLayer - 1 && outRows) {
      attn = g.getRows(attn, outRows);
      residual = g.getRows(residual, outRows);
      rg = outRowGroup;
    }
    const ffnInp = g.add(attn, residual); // (n_embd, n_rows)
    const up = g.mulMat(L('ffn_up.weight'), rmsNorm(c, ffnInp, `blk.${il}.ffn_norm.weight`, rg)); // (2 n_ff, n_rows)
    const f = g.mulMat(L('ffn_down.weight'), g.swiglu(up)); // (n_embd, n_rows)
    x = g.add(ffnInp, f);
  }
  if (!outRows) return { hidden: x };
  const sel = last === h.nLayer && last > first ? x : g.getRows(x, outRows);
  return { hidden: x, ...head(c, sel, outRowGroup) };
}
