// The training forward graph of a llama-family model: B rows of T tokens, full causal attention over each
// row (no KV cache, no flash attention: mul_mat + soft_max_ext with a causal mask, which ggml can
// differentiate), SwiGLU feed-forward, logits, and the mean cross-entropy against one-hot targets.
//
// It computes what llama.cpp's llama graph computes for one sequence (src/models/llama.cpp), so a model
// trained here and exported to GGUF gives the same logits in llama.cpp. Shapes are ggml's, innermost
// first: (n_embd, N) is N columns of n_embd floats; N = B * T tokens, row-major by row then position.
import { type Graph, ROPE, type RopeParams, T as TYPE } from '../ggml/graph.ts';
import type { Tensor } from '../ggml/tensor.ts';
import { type ModelConfig, headDim } from './config.ts';
import { TrainError } from './errors.ts';
import { OUTPUT, OUTPUT_NORM, TOKEN_EMBD } from './params.ts';

/** Where the weights come from: the trainer's parameters, or a loaded GGUF's tensors. */
export type WeightLookup = (name: string) => Tensor;

/**
 * W x for the attention and FFN matrix `name` (x: (n_in, N) -> (n_out, N)), when something other than the
 * plain product computes it (a LoRA adapter adds its low-rank update); undefined for the plain product.
 */
export type MatmulHook = (g: Graph, name: string, w: Tensor, x: Tensor) => Tensor | undefined;

export interface ForwardTensors {
  /** (N) I32 token ids. */
  tokens: Tensor;
  /** (N) I32 position of each token in its row. */
  pos: Tensor;
  /** (T, T) F32: 0 where a query may attend to a key (key <= query), -inf elsewhere. */
  mask: Tensor;
  /** (n_vocab, N) F32 one-hot targets; an all-zero column is padding and adds nothing to the loss sum. */
  labels: Tensor;
}

export interface ForwardOutput {
  /** (n_vocab, N) logits. */
  logits: Tensor;
  /** Scalar: sum over columns of -log softmax(logits)[target], divided by N (ggml_cross_entropy_loss). */
  loss: Tensor;
}

export function ropeFor(m: ModelConfig): RopeParams {
  return { nDims: headDim(m), mode: ROPE.NORMAL, nCtxOrig: m.nCtx, freqBase: m.ropeBase, freqScale: 1, extFactor: 0, attnFactor: 1, betaFast: 32, betaSlow: 1 };
}

/** Declare the graph inputs for B rows of T tokens; fill them through BatchInputs. */
export function forwardInputs(g: Graph, m: ModelConfig, io: BatchInputs): ForwardTensors {
  return {
    tokens: g.input(TYPE.I32, [io.nTokens], io.tokens, 'tokens'),
    pos: g.input(TYPE.I32, [io.nTokens], io.pos, 'pos'),
    mask: g.input(TYPE.F32, [io.rowLength, io.rowLength], io.mask, 'causal_mask'),
    labels: g.input(TYPE.F32, [m.nVocab, io.nTokens], io.labels, 'labels'),
  };
}

