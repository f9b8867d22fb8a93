// Bet 18 — the glass-box attribution is faithful: on held-out text of one domain, the specialist the trail
// credits most for a token (share w_k p_k(t) / p(t), posterior mixture, src/model/mixture/) is mostly that
// domain's specialist; removing the top-credited specialist from the mixture raises the token's NLL more than
// removing another one; and a mixture of specialists that have no domain (random splits of the same data)
// spreads its credit about evenly.
//
//   top_is_domain       share of domain-set tokens whose top-credited specialist is their domain's (chance 1/3)
//   ablation_top_worse  share of domain-set tokens for which dropping the top-credited specialist (weights
//                       renormalised) raises the NLL more than dropping a random other one
//   random_share_dev    control: the random-split mixture's largest |mean share - 1/3| over models, averaged
//                       over the domain sets (0: perfectly even credit)
//   domain_share_dev    the same for the domain specialists (reported: how far from even real credit is)
//
// STRICT:       top_is_domain >= 0.6, ablation_top_worse >= 0.7 and random_share_dev <= 0.15.
// LENIENT:      top_is_domain >= 0.5 and ablation_top_worse >= 0.6.
// CATASTROPHIC: top_is_domain <= 0.4 (credit no better than about chance).
// Controls: random-split specialists (no domain: their credit should be near uniform); a random other
//           specialist as the ablation's baseline.
// Seeds: 1, 2, 3. Same runs as Bet 04 (read from its cache when it ran first): see 04_mixture_beats_parts.ts.
// Run: npm run bet -- 18 (needs data/corpora: node --import tsx scripts/fetch-corpora.ts)
import { defineBet, isMain, runFromCli } from './_common.ts';
import type { MixtureSizes } from './_mixture.ts';
import { finishMixture, mixtureQuantities18, measure18 } from './_mixture_report.ts';
import { MIXTURE_SIZES } from './_mixture_run.ts';

export const bet = defineBet<MixtureSizes>({
  id: '18',
  name: 'attribution_faithful',
  hypothesis: 'The token attribution of a posterior mixture credits the domain\'s own specialist for >= 60% of a domain\'s tokens, dropping the top-credited specialist hurts more than dropping another on >= 70% of tokens, and specialists without domains (random splits) share credit evenly (no model more than 0.15 from 1/3).',
  notClaimed: 'Faithfulness of shares as an explanation of why a token was chosen in general; only that they track which specialist predicted it, on three very different domains with tiny models.',
  run: 'npm run bet -- 18',
  seeds: [1, 2, 3],
  threads: 1,
  criteria: [
    { level: 'strict', quantity: 'top_is_domain', stat: 'mean', op: '>=', threshold: 0.6, words: 'top_is_domain >= 0.6' },
    { level: 'strict', quantity: 'ablation_top_worse', stat: 'mean', op: '>=', threshold: 0.7, words: 'ablation_top_worse >= 0.7' },
    { level: 'strict', quantity: 'random_share_dev', stat: 'mean', op: '<=', threshold: 0.15, words: 'random_share_dev <= 0.15' },
    { level: 'lenient', quantity: 'top_is_domain', stat: 'mean', op: '>=', threshold: 0.5, words: 'top_is_domain >= 0.5' },
    { level: 'lenient', quantity: 'ablation_top_worse', stat: 'mean', op: '>=', threshold: 0.6, words: 'ablation_top_worse >= 0.6' },
    { level: 'catastrophic', quantity: 'top_is_domain', stat: 'mean', op: '<=', threshold: 0.4, words: 'top_is_domain <= 0.4' },
  ],
  controls: [
    { name: 'random-split specialists', description: 'the same mixture over models fine-tuned on random thirds of the same data: credit should be about even' },
    { name: 'random ablation', description: 'dropping a random specialist other than the top-credited one, per token' },
  ],
  quantities: mixtureQuantities18(),
  sizes: MIXTURE_SIZES,
  measure: measure18,
  finish: (runs) => finishMixture('18', runs),
});

if (isMain(import.meta.url)) await runFromCli(bet);
