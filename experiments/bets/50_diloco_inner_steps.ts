// Bet 50 — DiLoCo's inner steps: does H = 100 beat H = 1 at equal compute?
//
// Hypothesis (the original catalogue's claim, re-run under the methodology): with K = 4 participants at equal
// inner steps and tokens, DiLoCo with H = 100 inner steps per round reaches a lower held-out perplexity than
// H = 1 (the original single-seed run said by 24%; the catalogue later retracted it with multi-seed runs
// where H = 1 won by 5-15%). Each arm has its own tuned outer learning rate (grid 0.1, 0.3, 0.7, 1.0, chosen
// on validation) and early stopping on validation (patience 2 evaluations, every 100 inner steps); the
// number compared is the held-out perplexity at the best validation point.
//
// STRICT:       ratio_hmax_h1 <= 0.90 (H = 100 at least 10% better than H = 1).
// LENIENT:      ratio_hmax_h1 < 1.00 (H = 100 better at all).
// CATASTROPHIC: ratio_hmax_h1 >= 1.05 (H = 1 better by 5% or more: the retraction's direction).
// Controls: (a) synchronous data-parallel (one AdamW step on the 4 participants' batches as one batch of
//           16 rows) at the same steps and tokens, with its own tuned lr (grid 1.5e-3, 3e-3, 6e-3, 1.2e-2);
//           (b) H = 10 between the two ends.
// Seeds: 1, 2, 3 (initial weights, data order of each participant).
// Sizes: tiny llama (43k parameters), 500 inner steps per participant, batch 4 x 32 tokens, inner AdamW lr 3e-3.
// Run: npm run bet -- 50
import { defineBet, isMain, runFromCli } from './_common.ts';
import { type SweepSizes, finishSweep, measureSweep, sweepQuantities } from './_diloco_h.ts';

const HS = [1, 10, 100];

export const bet = defineBet<SweepSizes>({
  id: '50',
  name: 'diloco_inner_steps',
  hypothesis: 'With K = 4 participants at equal compute and tokens, DiLoCo with H = 100 inner steps reaches a lower held-out perplexity than H = 1 (each arm with a tuned outer lr and early stopping on validation).',
  notClaimed: 'A 43k-parameter model, 500 inner steps on 188 KB of prose, 3 seeds: nothing about the large-model regime of the DiLoCo papers, wall-clock time or communication cost.',
  run: 'npm run bet -- 50',
  seeds: [1, 2, 3],
  threads: 1,
  criteria: [
    { level: 'strict', quantity: 'ratio_hmax_h1', stat: 'mean', op: '<=', threshold: 0.9, words: 'ratio_hmax_h1 <= 0.90' },
    { level: 'lenient', quantity: 'ratio_hmax_h1', stat: 'mean', op: '<', threshold: 1, words: 'ratio_hmax_h1 < 1.00' },
    { level: 'catastrophic', quantity: 'ratio_hmax_h1', stat: 'mean', op: '>=', threshold: 1.05, words: 'ratio_hmax_h1 >= 1.05' },
  ],
  controls: [
    { name: 'synchronous data-parallel', description: 'one AdamW step per batch of the 4 participants\' rows (16 rows), same steps and tokens, tuned lr, same early stopping' },
    { name: 'H = 10', description: 'the middle of the sweep, tuned and early-stopped the same way' },
  ],
  quantities: sweepQuantities(HS),
  sizes: {
    full: { participants: 4, hs: HS, steps: 500, evalEveryInner: 100, patience: 2, outerLrs: [0.1, 0.3, 0.7, 1.0], syncLrs: [1.5e-3, 3e-3, 6e-3, 1.2e-2], validationFraction: 0.08 },
    smoke: { participants: 2, hs: HS, steps: 100, evalEveryInner: 100, patience: 1, outerLrs: [0.7], syncLrs: [3e-3], validationFraction: 0.08 },
  },
  measure: measureSweep,
  finish: (runs, sizes) => finishSweep('50', runs, sizes),
});

if (isMain(import.meta.url)) await runFromCli(bet);
