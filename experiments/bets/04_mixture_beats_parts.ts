// Bet 04 — the mixture beats its parts: a posterior mixture of domain specialists (src/model/mixture/) is
// better than any one of them on text that moves between their domains, close to the oracle on each domain,
// and better than one model trained on all their data with the same compute; and the gain comes from
// specialisation, not from ensembling: a mixture of specialists trained on RANDOM splits of the same data
// (BTM's control, Li et al. 2022) gains less over that one model.
//
// Perplexity ratios (exp of mean NLL per token over held-out windows; < 1: the mixture is better):
//   mix_over_best_single_mixed  posterior mixture / the best single specialist, on the mixed-domain windows
//   mix_over_oracle_domains     posterior mixture / the right specialist, mean over the three domain sets
//   mix_over_union_all          posterior mixture / the union model (3x steps on all the data), all sets
//   random_mix_over_union_all   the same for the mixture of random-split specialists (the control)
//   specialization_gain         random_mix_over_union_all - mix_over_union_all
//
// STRICT:       mix_over_best_single_mixed <= 0.95, mix_over_oracle_domains <= 1.05,
//               mix_over_union_all <= 0.97 and specialization_gain >= 0.03.
// LENIENT:      mix_over_best_single_mixed <= 1.0, mix_over_oracle_domains <= 1.10, mix_over_union_all <= 1.0.
// CATASTROPHIC: mix_over_best_single_mixed > 1.10 (mixing hurts on mixed text), or mix_over_base_all > 1.0
//               (the mixture of fine-tunes is worse than the base it came from).
// Controls: random-split specialists with the same data and compute (BTM), the union model, the base, the
//           uniform ensemble and top-1 routing (reported).
// Seeds: 1, 2, 3 (each fine-tune's data order and sample of training files; the held-out split is fixed).
// Sizes: SharedLLM-tiny (7.2M) fine-tuned 40 steps x 2 rows x 128 tokens per specialist (union: 120 steps),
//        lr 1e-3, on ~120k characters per domain: Go 1.19 source, the Spanish Reina-Valera Bible, Linux 6.1
//        kernel documentation (scripts/fetch-corpora.ts); held-out: 12 windows of 128 tokens per domain and
//        12 mixed windows (a third of each domain, rotating order).
// Run: npm run bet -- 04 (needs data/corpora: node --import tsx scripts/fetch-corpora.ts)
import { defineBet, isMain, runFromCli } from './_common.ts';
import type { MixtureSizes } from './_mixture.ts';
import { finishMixture, mixtureQuantities04, measure04 } from './_mixture_report.ts';
import { MIXTURE_SIZES } from './_mixture_run.ts';

export const bet = defineBet<MixtureSizes>({
  id: '04',
  name: 'mixture_beats_parts',
  hypothesis: 'A posterior mixture of domain specialists beats the best single specialist on mixed-domain text by >= 5%, stays within 5% of the oracle on each domain, beats one model trained on all their data with the same compute, and gains at least 3 points more over that model than a mixture of random-split specialists does.',
  notClaimed: 'Tiny models (7.2M parameters) fine-tuned briefly on three very different domains: nothing about large models, close domains, long fine-tunes, or routing by a learned router.',
  run: 'npm run bet -- 04',
  seeds: [1, 2, 3],
  threads: 1,
  criteria: [
    { level: 'strict', quantity: 'mix_over_best_single_mixed', stat: 'mean', op: '<=', threshold: 0.95, words: 'mix_over_best_single_mixed <= 0.95' },
    { level: 'strict', quantity: 'mix_over_oracle_domains', stat: 'mean', op: '<=', threshold: 1.05, words: 'mix_over_oracle_domains <= 1.05' },
    { level: 'strict', quantity: 'mix_over_union_all', stat: 'mean', op: '<=', threshold: 0.97, words: 'mix_over_union_all <= 0.97' },
    { level: 'strict', quantity: 'specialization_gain', stat: 'mean', op: '>=', threshold: 0.03, words: 'specialization_gain >= 0.03' },
    { level: 'lenient', quantity: 'mix_over_best_single_mixed', stat: 'mean', op: '<=', threshold: 1.0, words: 'mix_over_best_single_mixed <= 1.0' },
    { level: 'lenient', quantity: 'mix_over_oracle_domains', stat: 'mean', op: '<=', threshold: 1.1, words: 'mix_over_oracle_domains <= 1.10' },
    { level: 'lenient', quantity: 'mix_over_union_all', stat: 'mean', op: '<=', threshold: 1.0, words: 'mix_over_union_all <= 1.0' },
    { level: 'catastrophic', quantity: 'mix_over_best_single_mixed', stat: 'mean', op: '>', threshold: 1.1, words: 'mix_over_best_single_mixed > 1.10' },
    { level: 'catastrophic', quantity: 'mix_over_base_all', stat: 'mean', op: '>', threshold: 1.0, words: 'mix_over_base_all > 1.0' },
  ],
  controls: [
    { name: 'random-split specialists (BTM)', description: 'three models fine-tuned on random thirds of the union of the same data with the same steps: their posterior mixture against the union model shows what plain ensembling gives' },
    { name: 'union model', description: 'one model fine-tuned on all the data for 3x the steps (the specialists\' compute together)' },
    { name: 'base, uniform ensemble, top-1 routing', description: 'reported for every set' },
  ],
  quantities: mixtureQuantities04(),
  sizes: MIXTURE_SIZES,
  measure: measure04,
  finish: (runs) => finishMixture('04', runs),
});

if (isMain(import.meta.url)) await runFromCli(bet);