export function buildForward(g: Graph, m: ModelConfig, w: WeightLookup, inp: ForwardTensors, nRows: number, rowLength: number, matmul?: MatmulHook): ForwardOutput {
  const D = headDim(m);
  const N = nRows * rowLength;
  const rope = ropeFor(m);
  const kqScale = 1 / Math.sqrt(D);
  const norm = (x: Tensor, name: string) => g.mul(g.rmsNorm(x, m.rmsEps), w(name));

  let x = g.getRows(w(TOKEN_EMBD), inp.tokens); // (n_embd, N)
  for (let il = 0; il < m.nLayer; il++) {
    const mm = (s: string, x: Tensor) => {
      const name = `blk.${il}.${s}`;
      return matmul?.(g, name, w(name), x) ?? g.mulMat(w(name), x);
    };
    // attention: q, k, v projections, RoPE on q and k
    const attnIn = norm(x, `blk.${il}.attn_norm.weight`); // (n_embd, N)
    let q = g.reshape(mm('attn_q.weight', attnIn), D, m.nHead, N); // (D, nHead, N)
    let k = g.reshape(mm('attn_k.weight', attnIn), D, m.nHeadKv, N); // (D, nHeadKv, N)
    const v = g.reshape(mm('attn_v.weight', attnIn), D, m.nHeadKv, rowLength, nRows); // (D, nHeadKv, T, B)
    q = g.rope(q, inp.pos, null, rope);
    k = g.rope(k, inp.pos, null, rope);
    let Q = g.permute(g.reshape(q, D, m.nHead, rowLength, nRows), 0, 2, 1, 3); // (D, T, nHead, B)
    let K = g.permute(g.reshape(k, D, m.nHeadKv, rowLength, nRows), 0, 2, 1, 3); // (D, T, nHeadKv, B)
    let Vt = g.cont(g.permute(v, 1, 2, 0, 3)); // (T, D, nHeadKv, B): v transposed per head
    if (m.nHeadKv !== m.nHead) {
      // Grouped-query attention: ggml differentiates a matmul that broadcasts KV heads over query heads
      // only in 3 dimensions, so heads and rows are merged: (.., nHead * B) against (.., nHeadKv * B).
      Q = g.reshape(g.cont(Q), D, rowLength, m.nHead * nRows); // (D, T, nHead * B)
      K = g.reshape(g.cont(K), D, rowLength, m.nHeadKv * nRows); // (D, T, nHeadKv * B)
      Vt = g.reshape(Vt, rowLength, D, m.nHeadKv * nRows); // (T, D, nHeadKv * B)
    }
    // scores of every query against every key of its row, causal softmax, weighted sum of values
    const kq = g.mulMat(K, Q); // (T_k, T_q, nHead, B)
    const probs = g.softMaxExt(kq, inp.mask, kqScale); // (T_k, T_q, nHead, B)
    const o = g.reshape(g.mulMat(Vt, probs), D, rowLength, m.nHead, nRows); // (D, T_q, nHead, B)
    const attn = g.reshape(g.cont(g.permute(o, 0, 2, 1, 3)), m.nEmbd, N); // (n_embd, N)
    x = g.add(x, mm('attn_output.weight', attn)); // (n_embd, N)

    // feed-forward: down(silu(gate h) * up h)
    const ffnIn = norm(x, `blk.${il}.ffn_norm.weight`); // (n_embd, N)
    const gate = mm('ffn_gate.weight', ffnIn); // (n_ff, N)
    const up = mm('ffn_up.weight', ffnIn); // (n_ff, N)
    x = g.add(x, mm('ffn_down.weight', g.swigluSplit(gate, up))); // (n_embd, N)
  }
  const logits = g.mulMat(w(OUTPUT), norm(x, OUTPUT_NORM)); // (n_vocab, N)
  const loss = g.crossEntropyLoss(logits, inp.labels); // scalar
  return { logits, loss };
}

/**
 * Host-side input buffers for B rows of T tokens, reused step after step (the graph keeps references to
 * them and uploads them on every run). Positions and the causal mask never change.
 */
export class BatchInputs {
  readonly nRows: number;
  readonly rowLength: number;
  readonly nVocab: number;
  readonly tokens: Int32Array;
  readonly pos: Int32Array;
  readonly mask: Float32Array;
  readonly labels: Float32Array;
  /** Target of each column currently set in `labels` (-1: none). */
  private readonly set: Int32Array;

  constructor(nRows: number, rowLength: number, nVocab: number) {
    this.nRows = nRows;
    this.rowLength = rowLength;
    this.nVocab = nVocab;
    const n = nRows * rowLength;
    this.tokens = new Int32Array(n);
    this.pos = Int32Array.from({ length: n }, (_, i) => i % rowLength);
    this.mask = new Float32Array(rowLength * rowLength);
    for (let qi = 0; qi < rowLength; qi++) for (let ki = qi + 1; ki < rowLength; ki++) this.mask[qi * rowLength + ki] = -Infinity;
    this.labels = new Float32Array(nVocab * n);
    this.set = new Int32Array(n).fill(-1);
  }

  get nTokens(): number {
    return this.nRows * this.rowLength;
  }

  /**
   * Fill tokens and one-hot targets; `input` and `target` hold up to nTokens ids (row-major). Columns past
   * their end, or whose target is negative, are padding: token 0 and an all-zero label.
   * Returns the number of real targets.
   */
  fill(input: ArrayLike<number>, target: ArrayLike<number>): number {
    if (input.length > this.nTokens || target.length > this.nTokens) {
      throw new TrainError('batch larger than the graph', `at most ${this.nTokens} tokens`, `${input.length} inputs, ${target.length} targets`, 'cut the text into rows of the training context');
    }
    let real = 0;
    for (let i = 0; i < this.nTokens; i++) {
      const t = i < target.length ? target[i]! : -1;
      const tok = i < input.length ? input[i]! : 0;
      if (!(tok >= 0 && tok < this.nVocab) || t >= this.nVocab) {
        throw new TrainError('token id out of the vocabulary', `ids in 0..${this.nVocab - 1}`, `${tok} -> ${t} at ${i}`, 'was the text encoded with this model\'s tokenizer?');
      }
      this.tokens[i] = tok;
      const prev = this.set[i]!;
      if (prev >= 0) this.labels[i * this.nVocab + prev] = 0;
      if (t >= 0) {
        this.labels[i * this.nVocab + t] = 1;
        real++;
      }
      this.set[i] = t;
    }
    return real;
  }
}
