// The glass-box trail of a mixture's answer: for every token, each specialist's share of it and the
// weights before it; the specialists routed to, and those that dropped out (when, and why).
import type { MixtureMode } from './weights.ts';

/** One specialist's share of a token a mixture generated. */
export interface ModelShare {
  model: string;
  share: number;
}

export interface ModelWeight {
  model: string;
  weight: number;
}

export interface TrailToken {
  /** Token id generated. */
  token: number;
  /** Shares of this token, summing to 1 (specialists that had dropped out are absent). */
  attribution: ModelShare[];
  /** The posterior weights before this token. */
  weights: ModelWeight[];
}

export interface TrailDrop {
  model: string;
  /** How many tokens had been generated when it dropped out (0: during the prefill). */
  atToken: number;
  reason: string;
}

export interface MixtureTrail {
  mode: MixtureMode;
  /** The specialists routed to, with their prompt posterior (the starting weights). */
  routed: ModelWeight[];
  /** Candidates the router left out, with their prompt posterior. */
  notRouted: ModelWeight[];
  tokens: TrailToken[];
  dropped: TrailDrop[];
}

/** Decimals kept in shares and weights on the wire and in the store. */
const DECIMALS = 1e6;
const round = (v: number): number => Math.round(v * DECIMALS) / DECIMALS;

export function namedShares(models: readonly string[], shares: ArrayLike<number>): ModelShare[] {
  return models.map((model, i) => ({ model, share: round(shares[i]!) }));
}

export function namedWeights(models: readonly string[], weights: ArrayLike<number>): ModelWeight[] {
  return models.map((model, i) => ({ model, weight: round(weights[i]!) }));
}
