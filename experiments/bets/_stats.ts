// Statistics of the bets: seeded bootstrap confidence intervals (the same numbers on every run), means and
// medians. A figure in SUMMARY.md is always a mean with its 95% CI and the number of runs behind it.
import { mulberry32 } from '../../src/util/random.ts';

export const STATS_DEFAULTS = {
  /** Bootstrap resamples: enough for a stable 2.5th/97.5th percentile at the precision we report. */
  resamples: 2_000,
  /** Seed of the bootstrap itself: fixed, so a result file regenerates identically from the same data. */
  seed: 12_345,
} as const;

export function mean(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  return values.reduce((a, b) => a + b, 0) / values.length;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function percentile(sorted: readonly number[], p: number): number {
  const i = (sorted.length - 1) * p;
  const lo = Math.floor(i);
  const hi = Math.ceil(i);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (i - lo);
}

/**
 * Percentile bootstrap 95% CI of the mean. With one value the interval is that value (say so: n = 1); with
 * few values (3 seeds) the interval is narrow-biased, which METHODOLOGY.md states.
 */
export function bootstrapCI(values: readonly number[], resamples: number = STATS_DEFAULTS.resamples, seed: number = STATS_DEFAULTS.seed): [number, number] {
  if (values.length === 0) return [Number.NaN, Number.NaN];
  if (values.length === 1) return [values[0]!, values[0]!];
  const rng = mulberry32(seed);
  const means = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let sum = 0;
    for (let i = 0; i < values.length; i++) sum += values[Math.floor(rng() * values.length)]!;
    means[r] = sum / values.length;
  }
  means.sort();
  return [percentile(Array.from(means), 0.025), percentile(Array.from(means), 0.975)];
}

/** Fisher-Yates with a seeded generator (settings run in a random order per seed, so drift is not confounded). */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  const rng = mulberry32(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
