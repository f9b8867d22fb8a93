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
