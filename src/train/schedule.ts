// The learning-rate schedule: linear warmup to the peak, then cosine decay to minLrRatio * peak at the
// last step. A pure function of the step, so a resumed run follows exactly the schedule of an unbroken one.
import type { OptimConfig } from './config.ts';

/** Learning rate of optimiser step `step` (0-based) of `o.steps`. */
export function learningRate(step: number, o: Pick<OptimConfig, 'lr' | 'warmup' | 'steps' | 'minLrRatio'>): number {
  if (o.warmup > 0 && step < o.warmup) return (o.lr * (step + 1)) / o.warmup;
  const decaySteps = Math.max(1, o.steps - o.warmup - 1);
  const progress = Math.min(1, Math.max(0, (step - o.warmup) / decaySteps));
  const min = o.lr * o.minLrRatio;
  return min + 0.5 * (o.lr - min) * (1 + Math.cos(Math.PI * progress));
}
