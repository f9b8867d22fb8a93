// The mixture's math as graph nodes, shared by the Combiner (K rows of logits in, one small graph) and the
// stacked model (the K models' logits of a decode step, mixed in the step's own graph):
//
//   logits (V, K) --softmax--> P (V, K) --transpose--> (K, V) --mulMat m (K, 1)--> p (V, 1) --log--> (V, 1)
import type { Graph } from '../../ggml/graph.ts';
import type { Tensor } from '../../ggml/tensor.ts';

/** p(x) = Σ_k m_k p_k(x): `logits` (V, K), `m` (K, 1) F32; returns P (V, K) and log p (V, 1). */
export function mixGraph(g: Graph, logits: Tensor, m: Tensor): { probs: Tensor; logMixed: Tensor } {
  const probs = g.softMaxExt(logits, null, 1, 0); // (V, K) p_k(x)
  const mixed = g.mulMat(g.cont(g.transpose(probs)), m); // (V, 1) Σ_k m_k p_k(x)
  return { probs, logMixed: g.log(mixed) }; // (V, 1)
}

/**
 * The same for S sequences at once, each with its own weights: `logits` (V, S, K), `m` (K, 1, S); returns
 * P (V, S, K) and log p (V, 1, S).
 */
export function mixGraphBatched(g: Graph, logits: Tensor, m: Tensor): { probs: Tensor; logMixed: Tensor } {
  const probs = g.softMaxExt(logits, null, 1, 0); // (V, S, K) p_k(x) of each sequence
  const bySeq = g.cont(g.permute(probs, 1, 2, 0, 3)); // (K, V, S)
  return { probs, logMixed: g.log(g.mulMat(bySeq, m)) }; // (V, 1, S)
}
