// Bet 44 — coarse byzantine participants in DiLoCo: do the robust aggregators hold?
//
// Hypothesis: with f of K = 1 of 4 and 2 of 8 participants sending sign-flipped (x1 and x4) or Gaussian-noise
// (std 0.1) deltas, every robust aggregator (coordinate-wise median, trimmed mean, centered clipping, Krum)
// ends DiLoCo training within 10% of the clean run's final held-out perplexity, while the mean does not.
// "ratio" = final held-out perplexity of a run / that of the clean run with the mean at the same K and seed;
// an aggregator's "worst ratio" is its largest over the 2 settings x 3 attacks.
//
// STRICT:       robust_worst_ratio <= 1.10 (every robust aggregator within 10% everywhere), and the attack is
//               real: mean_worst_ratio >= 1.5.
// LENIENT:      best_robust_worst_ratio <= 1.10 (at least one robust aggregator within 10% everywhere),
//               robust_worst_ratio <= 1.25, and mean_worst_ratio >= 1.5.
// CATASTROPHIC: best_robust_worst_ratio > 1.5 (no robust aggregator within 50% of the clean run somewhere).
// Controls: (a) the mean under the same attacks (if it is not hurt, the attack is too weak to test anything:
//           mean_worst_ratio >= 1.5 is part of STRICT and LENIENT); (b) every aggregator without attackers
//           (clean_<aggregator>_ratio: the price of robustness, reported).
// Seeds: 1, 2, 3 (initial weights, each participant's data order, the attack's randomness, the run order).
// Sizes: tiny llama (43k parameters), 12 rounds of H = 8 inner AdamW steps, outer Nesterov lr 0.7, momentum
//        0.9 (Douillard et al. 2023), f32 deltas; corpus test/fixtures/prose, a shard per participant.
// Run: npm run bet -- 44
import { AGGREGATORS } from '../../src/train/diloco/config.ts';
import { defineBet, isMain, runFromCli } from './_common.ts';
import { type ByzantineSizes, byzantineQuantities, finishByzantine, measureByzantine } from './_diloco.ts';

export const bet = defineBet<ByzantineSizes>({
  id: '44',
  name: 'byzantine_coarse',
  hypothesis: 'With 1 of 4 or 2 of 8 DiLoCo participants sending sign-flipped (x1, x4) or Gaussian-noise deltas, every robust aggregator (median, trimmed mean, centered clipping, Krum) ends within 10% of the clean run\'s held-out perplexity, while the mean does not.',
  notClaimed: 'A 43k-parameter model on 188 KB of prose over 12 rounds: nothing about large models, long runs, non-IID shards beyond contiguous text, or adaptive attackers (Bet 65 covers ALIE and IPM).',
  run: 'npm run bet -- 44',
  seeds: [1, 2, 3],
  threads: 1,
  criteria: [
    { level: 'strict', quantity: 'robust_worst_ratio', stat: 'mean', op: '<=', threshold: 1.1, words: 'robust_worst_ratio <= 1.10' },
    { level: 'strict', quantity: 'mean_worst_ratio', stat: 'mean', op: '>=', threshold: 1.5, words: 'mean_worst_ratio >= 1.5 (the attack is real)' },
    { level: 'lenient', quantity: 'best_robust_worst_ratio', stat: 'mean', op: '<=', threshold: 1.1, words: 'best_robust_worst_ratio <= 1.10' },
    { level: 'lenient', quantity: 'robust_worst_ratio', stat: 'mean', op: '<=', threshold: 1.25, words: 'robust_worst_ratio <= 1.25' },
    { level: 'lenient', quantity: 'mean_worst_ratio', stat: 'mean', op: '>=', threshold: 1.5, words: 'mean_worst_ratio >= 1.5' },
    { level: 'catastrophic', quantity: 'best_robust_worst_ratio', stat: 'mean', op: '>', threshold: 1.5, words: 'best_robust_worst_ratio > 1.5' },
  ],
  controls: [
    { name: 'mean under attack', description: 'the same attacks against the plain mean: it must be hurt (mean_worst_ratio >= 1.5) for the robust aggregators\' result to mean anything' },
    { name: 'clean runs per aggregator', description: 'every aggregator without attackers, against the clean mean run (the price of robustness)' },
  ],
  quantities: byzantineQuantities(AGGREGATORS),
  sizes: {
    full: { settings: [{ participants: 4, attackers: 1 }, { participants: 8, attackers: 2 }], attacks: ['sign-flip', 'sign-flip-x4', 'noise'], aggregators: [...AGGREGATORS], rounds: 12, innerSteps: 8 },
    smoke: { settings: [{ participants: 3, attackers: 1 }], attacks: ['sign-flip-x4'], aggregators: [...AGGREGATORS], rounds: 2, innerSteps: 2 },
  },
  measure: measureByzantine,
  finish: (runs, sizes) => finishByzantine('44', runs, sizes),
});

if (isMain(import.meta.url)) await runFromCli(bet);
