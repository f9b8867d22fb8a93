// The participant side of one DiLoCo round, with no I/O: load the global weights (the participant's AdamW
// moments and step stay its own), run H inner steps on its own data, and return its pseudo-gradient
// theta_global - theta_local. The simulation calls this for each participant; a `diloco join` would call it
// between pulling the weights and pushing the encoded delta (the seam).
import type { BatchCursor } from '../data.ts';
import type { TensorMap } from '../params.ts';
import type { Trainer } from '../trainer.ts';
import { type Delta, pseudoGradient } from './delta.ts';

export interface InnerRound {
  delta: Delta;
  /** Training loss of each inner step (before its update). */
  losses: number[];
}

export function innerRound(trainer: Trainer, cursor: BatchCursor, global: TensorMap, innerSteps: number): InnerRound {
  trainer.params.setParams(global);
  const losses: number[] = [];
  for (let s = 0; s < innerSteps; s++) {
    const b = cursor.next();
    losses.push(trainer.trainStep(b.input, b.target).loss);
  }
  return { delta: pseudoGradient(global, trainer.params.getParams()), losses };
}
