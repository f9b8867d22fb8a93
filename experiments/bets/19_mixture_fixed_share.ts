// Bet 19 — fixed-share weights let the mixture follow text that moves between domains.
//
// Motivation (after Bets 04 and 18, stated so as not to hide it): with exact Bayes weights (fixed share 0, the
// code's default) the posterior mixture locked onto the first domain of a mixed window (Bet 04: only 2.9%
// better than the best single specialist there, while the uniform ensemble was 2.1x better than it). Fixed
// share (Herbster & Warmuth 1998: after each Bayes update, w <- (1 - a) w + a / K) keeps every specialist
// reachable. a = 0.02 is chosen here, before any run with it, from the literature's usual range, not tuned.
//
//   fs_over_best_single_mixed  fixed-share mixture / the best single specialist, mixed-domain windows
//   fs_over_uniform_mixed      fixed-share mixture / the uniform ensemble, mixed windows
//   fs_over_oracle_domains     fixed-share mixture / the right specialist, mean over the domain sets (the price
//                              of keeping every specialist reachable on single-domain text)
//   fs_over_posterior_mixed    fixed-share / exact-Bayes posterior mixture, mixed windows (reported)
//   fs_top_is_domain_mixed     share of mixed-window tokens whose top-credited specialist is the segment's domain
//
// STRICT:       fs_over_best_single_mixed <= 0.90, fs_over_uniform_mixed <= 1.0, fs_over_oracle_domains <= 1.05.
// LENIENT:      fs_over_best_single_mixed <= 0.95, fs_over_oracle_domains <= 1.10.
// CATASTROPHIC: fs_over_oracle_domains > 1.20 (fixed share ruins single-domain text).
// Controls: exact Bayes (a = 0), the uniform ensemble, every single specialist, the oracle, all on the same
//           windows and models.
// Seeds: 1, 2, 3. Models, data and windows: exactly Bet 04's (04_mixture_beats_parts.ts), retrained here
// because the scoring code gained the fixed-share arm (same seeds, same sizes: the same models).
// Run: npm run bet -- 19 (needs data/corpora: node --import tsx scripts/fetch-corpora.ts --all)
import { defineBet, isMain, runFromCli, type MeasureContext, type SeedMeasurement } from './_common.ts';
import type { MixtureSizes } from './_mixture.ts';
import { finishMixture } from './_mixture_report.ts';
import { MIXTURE_SIZES, type MixtureRun, mixtureRun } from './_mixture_run.ts';
import { mean } from './_stats.ts';

const ALPHA = 0.02;

async function measure(ctx: MeasureContext<MixtureSizes>): Promise<SeedMeasurement> {
  const run: MixtureRun = await mixtureRun(ctx.sizes, ctx.seed, ctx.smoke, ctx.log);
  const mixed = run.sets.find((s) => s.set === 'mixed')!;
  const domains = run.sets.filter((s) => s.set !== 'mixed');
  const fs = (s: (typeof run.sets)[number]) => s.fixedShare!.nll;
  return {
    values: {
      fs_over_best_single_mixed: Math.exp(fs(mixed) - Math.min(...mixed.specialists)),
      fs_over_uniform_mixed: Math.exp(fs(mixed) - mixed.mixture.uniform),
      fs_over_oracle_domains: mean(domains.map((s) => Math.exp(fs(s) - s.oracle))),
      fs_over_posterior_mixed: Math.exp(fs(mixed) - mixed.mixture.posterior),
      fs_top_is_domain_mixed: mixed.fixedShare!.topIsDomain,
    },
    extra: run,
  };
}

export const bet = defineBet<MixtureSizes>({
  id: '19',
  name: 'mixture_fixed_share',
  hypothesis: 'With fixed-share weights (a = 0.02) the posterior mixture follows text that moves between domains: >= 10% better than the best single specialist and no worse than the uniform ensemble on mixed-domain windows, while staying within 5% of the oracle on single-domain text.',
  notClaimed: 'That a = 0.02 is the best fixed share, or anything about domains closer than Go, Spanish and kernel docs, or larger models.',
  run: 'npm run bet -- 19',
  seeds: [1, 2, 3],
  threads: 1,
  criteria: [
    { level: 'strict', quantity: 'fs_over_best_single_mixed', stat: 'mean', op: '<=', threshold: 0.9, words: 'fs_over_best_single_mixed <= 0.90' },
    { level: 'strict', quantity: 'fs_over_uniform_mixed', stat: 'mean', op: '<=', threshold: 1.0, words: 'fs_over_uniform_mixed <= 1.0' },
    { level: 'strict', quantity: 'fs_over_oracle_domains', stat: 'mean', op: '<=', threshold: 1.05, words: 'fs_over_oracle_domains <= 1.05' },
    { level: 'lenient', quantity: 'fs_over_best_single_mixed', stat: 'mean', op: '<=', threshold: 0.95, words: 'fs_over_best_single_mixed <= 0.95' },
    { level: 'lenient', quantity: 'fs_over_oracle_domains', stat: 'mean', op: '<=', threshold: 1.1, words: 'fs_over_oracle_domains <= 1.10' },
    { level: 'catastrophic', quantity: 'fs_over_oracle_domains', stat: 'mean', op: '>', threshold: 1.2, words: 'fs_over_oracle_domains > 1.20' },
  ],
  controls: [
    { name: 'exact Bayes (a = 0)', description: 'the default weights on the same windows (fs_over_posterior_mixed)' },
    { name: 'uniform ensemble, single specialists, oracle', description: 'on the same windows and models' },
  ],
  quantities: {
    fs_over_best_single_mixed: { unit: 'ratio', description: 'perplexity of the fixed-share mixture / the best single specialist, mixed windows' },
    fs_over_uniform_mixed: { unit: 'ratio', description: 'fixed-share mixture / uniform ensemble, mixed windows' },
    fs_over_oracle_domains: { unit: 'ratio', description: 'fixed-share mixture / the right specialist, mean over the domain sets' },
    fs_over_posterior_mixed: { unit: 'ratio', description: 'fixed-share / exact-Bayes mixture, mixed windows (< 1: fixed share helps)' },
    fs_top_is_domain_mixed: { unit: 'fraction', description: 'mixed-window tokens whose top-credited specialist is the segment\'s domain (chance 1/3)' },
  },
  sizes: { full: { ...MIXTURE_SIZES.full, fixedShare: ALPHA }, smoke: { ...MIXTURE_SIZES.smoke, fixedShare: ALPHA } },
  measure,
  finish: (runs) => finishMixture('19', runs),
});

if (isMain(import.meta.url)) await runFromCli(bet);
