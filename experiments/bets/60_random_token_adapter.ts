// Bet 60 — negative control of Bet 37: how much of a user's norm-adapter gain is regularisation?
//
// Hypothesis: most of the perplexity drop of a user's own norm adapter (Bet 37) is personal: an adapter
// trained the same way on random tokens (same length, same steps, drawn i.i.d. from the pooled unigram
// distribution of every user's training text, so it carries the domain's token frequencies but no user and
// no word order) gives less than half of it.
// "own_vs_base_pct" and "random_vs_base_pct" = 100 (1 - ppl / ppl_base) on each user's held-out text, mean
// over users; "personal_pp" = own_vs_base_pct - random_vs_base_pct (percentage points, per user then mean);
// "personal_share" = mean personal_pp / mean own_vs_base_pct.
//
// STRICT:       personal_pp ci_low > 0.5 and personal_share >= 0.5.
// LENIENT:      personal_pp > 0.
// CATASTROPHIC: personal_pp < -0.5 (the random-token control beats the users' own adapters: Bet 37's gain
//               would be regularisation, not personalisation).
// Controls: this bet IS the control of Bet 37; the base on the same windows is the reference.
// Seeds: 1, 2, 3 (batch order of both adapters; the random tokens of each user and seed).
// Sizes: Bet 37's (12 presidents, 4096 training tokens, 20 steps of 2 x 128, lr 1e-2, 512 held-out tokens).
// Run: SHAREDLLM_CORPORA=/path/to/corpora npm run bet -- 60
import { defineBet, isMain, runFromCli } from './_common.ts';
import { type AdapterBetSizes, FULL_SIZES, SMOKE_SIZES, betData, cachedAdapter, controlSeed, nll, randomTokens, reductionPct } from './_adapters.ts';
import { mean } from './_stats.ts';

export const bet = defineBet<AdapterBetSizes>({
  id: '60',
  name: 'random_token_adapter',
  hypothesis: 'Most of a user\'s norm-adapter perplexity drop (Bet 37) is personal: an adapter trained on random tokens of the domain\'s unigram distribution (same length, same steps) gives less than half of it.',
  notClaimed: 'One kind of control (i.i.d. tokens from the pooled unigram distribution), one small base, 12 users: not a decomposition of the gain into every possible cause.',
  run: 'SHAREDLLM_CORPORA=/path/to/corpora npm run bet -- 60',
  seeds: [1, 2, 3],
  threads: 1,
  criteria: [
    { level: 'strict', quantity: 'personal_pp', stat: 'ci_low', op: '>', threshold: 0.5, words: 'personal_pp ci_low > 0.5' },
    { level: 'strict', quantity: 'personal_share', stat: 'mean', op: '>=', threshold: 0.5, words: 'personal_share >= 0.5' },
    { level: 'lenient', quantity: 'personal_pp', stat: 'mean', op: '>', threshold: 0, words: 'personal_pp > 0' },
    { level: 'catastrophic', quantity: 'personal_pp', stat: 'mean', op: '<', threshold: -0.5, words: 'personal_pp < -0.5' },
  ],
  controls: [
    { name: 'random-token adapter', description: 'a norm adapter trained on i.i.d. tokens from the pooled unigram distribution of all users\' training text, same length and steps as each user\'s own' },
    { name: 'base', description: 'the base model on the same held-out windows' },
  ],
  quantities: {
    own_vs_base_pct: { unit: '%', description: 'perplexity reduction of the user\'s own norm adapter vs the base (as Bet 37)' },
    random_vs_base_pct: { unit: '%', description: 'perplexity reduction of the random-token adapter vs the base' },
    personal_pp: { unit: 'pp', description: 'own minus random-token reduction, per user, mean over users' },
    personal_share: { unit: 'share', description: 'mean personal_pp / mean own_vs_base_pct' },
  },
  sizes: { full: FULL_SIZES, smoke: SMOKE_SIZES },
  async measure({ seed, sizes, smoke, log }) {
    const data = await betData(sizes, smoke);
    const own: number[] = [];
    const rand: number[] = [];
    for (const [i, u] of data.users.entries()) {
      const mine = await cachedAdapter(data, u.train, { kind: 'norm' }, sizes, seed, smoke);
      const control = await cachedAdapter(data, randomTokens(data.unigram, u.train.length, controlSeed(seed, i)), { kind: 'norm' }, sizes, seed, smoke);
      const base = nll(data, null, u.heldOut);
      own.push(reductionPct(base, nll(data, mine, u.heldOut)));
      rand.push(reductionPct(base, nll(data, control, u.heldOut)));
      log(`user ${i + 1}/${data.users.length} ${u.name}: own ${own.at(-1)!.toFixed(2)}%, random-token ${rand.at(-1)!.toFixed(2)}%`);
    }
    const personal = own.map((o, i) => o - rand[i]!);
    const meanOwn = mean(own);
    return {
      values: { own_vs_base_pct: meanOwn, random_vs_base_pct: mean(rand), personal_pp: mean(personal), personal_share: meanOwn === 0 ? 0 : mean(personal) / meanOwn },
      items: { personal_pp: personal, own_vs_base_pct: own, random_vs_base_pct: rand },
      extra: { users: data.users.map((u) => u.name), own, rand },
    };
  },
  finish(runs) {
    const extra = (r: (typeof runs)[number]) => r.measurement.extra as { users: string[]; own: number[]; rand: number[] };
    const users = runs[0] ? extra(runs[0]).users : [];
    const bars = users.flatMap((name, i) => (['own', 'rand'] as const).map((k) => {
      const vals = runs.map((r) => extra(r)[k][i]!);
      return { label: name, group: k === 'own' ? 'own adapter' : 'random-token adapter', mean: mean(vals), lo: Math.min(...vals), hi: Math.max(...vals) };
    }));
    return {
      figures: [{ kind: 'bars', id: 'bet60_own_vs_random', title: 'Bet 60: held-out perplexity reduction vs the base, own vs random-token adapter (mean over seeds)', yLabel: '% reduction', bars }],
      notes: ['Error bars are the min and max over the 3 seeds (not a CI).'],
    };
  },
});

if (isMain(import.meta.url)) await runFromCli(bet);
