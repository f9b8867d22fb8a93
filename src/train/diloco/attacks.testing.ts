// Byzantine participants for tests and bets only (never reachable from the CLI). Each attack crafts the delta
// an attacker sends from what an omniscient attacker may know: its own honest delta (when it trains) and the
// honest participants' deltas of this round.
//
//   sign-flip  -own * scale                           (coarse)
//   noise      N(0, std^2) per coordinate             (coarse; no training)
//   scaled     own * factor                           (coarse)
//   alie       mean - z * std per coordinate over the honest deltas, z from Baruch et al. 2019:
//              s = floor(n/2 + 1) - f, z = Phi^-1((n - s) / n)   ("a little is enough")
//   ipm        -eps * mean of the honest deltas       (inner-product manipulation, Xie et al. 2020)
import { gaussian } from '../random.ts';
import { mean } from './aggregate.ts';
import { type Delta, scaled } from './delta.ts';
import type { Attack } from './simulate.ts';

export type { Attack, AttackContext } from './simulate.ts';

/** -own, times `scale` (1 = the plain sign flip; a larger scale outweighs the honest majority in a mean). */
export function signFlip(scale = 1): Attack {
  return { name: scale === 1 ? 'sign-flip' : `sign-flip x${scale}`, trains: true, craft: (c) => scaled(c.own!, -scale) };
}

export function scaledDelta(factor: number): Attack {
  return { name: `scaled x${factor}`, trains: true, craft: (c) => scaled(c.own!, factor) };
}

export function gaussianNoise(std: number): Attack {
  return {
    name: `noise std ${std}`,
    trains: false,
    craft: (c) => {
      const g = gaussian(c.rng);
      return new Map([...c.honest[0]!].map(([k, v]) => [k, v.map(() => g() * std)]));
    },
  };
}

/** Baruch et al.'s z_max for n participants of which f are attackers. */
export function alieZ(n: number, f: number): number {
  const s = Math.floor(n / 2 + 1) - f;
  return inverseNormal((n - s) / n);
}

export function alie(z?: number): Attack {
  return {
    name: z === undefined ? 'alie' : `alie z ${z}`,
    trains: false,
    craft: (c) => {
      const zz = z ?? alieZ(c.n, c.f);
      const mu = mean(c.honest);
      const out: Delta = new Map();
      for (const [name, m] of mu) {
        const xs = c.honest.map((d) => d.get(name)!);
        const v = new Float32Array(m.length);
        for (let i = 0; i < m.length; i++) {
          let s2 = 0;
          for (const x of xs) s2 += (x[i]! - m[i]!) ** 2;
          v[i] = m[i]! - zz * Math.sqrt(s2 / Math.max(1, xs.length - 1));
        }
        out.set(name, v);
      }
      return out;
    },
  };
}

export function ipm(eps: number): Attack {
  return { name: `ipm eps ${eps}`, trains: false, craft: (c) => scaled(mean(c.honest), -eps) };
}

/** Acklam's rational approximation of the standard normal quantile (relative error < 1.2e-9). */
export function inverseNormal(p: number): number {
  if (p <= 0) return -Infinity;
  if (p >= 1) return Infinity;
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  if (p > 1 - lo) return -inverseNormal(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
}
