// Bet 68 — hardened replacement of Bet 50 (DiLoCo's inner steps at equal compute), with wider tuning grids.
//
// What Bet 50 got wrong: its tuned learning rates sat on the edges of their grids (H = 1 chose the smallest
// outer lr, 0.1; H = 100 the largest, 1.0; synchronous data-parallel the largest AdamW lr, 1.2e-2), so an arm
// may have been compared short of its best. Same hypothesis, word for word; the grids are widened on both
// sides (6 values per arm, the same budget for every arm); thresholds unchanged.
//
// Hypothesis: with K = 4 participants at equal compute and tokens, DiLoCo with H = 100 inner steps reaches a
// lower held-out perplexity than H = 1 (each arm with a tuned outer lr and early stopping on validation).
//
// STRICT:       ratio_hmax_h1 <= 0.90 (H = 100 at least 10% better than H = 1).
// LENIENT:      ratio_hmax_h1 < 1.00 (H = 100 better at all).
// CATASTROPHIC: ratio_hmax_h1 >= 1.05 (H = 1 better by 5% or more).
// Controls: as Bet 50: synchronous data-parallel (batch of 16 rows) tuned on a grid of the same size
//           (1.5e-3 .. 4.8e-2), and H = 10; the same early stopping (validation every 100 inner steps,
//           patience 2) for every arm.
// Outer lr grid: 0.03, 0.1, 0.3, 0.7, 1.0, 1.4 (momentum 0.9). Inner AdamW lr 3e-3 for every DiLoCo arm.
// Seeds: 1, 2, 3.
// Sizes: tiny llama (43k parameters), 500 inner steps per participant, batch 4 x 32 tokens.
// Run: npm run bet -- 68
import { defineBet, isMain, runFromCli } from './_common.ts';
import { type SweepSizes, finishSweep, measureSweep, sweepQuantities } from './_diloco_h.ts';
import { bet as bet50 } from './50_diloco_inner_steps.ts';

const HS = [1, 10, 100];

export const bet = defineBet<SweepSizes>({
  id: '68',
  name: 'diloco_inner_steps_wide',
  hypothesis: bet50.hypothesis,
  notClaimed: 'A 43k-parameter model, 500 inner steps on 188 KB of prose, 3 seeds; the DiLoCo arms tune the outer lr only (inner AdamW lr fixed at 3e-3) while the synchronous baseline tunes its AdamW lr: nothing about the large-model regime.',
  run: 'npm run bet -- 68',
  seeds: [1, 2, 3],
  threads: 1,
  criteria: bet50.criteria,
  controls: bet50.controls,
  quantities: sweepQuantities(HS),
  sizes: {
    full: { ...bet50.sizes.full, outerLrs: [0.03, 0.1, 0.3, 0.7, 1.0, 1.4], syncLrs: [1.5e-3, 3e-3, 6e-3, 1.2e-2, 2.4e-2, 4.8e-2] },
    smoke: bet50.sizes.smoke,
  },
  measure: measureSweep,
  finish: (runs, sizes) => finishSweep('68', runs, sizes),
});

if (isMain(import.meta.url)) await runFromCli(bet);
