// How long a remote chain may take to answer a step before its worker counts as hung: a deadline that scales
// with the work and with what steps of that size have measured (see DataPlaneConfig):
//
//   deadline(n tokens) = stepFloorMs + stepSlowdown x median(recent wall times of steps in n's size class)
//                        + stepPerTokenMs x n
//
// Size classes are powers of two (1, 2-3, 4-7, ...): a decode step is not judged by a prefill's time, nor the
// other way round. Until a class has `stepMinSamples` steps, the slowest per-token rate measured in any class
// stands in for it (smaller steps have the higher per-token rate, so this errs on the long side).
import type { DataPlaneConfig } from './dataplane-config.ts';

const PER_CLASS = 32;

export class StepDeadline {
  /** Per size class: the last PER_CLASS wall times (ms) of steps in that class, with their token counts. */
  private readonly classes = new Map<number, { ms: number; tokens: number }[]>();

  constructor(private readonly config: Pick<DataPlaneConfig, 'stepFloorMs' | 'stepSlowdown' | 'stepPerTokenMs' | 'stepMinSamples'>) {}

  /** A chain answered a step of `tokens` tokens after `wallMs`. */
  record(tokens: number, wallMs: number): void {
    const c = sizeClass(tokens);
    const ring = this.classes.get(c) ?? this.classes.set(c, []).get(c)!;
    ring.push({ ms: wallMs, tokens });
    if (ring.length > PER_CLASS) ring.shift();
  }

  /** The expected wall time of a step of `tokens` tokens (0 when nothing was measured yet). */
  expectedMs(tokens: number): number {
    const ring = this.classes.get(sizeClass(tokens));
    if (ring && ring.length >= this.config.stepMinSamples) return median(ring.map((r) => r.ms));
    let worstPerToken = 0;
    for (const r of this.classes.values()) {
      if (r.length >= this.config.stepMinSamples) worstPerToken = Math.max(worstPerToken, median(r.map((x) => x.ms / x.tokens)));
    }
    return worstPerToken * tokens;
  }

  deadlineMs(tokens: number): number {
    return Math.round(this.config.stepFloorMs + this.config.stepSlowdown * this.expectedMs(tokens) + this.config.stepPerTokenMs * tokens);
  }
}

function sizeClass(tokens: number): number {
  return Math.floor(Math.log2(Math.max(1, tokens)));
}

function median(xs: number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
