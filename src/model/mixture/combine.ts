// The combiner: K specialists' next-token logits in, the mixture p(x) = Σ_k m_k p_k(x) out, as one small
// ggml graph per step (softmax per specialist, weighted sum over specialists, log for the sampler):
//
//   logits (V, K) --softmax--> P (V, K) --transpose--> (K, V) --mulMat m (K, 1)--> p (V, 1) --log--> (V, 1)
//
// The sampler draws from log p like from any model's logits (temperature, top-k/p, seed all apply to the
// mixture), and each specialist's probability of the token drawn is read back from P (K floats): the
// bookkeeping over K numbers (shares, Bayes' update) is in weights.ts.
import { Executor } from '../../ggml/executor.ts';
import { Graph, T, readF32 } from '../../ggml/graph.ts';
import { mixGraph } from './mix-graph.ts';
import type { Ggml } from '../../ggml/runtime.ts';
import type { Tensor } from '../../ggml/tensor.ts';
import { type MixtureMode, MixtureError, bayesUpdate, mixingWeights, tokenShares } from './weights.ts';

/** A mixed next-token distribution, valid until the combiner's next `mix` (its tensors are reused). */
export interface MixedDistribution {
  /** log p(x) over the vocabulary, V floats: what the sampler draws from, as it would a model's logits. */
  readonly logits: Float32Array;
  /** The weights it was mixed with (K numbers summing to 1). */
  readonly weights: Float64Array;
  /** p_k(token) under each specialist's own distribution (K numbers). */
  likelihoods(token: number): Float64Array;
}

/** Graph nodes of one mix: softmax, transpose, cont, mul_mat, log and the inputs. */
const MIX_GRAPH_NODES = 32;

export class Combiner {
  readonly ggml: Ggml;
  readonly nVocab: number;
  private readonly executor: Executor;
  /** The last mix's graph and its probabilities tensor P (V, K), alive until the next mix. */
  private last: { g: Graph; probs: Tensor; k: number } | undefined;

  constructor(ggml: Ggml, nVocab: number) {
    this.ggml = ggml;
    this.nVocab = nVocab;
    this.executor = new Executor(ggml, MIX_GRAPH_NODES);
  }

  /** Mix K rows of logits (or log-probabilities: softmax is the same) with weights m (K, summing to 1). */
  mix(rows: readonly Float32Array[], weights: Float64Array): MixedDistribution {
    const V = this.nVocab;
    const K = rows.length;
    if (K === 0 || weights.length !== K) throw new MixtureError('mixture inputs disagree', `one weight per distribution (${K})`, `${weights.length} weights`, 'this is a bug in the caller');
    const packed = new Float32Array(V * K); // (V, K): row k of the ggml tensor is specialist k's logits
    rows.forEach((r, k) => {
      if (r.length !== V) throw new MixtureError(`distribution ${k} has the wrong length`, `${V} (the vocabulary)`, String(r.length), 'specialists must share the tokenizer');
      packed.set(r, k * V);
    });
    this.release();
    const g = new Graph(this.ggml, MIX_GRAPH_NODES);
    try {
      const logits = g.input(T.F32, [V, K], packed); // (V, K)
      const m = g.input(T.F32, [K, 1], Float32Array.from(weights)); // (K, 1)
      const { probs, logMixed } = mixGraph(g, logits, m); // (V, K), (V, 1)
      for (const t of [probs, logMixed]) {
        g.output(t);
        g.expand(t);
      }
      this.executor.run(g);
      this.last = { g, probs, k: K };
      const out = readF32(this.ggml, logMixed, V);
      const ggml = this.ggml;
      return {
        logits: out,
        weights,
        likelihoods: (token: number): Float64Array => {
          if (this.last?.g !== g) throw new MixtureError('stale mixed distribution', 'the latest mix', 'an earlier one', 'read likelihoods before mixing again');
          if (!Number.isInteger(token) || token < 0 || token >= V) throw new MixtureError('token outside the vocabulary', `0 <= token < ${V}`, String(token), 'this is a bug in the caller');
          const l = new Float64Array(K);
          for (let k = 0; k < K; k++) l[k] = readF32(ggml, probs, 1, k * V + token)[0]!;
          return l;
        },
      };
    } catch (e) {
      if (this.last?.g !== g) g.dispose();
      throw e;
    }
  }

  private release(): void {
    this.last?.g.dispose();
    this.last = undefined;
  }

  dispose(): void {
    this.release();
    this.executor.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** What one step of the mixture gives for the token chosen. */
export interface TokenAttribution {
  /** Each specialist's share of the token, m_k p_k(t) / p(t): K numbers summing to 1. */
  shares: Float64Array;
  /** p_k(t) under each specialist. */
  likelihoods: Float64Array;
  /** The posterior after the token (Bayes' update; tracked in every mode, only `posterior` mixes with it). */
  posterior: Float64Array;
}

/**
 * One step of the mixture: mix the specialists' rows with the mode's weights; `attribute(token)` then gives
 * the shares of the token drawn and the updated posterior.
 */
export function mixStep(
  combiner: Combiner,
  posterior: Float64Array,
  rows: readonly Float32Array[],
  mode: MixtureMode,
  fixedShare?: number,
): { mixed: MixedDistribution; attribute(token: number): TokenAttribution } {
  return stepOf(combiner.mix(rows, mixingWeights(posterior, mode)), posterior, fixedShare);
}

/** A mixed distribution as a step of the mixture: `attribute(token)` gives the token's shares and posterior. */
export function stepOf(mixed: MixedDistribution, posterior: Float64Array, fixedShare?: number): { mixed: MixedDistribution; attribute(token: number): TokenAttribution } {
  return {
    mixed,
    attribute(token: number): TokenAttribution {
      const likelihoods = mixed.likelihoods(token);
      const shares = tokenShares(mixed.weights, likelihoods);
      return { shares, likelihoods, posterior: bayesUpdate(posterior, likelihoods, fixedShare) };
    },
  };
}
