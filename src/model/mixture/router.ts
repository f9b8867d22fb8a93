// The router: which specialists serve a request. Candidates are the specialists that share the request's
// tokenizer; each scores the prompt in its prefill (likelihood.ts); the posterior prior x likelihood ranks
// them, the top k stay, negligible ones go, and the kept weights start the mixture.
import { MIXTURE_DEFAULTS, promptPosterior, selectTop } from './weights.ts';

export interface RouteOptions {
  /** Most specialists kept. Default MIXTURE_DEFAULTS.k (3). */
  k?: number;
  /** Kept specialists need at least this posterior (the best always stays). Default MIXTURE_DEFAULTS.minWeight. */
  minWeight?: number;
  /** Prior per candidate (any positive scale). Default uniform. */
  priors?: readonly number[];
}

export interface Route {
  /** Indices of the kept candidates, highest posterior first. */
  indices: number[];
  /** Their weights, renormalised (the mixture's starting posterior), in the order of `indices`. */
  weights: Float64Array;
  /** The posterior over every candidate, before top-k. */
  posterior: Float64Array;
}

/** Route a prompt from each candidate's log p(prompt). */
export function route(logLikelihoods: readonly number[], opts: RouteOptions = {}): Route {
  const posterior = promptPosterior(logLikelihoods, opts.priors);
  const { indices, weights } = selectTop(posterior, opts.k ?? MIXTURE_DEFAULTS.k, opts.minWeight ?? MIXTURE_DEFAULTS.minWeight);
  return { indices, weights, posterior };
}
