// Robust aggregation of the participants' pseudo-gradients: pure functions from n deltas to one.
//
//   mean           the average; one participant can move it anywhere
//   median         coordinate-wise median (Yin et al. 2018)
//   trimmed-mean   per coordinate, drop the f largest and f smallest values, average the rest
//   centered-clip  Karimireddy et al. 2021: v <- v + mean_i (x_i - v) * min(1, tau / ||x_i - v||), a few
//                  iterations from a robust start (the previous round's aggregate, else the median)
//   krum           Blanchard et al. 2017: the delta with the smallest sum of squared distances to its
//                  n - f - 2 nearest others (Multi-Krum: the mean of the m best)
//
// Coordinate-wise rules sort n values per coordinate in a small scratch array (n is a handful of participants).
import type { AggregatorName } from './config.ts';
import { type Delta, squaredDistance, zerosLike } from './delta.ts';

export interface AggregateOptions {
  /** Byzantine participants assumed (trimmed mean, Krum). */
  f: number;
  /** Centered clipping: iterations and radius (0 = adaptive, the median distance to the centre). */
  clipIterations?: number;
  clipRadius?: number;
  /** Centered clipping's starting point (the previous round's aggregate). */
  center?: Delta;
  /** Multi-Krum's m (default 1). */
  krumSelect?: number;
}

export interface Aggregated {
  delta: Delta;
  /** Krum: the indices it selected. */
  selected?: number[];
}

export function aggregate(kind: AggregatorName, deltas: readonly Delta[], options: AggregateOptions): Aggregated {
  if (deltas.length === 0) throw new Error('aggregate: no deltas to aggregate');
  switch (kind) {
    case 'mean': return { delta: mean(deltas) };
    case 'median': return { delta: median(deltas) };
    case 'trimmed-mean': return { delta: trimmedMean(deltas, options.f) };
    case 'centered-clip': return { delta: centeredClip(deltas, options) };
    case 'krum': return krum(deltas, options.f, options.krumSelect ?? 1);
  }
}

export function mean(deltas: readonly Delta[], weights?: readonly number[]): Delta {
  const out = zerosLike(deltas[0]!);
  const w = weights ?? deltas.map(() => 1 / deltas.length);
  for (const [name, acc] of out) {
    deltas.forEach((d, j) => {
      const x = d.get(name)!;
      const wj = w[j]!;
      for (let i = 0; i < acc.length; i++) acc[i] = acc[i]! + wj * x[i]!;
    });
  }
  return out;
}

/** Per coordinate: sort the n values, then reduce the sorted row. */
function coordinateWise(deltas: readonly Delta[], reduce: (sorted: Float64Array) => number): Delta {
  const n = deltas.length;
  const out = zerosLike(deltas[0]!);
  const row = new Float64Array(n);
  for (const [name, acc] of out) {
    const xs = deltas.map((d) => d.get(name)!);
    for (let i = 0; i < acc.length; i++) {
      // Insertion sort: n is small, and this allocates nothing.
      for (let j = 0; j < n; j++) {
        const v = xs[j]![i]!;
        let k = j - 1;
        while (k >= 0 && row[k]! > v) {
          row[k + 1] = row[k]!;
          k--;
        }
        row[k + 1] = v;
      }
      acc[i] = reduce(row);
    }
  }
  return out;
}

export function median(deltas: readonly Delta[]): Delta {
  const n = deltas.length;
  const m = n >> 1;
  return coordinateWise(deltas, (s) => (n % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2));
}

/** Drop the b largest and b smallest of each coordinate (b = f, at most (n - 1) / 2), average the rest. */
export function trimmedMean(deltas: readonly Delta[], f: number): Delta {
  const n = deltas.length;
  const b = Math.max(0, Math.min(Math.floor(f), Math.floor((n - 1) / 2)));
  const keep = n - 2 * b;
  return coordinateWise(deltas, (s) => {
    let sum = 0;
    for (let j = b; j < n - b; j++) sum += s[j]!;
    return sum / keep;
  });
}

export function centeredClip(deltas: readonly Delta[], options: Pick<AggregateOptions, 'clipIterations' | 'clipRadius' | 'center'>): Delta {
  const iterations = options.clipIterations ?? 3;
  let v = options.center ? new Map([...options.center].map(([k, x]) => [k, Float32Array.from(x)])) : median(deltas);
  for (let it = 0; it < iterations; it++) {
    const dist = deltas.map((d) => Math.sqrt(squaredDistance(d, v)));
    const tau = options.clipRadius && options.clipRadius > 0 ? options.clipRadius : medianOf(dist);
    // Weight of each participant's offset: min(1, tau / ||x_i - v||) / n (a participant at the centre adds nothing).
    const w = dist.map((r) => (r > 0 ? Math.min(1, tau / r) : 0) / deltas.length);
    const next: Delta = new Map();
    for (const [name, c] of v) {
      const out = Float32Array.from(c);
      deltas.forEach((d, j) => {
        const x = d.get(name)!;
        const wj = w[j]!;
        if (wj === 0) return;
        for (let i = 0; i < out.length; i++) out[i] = out[i]! + wj * (x[i]! - c[i]!);
      });
      next.set(name, out);
    }
    v = next;
  }
  return v;
}

/** Krum (m = 1) or Multi-Krum: score = sum of squared distances to the n - f - 2 nearest (at least 1). */
export function krum(deltas: readonly Delta[], f: number, m = 1): Aggregated {
  const n = deltas.length;
  if (n === 1) return { delta: mean(deltas), selected: [0] };
  const d2 = Array.from({ length: n }, () => new Float64Array(n));
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const s = squaredDistance(deltas[i]!, deltas[j]!);
      d2[i]![j] = s;
      d2[j]![i] = s;
    }
  }
  const neighbours = Math.max(1, Math.min(n - 1, n - f - 2));
  const scores = d2.map((row, i) => {
    const others = Array.from(row).filter((_, j) => j !== i).sort((a, b) => a - b);
    return others.slice(0, neighbours).reduce((a, b) => a + b, 0);
  });
  const order = scores.map((s, i) => ({ s, i })).sort((a, b) => a.s - b.s || a.i - b.i).map((x) => x.i);
  const selected = order.slice(0, Math.max(1, Math.min(m, n)));
  return { delta: mean(selected.map((i) => deltas[i]!)), selected };
}

function medianOf(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const k = s.length >> 1;
  return s.length % 2 === 1 ? s[k]! : (s[k - 1]! + s[k]!) / 2;
}
