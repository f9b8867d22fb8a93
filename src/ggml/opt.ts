// Training support over ggml: trainable parameters, the loss, ggml's automatic backward pass
// (ggml_build_backward_expand), gradients of a graph, and the AdamW step op (ggml_opt_step_adamw).
//
// The recipe is ggml-opt.cpp's (ggml_opt_build) without its opaque context, so a caller can read and
// restore the optimizer moments (checkpoints) and clip gradients before the step:
//   1. build the forward graph on a `Graph` made with grads = true, ending in a scalar loss;
//   2. setParam() every trainable tensor (they live in a backend buffer, e.g. a WeightSet), setLoss(loss);
//   3. buildBackward(g, loss, lossGrad): lossGrad is a static scalar holding 1.0 (d loss / d loss);
//   4. gradOf(g, param) for each parameter, then adamwStep(...) nodes, expanded into the same graph.
import { GgmlComputeError } from './errors.ts';
import type { Graph } from './graph.ts';
import { koffi } from './lib.ts';
import type { Ggml } from './runtime.ts';
import type { Tensor } from './tensor.ts';

/** Mark a tensor as trainable: the backward pass computes its gradient. */
export function setParam(ggml: Ggml, t: Tensor): void {
  ggml.lib.ggml_set_param(t);
}

/** Mark the scalar the backward pass differentiates (also an output, so its value stays readable). */
export function setLoss(ggml: Ggml, t: Tensor): void {
  ggml.lib.ggml_set_loss(t);
  ggml.lib.ggml_set_output(t);
}

/**
 * Expand the backward pass into `g`. `loss` must be the last node of the forward graph (expand it last).
 * `lossGrad` is a 1-element F32 tensor in a backend buffer holding 1.0; ggml reads it as the gradient of the
 * loss (ggml-opt keeps the same accumulator and sets it with ggml_graph_reset, which would also zero the
 * AdamW moments: we set it once instead).
 */
export function buildBackward(g: Graph, loss: Tensor, lossGrad: Tensor): void {
  const L = g.ggml.lib;
  const n = g.nNodes;
  const last = n > 0 ? (L.ggml_graph_node(g.graph, n - 1) as Tensor) : null;
  if (!last || koffi.address(last) !== koffi.address(loss)) {
    throw new GgmlComputeError('the loss is not the last node of the forward graph', { expected: 'loss expanded last', actual: `${n} nodes, last is another tensor` }, 'call g.expand(loss) after everything else');
  }
  // grad_accs[i] is the accumulator of forward node i; only the loss gets one (no gradient accumulation).
  const accs = new BigUint64Array(n);
  accs[n - 1] = BigInt(koffi.address(lossGrad));
  L.ggml_build_backward_expand(g.ctx, g.graph, accs);
}

/** The gradient of a node after buildBackward, or null when nothing depends on it. */
export function gradOf(g: Graph, t: Tensor): Tensor | null {
  return (g.ggml.lib.ggml_graph_get_grad(g.graph, t) as Tensor | null) ?? null;
}

/** Number of floats in the hyper-parameter tensor of ggml_opt_step_adamw. */
export const ADAMW_PARAM_COUNT = 7;

export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/**
 * The 7 floats ggml_opt_step_adamw reads, for optimizer step `t` (1-based): alpha, beta1, beta2, eps, wd and
 * the bias corrections 1/(1 - beta1^t), 1/(1 - beta2^t) (ggml_opt_eval computes them the same way).
 */
export function adamwParams(h: AdamWHyper, t: number): Float32Array {
  const beta1h = 1 / (1 - h.beta1 ** t);
  const beta2h = 1 / (1 - h.beta2 ** t);
  return new Float32Array([h.lr, h.beta1, h.beta2, h.eps, h.weightDecay, beta1h, beta2h]);
}

/**
 * One AdamW update of `param` in place (moments m, v: F32 tensors of its shape in a backend buffer):
 * m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  w = w (1 - lr wd) - lr mh / (sqrt(vh) + eps).
 * `hyper`: (7) F32 from adamwParams. Returns the op node; expand it into the graph.
 */
export function adamwStep(g: Graph, param: Tensor, grad: Tensor, m: Tensor, v: Tensor, hyper: Tensor): Tensor {
  return g.ggml.lib.ggml_opt_step_adamw(g.ctx, param, grad, m, v, hyper) as Tensor;
}
