// A participant's contribution to a DiLoCo round: its pseudo-gradient, one Float32Array per tensor, named as
// the model's parameters. By DiLoCo's convention (Douillard et al. 2023) the pseudo-gradient points the way a
// gradient does: delta = theta_global - theta_local, so the outer optimiser *subtracts* it.
//
// The vector operations here are aggregation arithmetic on the host (a few hundred thousand floats per round),
// not model math: plain loops over Float32Array, accumulating in float64 where sums are long.
import type { TensorMap } from '../params.ts';

/** Per-tensor pseudo-gradient (or any per-tensor vector of the model's shape). */
export type Delta = TensorMap;

/** theta_global - theta_local, tensor by tensor (the names and sizes of `global`). */
export function pseudoGradient(global: TensorMap, local: TensorMap): Delta {
  const out: Delta = new Map();
  for (const [name, g] of global) {
    const l = local.get(name);
    if (!l || l.length !== g.length) throw new Error(`pseudoGradient: tensor ${name} missing or resized in the local model`);
    const d = new Float32Array(g.length);
    for (let i = 0; i < g.length; i++) d[i] = g[i]! - l[i]!;
    out.set(name, d);
  }
  return out;
}

/** A zero vector of the same shape as `like`. */
export function zerosLike(like: Delta): Delta {
  return new Map([...like].map(([k, v]) => [k, new Float32Array(v.length)]));
}

export function cloneDelta(d: Delta): Delta {
  return new Map([...d].map(([k, v]) => [k, Float32Array.from(v)]));
}

/** Sum of squares over every tensor (float64). */
export function sumSquares(d: Delta): number {
  let s = 0;
  for (const v of d.values()) for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return s;
}

export function l2Norm(d: Delta): number {
  return Math.sqrt(sumSquares(d));
}

/** ||a - b||^2 over every tensor (both of the same shape). */
export function squaredDistance(a: Delta, b: Delta): number {
  let s = 0;
  for (const [name, x] of a) {
    const y = b.get(name)!;
    for (let i = 0; i < x.length; i++) {
      const d = x[i]! - y[i]!;
      s += d * d;
    }
  }
  return s;
}

/** Inner product over every tensor. */
export function dot(a: Delta, b: Delta): number {
  let s = 0;
  for (const [name, x] of a) {
    const y = b.get(name)!;
    for (let i = 0; i < x.length; i++) s += x[i]! * y[i]!;
  }
  return s;
}

/** a * s, a new vector. */
export function scaled(a: Delta, s: number): Delta {
  return new Map([...a].map(([k, v]) => [k, v.map((x) => x * s)]));
}

/** Total number of floats. */
export function deltaSize(d: Delta): number {
  let n = 0;
  for (const v of d.values()) n += v.length;
  return n;
}
