// The mixture's bookkeeping over K specialists (K numbers, not the vocabulary): the prompt posterior that
// routes a request, the mixing weights of each mode, Bayes' update after every token, each specialist's
// share of the token chosen, top-k and dropping negligible weights. Pure functions over Float64Array.
//
//   prompt posterior   w_k ∝ prior_k · p_k(prompt)                    (promptPosterior)
//   mixture            p(x) = Σ_k m_k p_k(x | context)                (combine.ts, in ggml)
//   mixing weights     m = w (posterior), 1/K (uniform), one-hot argmax w (top1)
//   share of token t   s_k = m_k p_k(t) / p(t)                        (tokenShares; Σ_k s_k = 1)
//   Bayes update       w_k ∝ w_k p_k(t)                               (bayesUpdate)
import { ModelError } from '../errors.ts';

export const MIXTURE_MODES = ['posterior', 'uniform', 'top1'] as const;
export type MixtureMode = (typeof MIXTURE_MODES)[number];

/** Bad mixture input: no specialist left, weights that are not a distribution. */
export class MixtureError extends ModelError {}

export const MIXTURE_DEFAULTS = {
  /** Specialists a request is routed to (the router keeps the k with the highest prompt posterior). */
  k: 3,
  /** The router drops specialists whose prompt posterior is below this (after keeping the top k). */
  minWeight: 1e-3,
  /**
   * Fixed-share mixing after each Bayes update (Herbster & Warmuth): w <- (1 - a) w + a / K. 0 is exact
   * Bayes, which locks onto the first domain of a text (Bet 04: on mixed-domain text only 2.9% better than
   * the best single specialist); a = 0.02 follows the text (Bet 19, pre-registered, strict: 0.36x the best
   * single specialist's perplexity on mixed text, 1.002x the oracle on single-domain text).
   */
  fixedShare: 0.02,
} as const;

/** w / Σ w; throws when nothing is left (every weight 0 or not finite). */
export function normalise(w: ArrayLike<number>): Float64Array {
  let sum = 0;
  for (let i = 0; i < w.length; i++) {
    const v = w[i]!;
    if (!(v >= 0) || !Number.isFinite(v)) throw new MixtureError('bad mixture weight', 'finite weights >= 0', String(v), 'this is a bug in the caller');
    sum += v;
  }
  if (!(sum > 0)) throw new MixtureError('no weight left in the mixture', 'at least one weight > 0', `${w.length} weights summing to 0`, 'every specialist dropped out or gave the text probability 0');
  const out = new Float64Array(w.length);
  for (let i = 0; i < w.length; i++) out[i] = w[i]! / sum;
  return out;
}

/** Uniform weights over K specialists. */
export function uniformWeights(k: number): Float64Array {
  if (k <= 0) throw new MixtureError('empty mixture', 'at least one specialist', '0', 'load or name a specialist');
  return new Float64Array(k).fill(1 / k);
}

/** The weights the combiner mixes with, from the posterior: itself, uniform, or all on the argmax. */
export function mixingWeights(posterior: Float64Array, mode: MixtureMode): Float64Array {
  if (mode === 'posterior') return posterior;
  if (mode === 'uniform') return uniformWeights(posterior.length);
  const out = new Float64Array(posterior.length);
  out[argmax(posterior)] = 1;
  return out;
}

/**
 * Each specialist's share of the chosen token: s_k = m_k p_k(t) / Σ_j m_j p_j(t), summing to 1.
 * `likelihoods[k]` is p_k(t). If every m_k p_k(t) is 0 (the token came from underflowed tails), the
 * shares fall back to the mixing weights.
 */
export function tokenShares(mix: Float64Array, likelihoods: ArrayLike<number>): Float64Array {
  const joint = new Float64Array(mix.length);
  let sum = 0;
  for (let k = 0; k < mix.length; k++) {
    joint[k] = mix[k]! * likelihoods[k]!;
    sum += joint[k]!;
  }
  if (!(sum > 0) || !Number.isFinite(sum)) return Float64Array.from(mix);
  for (let k = 0; k < joint.length; k++) joint[k]! /= sum;
  return joint;
}

/**
 * Bayes' rule after a token: w_k ∝ w_k p_k(t), then the optional fixed share. When every product is 0
 * (no specialist gave the token any probability, e.g. f32 underflow), the weights stay as they were.
 */
export function bayesUpdate(posterior: Float64Array, likelihoods: ArrayLike<number>, fixedShare: number = MIXTURE_DEFAULTS.fixedShare): Float64Array {
  const next = new Float64Array(posterior.length);
  let sum = 0;
  for (let k = 0; k < posterior.length; k++) {
    next[k] = posterior[k]! * likelihoods[k]!;
    sum += next[k]!;
  }
  if (!(sum > 0) || !Number.isFinite(sum)) return Float64Array.from(posterior);
  const n = posterior.length;
  for (let k = 0; k < n; k++) next[k] = (1 - fixedShare) * (next[k]! / sum) + fixedShare / n;
  return next;
}

/**
 * The router's posterior from the prompt: w_k ∝ prior_k exp(logLikelihood_k), computed in log space
 * (prompt log-likelihoods are large negative numbers). `priors` default to uniform.
 */
export function promptPosterior(logLikelihoods: readonly number[], priors?: readonly number[]): Float64Array {
  const n = logLikelihoods.length;
  if (n === 0) throw new MixtureError('no specialist to route to', 'at least one candidate', '0', 'load specialists sharing the tokenizer');
  if (priors && priors.length !== n) throw new MixtureError('priors and likelihoods differ in length', String(n), String(priors.length), 'one prior per candidate');
  const logs = logLikelihoods.map((ll, k) => ll + Math.log(priors?.[k] ?? 1));
  let max = -Infinity;
  for (const v of logs) if (v > max) max = v;
  if (max === -Infinity || Number.isNaN(max)) return uniformWeights(n);
  return normalise(logs.map((v) => (Number.isNaN(v) ? 0 : Math.exp(v - max))));
}

/**
 * The router's choice: indices of the top k weights, highest first, without those below minWeight (the
 * best one always stays), and their weights renormalised.
 */
export function selectTop(weights: Float64Array, k: number = MIXTURE_DEFAULTS.k, minWeight: number = MIXTURE_DEFAULTS.minWeight): { indices: number[]; weights: Float64Array } {
  if (!Number.isInteger(k) || k < 1) throw new MixtureError('bad mixture k', 'an integer >= 1', String(k), 'use --mixture-k 1 or more');
  const order = [...weights.keys()].sort((a, b) => weights[b]! - weights[a]! || a - b);
  const kept = order.slice(0, k).filter((i, rank) => rank === 0 || weights[i]! >= minWeight);
  return { indices: kept, weights: normalise(kept.map((i) => weights[i]!)) };
}

/** The weights without specialist `index` (dropped mid-answer), renormalised (uniform if none had weight). */
export function dropSpecialist(weights: Float64Array, index: number): Float64Array {
  const rest = [...weights].filter((_, i) => i !== index);
  return rest.some((v) => v > 0) ? normalise(rest) : uniformWeights(rest.length);
}

export function argmax(w: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < w.length; i++) if (w[i]! > w[best]!) best = i;
  return best;
}
