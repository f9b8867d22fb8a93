// Bet 65 — subtle adversaries in DiLoCo: ALIE and IPM with 20% attackers against robust aggregators.
//
// Hypothesis: with 20% of DiLoCo participants (K = 5 with f = 1, K = 10 with f = 2) sending ALIE deltas
// (Baruch et al. 2019: mean - z_max * std per coordinate of the honest deltas) or IPM deltas (Xie et al. 2020:
// -eps * the honest mean, eps 0.1 and 0.5), every robust aggregator (median, trimmed mean, centered clipping,
// Krum) ends within 10% of the clean run's final held-out perplexity. The literature reports ALIE halving
// accuracy under several defences in SGD; no published study covers DiLoCo's averaged deltas at ~8
// participants, so either outcome is new evidence.
// "ratio" = final held-out perplexity / that of the clean run with the mean at the same K and seed; an
// aggregator's "worst ratio" is its largest over the 2 settings x 3 attacks.
//
// STRICT:       robust_worst_ratio <= 1.10 (every robust aggregator within 10% everywhere).
// LENIENT:      best_robust_worst_ratio <= 1.10 (at least one robust aggregator within 10% everywhere) and
//               robust_worst_ratio <= 1.25.
// CATASTROPHIC: best_robust_worst_ratio > 1.5 (no robust aggregator within 50% of the clean run somewhere).
// Controls: (a) every aggregator without attackers (clean_<aggregator>_ratio: a robust aggregator that is bad
//           when clean is not "broken by the attack"); (b) the plain mean under the same attacks (reported;
//           these attacks are built to slip past robust rules, not to beat the mean).
// Seeds: 1, 2, 3 (initial weights, each participant's data order, the run order).
// Sizes: as Bet 44: tiny llama (43k parameters), 12 rounds of H = 8 inner AdamW steps, outer Nesterov lr 0.7,
//        momentum 0.9, f32 deltas; corpus test/fixtures/prose, a shard per participant.
// Run: npm run bet -- 65
import { AGGREGATORS } from '../../src/train/diloco/config.ts';
import { defineBet, isMain, runFromCli } from './_common.ts';
import { type ByzantineSizes, byzantineQuantities, finishByzantine, measureByzantine } from './_diloco.ts';

export const bet = defineBet<ByzantineSizes>({
  id: '65',
  name: 'byzantine_subtle',
  hypothesis: 'With 20% of DiLoCo participants (1 of 5, 2 of 10) sending ALIE or IPM (eps 0.1, 0.5) deltas, every robust aggregator (median, trimmed mean, centered clipping, Krum) ends within 10% of the clean run\'s held-out perplexity.',
  notClaimed: 'A 43k-parameter model on 188 KB of prose over 12 rounds, attackers that know the honest deltas but do not adapt across rounds: nothing about large models, long runs or stronger adaptive attacks.',
  run: 'npm run bet -- 65',
  seeds: [1, 2, 3],
  threads: 1,
  criteria: [
    { level: 'strict', quantity: 'robust_worst_ratio', stat: 'mean', op: '<=', threshold: 1.1, words: 'robust_worst_ratio <= 1.10' },
    { level: 'lenient', quantity: 'best_robust_worst_ratio', stat: 'mean', op: '<=', threshold: 1.1, words: 'best_robust_worst_ratio <= 1.10' },
    { level: 'lenient', quantity: 'robust_worst_ratio', stat: 'mean', op: '<=', threshold: 1.25, words: 'robust_worst_ratio <= 1.25' },
    { level: 'catastrophic', quantity: 'best_robust_worst_ratio', stat: 'mean', op: '>', threshold: 1.5, words: 'best_robust_worst_ratio > 1.5' },
  ],
  controls: [
    { name: 'clean runs per aggregator', description: 'every aggregator without attackers, against the clean mean run (the price of robustness)' },
    { name: 'mean under attack', description: 'the same attacks against the plain mean (reported)' },
  ],
  quantities: byzantineQuantities(AGGREGATORS),
  sizes: {
    full: { settings: [{ participants: 5, attackers: 1 }, { participants: 10, attackers: 2 }], attacks: ['alie', 'ipm-0.1', 'ipm-0.5'], aggregators: [...AGGREGATORS], rounds: 12, innerSteps: 8 },
    smoke: { settings: [{ participants: 3, attackers: 1 }], attacks: ['alie', 'ipm-0.1'], aggregators: [...AGGREGATORS], rounds: 2, innerSteps: 2 },
  },
  measure: measureByzantine,
  finish: (runs, sizes) => finishByzantine('65', runs, sizes),
});

if (isMain(import.meta.url)) await runFromCli(bet);
