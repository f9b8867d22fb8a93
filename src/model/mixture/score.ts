// Teacher-forced scoring of a text by a mixture (what Bets 04 and 18 measure): each specialist scores every
// token of the text in one batched prefill (log p_k(t_i | t_<i), likelihood.ts, in ggml); the mixture's
// probability of the token, each specialist's share and Bayes' update then need only those K numbers per token
// (weights.ts), so any mode, the oracle, or a mixture without one specialist (ablations) is scored from the
// same per-specialist log-likelihoods without running a model again.
import type { Ggml } from '../../ggml/runtime.ts';
import type { Batcher } from '../batcher.ts';
import { tokenLogLikelihoods } from './likelihood.ts';
import { MIXTURE_DEFAULTS, type MixtureMode, bayesUpdate, mixingWeights, normalise, tokenShares, uniformWeights } from './weights.ts';

/** Per specialist, log p_k(tokens[i+1] | tokens[..i]) for i = 0..n-2: one batched prefill of the text. */
export async function specialistLogLikelihoods(batcher: Batcher, ggml: Ggml, tokens: readonly number[]): Promise<Float64Array> {
  const fwd = batcher.forward;
  const seq = await fwd.openSequence();
  try {
    const rows = await batcher.submit({ seq, tokens: Int32Array.from(tokens), logits: 'all' }); // tokens.length rows of V
    return tokenLogLikelihoods(ggml, rows, tokens);
  } finally {
    await fwd.closeSequence(seq);
  }
}

export interface ScoreOptions {
  mode?: MixtureMode;
  /** Weights before the first scored token (default: uniform). E.g. the router's prompt posterior. */
  prior?: Float64Array;
  fixedShare?: number;
  /** Score from this token on (the ones before only update the weights: a prompt). Default 0. */
  from?: number;
}

export interface ScoredText {
  /** Per scored token: log p(token) under the mixture (natural log). */
  logProb: Float64Array;
  /** Per scored token: each specialist's share of it (K numbers summing to 1). */
  shares: Float64Array[];
  /** Per scored token: the posterior weights before it. */
  weights: Float64Array[];
  /** Mean negative log-likelihood per scored token (nats); exp of it is the perplexity. */
  nll: number;
}

/**
 * Scores a text from the specialists' per-token log-likelihoods (K arrays of n values, same tokens): at each
 * token the mixture mixes with the mode's weights, then Bayes' rule updates the posterior.
 */
export function scoreMixture(logLikelihoods: readonly Float64Array[], o: ScoreOptions = {}): ScoredText {
  const K = logLikelihoods.length;
  const n = logLikelihoods[0]?.length ?? 0;
  const mode = o.mode ?? 'posterior';
  const from = o.from ?? 0;
  let posterior = o.prior ? normalise(o.prior) : uniformWeights(K);
  const logProb = new Float64Array(Math.max(0, n - from));
  const shares: Float64Array[] = [];
  const weights: Float64Array[] = [];
  const like = new Float64Array(K);
  let total = 0;
  for (let i = 0; i < n; i++) {
    // Likelihoods relative to the best specialist's (exact shares and updates without underflow).
    let best = -Infinity;
    for (let k = 0; k < K; k++) best = Math.max(best, logLikelihoods[k]![i]!);
    for (let k = 0; k < K; k++) like[k] = Math.exp(logLikelihoods[k]![i]! - best);
    const mix = mixingWeights(posterior, mode);
    if (i >= from) {
      let p = 0;
      for (let k = 0; k < K; k++) p += mix[k]! * like[k]!;
      const lp = best + Math.log(p);
      logProb[i - from] = lp;
      total -= lp;
      shares.push(tokenShares(mix, like));
      weights.push(posterior);
    }
    posterior = bayesUpdate(posterior, like, o.fixedShare ?? MIXTURE_DEFAULTS.fixedShare);
  }
  return { logProb, shares, weights, nll: logProb.length > 0 ? total / logProb.length : 0 };
}
