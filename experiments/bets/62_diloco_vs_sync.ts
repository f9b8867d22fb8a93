// Bet 62 — DiLoCo against synchronous data-parallel at equal compute, and its sensitivity to H.
//
// Hypothesis: with K = 4 participants at equal inner steps and tokens, the best DiLoCo setting (H = 1, 10 or
// 100, each with a tuned outer lr and early stopping) reaches a held-out perplexity no worse than synchronous
// data-parallel training (Charles et al. 2025 find DiLoCo ahead of data-parallel at every scale they tried),
// and H = 100 stays close to H = 10 (Douillard et al. 2023: H = 500 within 2.9% of H = 50).
// Same runs as Bet 50 (cached per commit and seed); this bet reads them for the other published claims.
//
// STRICT:       ratio_best_diloco_sync <= 1.00 and ratio_hmax_hmid <= 1.03.
// LENIENT:      ratio_best_diloco_sync <= 1.05 and ratio_hmax_hmid <= 1.10.
// CATASTROPHIC: ratio_best_diloco_sync > 1.25 (DiLoCo a quarter worse than synchronous training).
// Controls: (a) synchronous data-parallel tuned on the same size of grid (4 AdamW lrs) as each DiLoCo arm
//           (4 outer lrs); (b) the same early stopping (validation every 100 inner steps, patience 2).
// Seeds: 1, 2, 3.
// Sizes: as Bet 50.
// Run: npm run bet -- 62
import { defineBet, isMain, runFromCli } from './_common.ts';
import { type SweepSizes, finishSweep, measureSweep, sweepQuantities } from './_diloco_h.ts';
import { bet as bet50 } from './50_diloco_inner_steps.ts';

const HS = [1, 10, 100];

export const bet = defineBet<SweepSizes>({
  id: '62',
  name: 'diloco_vs_sync',
  hypothesis: 'With K = 4 participants at equal compute and tokens, the best DiLoCo setting (H = 1, 10, 100; tuned outer lr; early stopping) is no worse than synchronous data-parallel training in held-out perplexity, and H = 100 stays within 3% of H = 10.',
  notClaimed: 'A 43k-parameter model, 500 inner steps on 188 KB of prose, 3 seeds: nothing about the scaling-law regime of Charles et al. 2025, wall-clock time or communication cost.',
  run: 'npm run bet -- 62',
  seeds: [1, 2, 3],
  threads: 1,
  criteria: [
    { level: 'strict', quantity: 'ratio_best_diloco_sync', stat: 'mean', op: '<=', threshold: 1, words: 'ratio_best_diloco_sync <= 1.00' },
    { level: 'strict', quantity: 'ratio_hmax_hmid', stat: 'mean', op: '<=', threshold: 1.03, words: 'ratio_hmax_hmid <= 1.03' },
    { level: 'lenient', quantity: 'ratio_best_diloco_sync', stat: 'mean', op: '<=', threshold: 1.05, words: 'ratio_best_diloco_sync <= 1.05' },
    { level: 'lenient', quantity: 'ratio_hmax_hmid', stat: 'mean', op: '<=', threshold: 1.1, words: 'ratio_hmax_hmid <= 1.10' },
    { level: 'catastrophic', quantity: 'ratio_best_diloco_sync', stat: 'mean', op: '>', threshold: 1.25, words: 'ratio_best_diloco_sync > 1.25' },
  ],
  controls: [
    { name: 'synchronous data-parallel', description: 'one AdamW step per batch of the 4 participants\' rows, tuned on a grid of the same size, same early stopping' },
    { name: 'same early stopping', description: 'validation every 100 inner steps, patience 2, for every arm' },
  ],
  quantities: sweepQuantities(HS),
  sizes: bet50.sizes,
  measure: measureSweep,
  finish: (runs, sizes) => finishSweep('62', runs, sizes),
});

if (isMain(import.meta.url)) await runFromCli(bet);
