// Bet 37 — a user's own norm adapter lowers perplexity on that user's held-out text.
//
// Hypothesis: a norm-only adapter (the RMSNorm gains of every norm, 13 x 256 floats = 13 KB on
// sharedllm-tiny) trained on a user's earlier texts lowers the perplexity of the base on that user's
// held-out text. "own_vs_base_pct" = 100 (1 - ppl_own / ppl_base) on the user's held-out text, the mean over
// users; "improved_share" = share of users whose own adapter beats the base.
// Published anchor: per-user fine-tuning gains +1.07% on LaMP (Salemi & Zamani) — a different metric
// (task accuracy), the nearest published figure for the size of per-user effects.
//
// STRICT:       own_vs_base_pct ci_low > 1.0 (every seed's mean above 1%), and improved_share >= 0.75.
// LENIENT:      own_vs_base_pct > 0.5.
// CATASTROPHIC: own_vs_base_pct < 0 (the users' own adapters make the model worse on their own text).
// Controls: (a) the base itself on the same held-out windows (the reference of every number);
//           (b) Bet 60: an adapter trained on random tokens with the same length and steps (regularisation
//           rather than personalisation); (c) Bet 61: every other user's adapter on this user's text.
// Seeds: 1, 2, 3 (the adapter's batch order; the users and texts are the same).
// Sizes: 12 users = the 12 most recent presidents with >= 4 State of the Union addresses (Trump, Obama,
//        G. W. Bush, Clinton, G. H. W. Bush, Reagan, Carter, Nixon, Johnson, Eisenhower, Truman,
//        F. D. Roosevelt); training text: the last 4096 tokens of each one's earlier addresses; held-out: the
//        first 512 tokens of the last address; 20 AdamW steps of 2 rows x 128 tokens, lr 1e-2 (the
//        adapter default, set before this bet), 1 thread (sizes cut to fit ~40 min for Bets 37, 49, 60 and
//        61 together on a shared 2-core machine). Base: models/sharedllm-tiny.gguf (not trained on SOTU).
// Run: SHAREDLLM_CORPORA=/path/to/corpora npm run bet -- 37
import { defineBet, isMain, runFromCli } from './_common.ts';
import { type AdapterBetSizes, FULL_SIZES, SMOKE_SIZES, betData, cachedAdapter, nll, reductionPct } from './_adapters.ts';
import { mean } from './_stats.ts';

export const bet = defineBet<AdapterBetSizes>({
  id: '37',
  name: 'user_norm_adapter',
  hypothesis: 'A user\'s own norm-only adapter (RMSNorm gains, 13 KB) trained on their earlier texts lowers the base\'s perplexity on their held-out text.',
  notClaimed: 'A 7.2M-parameter base, 12 presidents\' addresses, 4096 training tokens and 20 steps each, 512 held-out tokens each: nothing about large models, chat data, or how long the gain lasts; Bet 60 says how much of it is personal.',
  run: 'SHAREDLLM_CORPORA=/path/to/corpora npm run bet -- 37',
  seeds: [1, 2, 3],
  threads: 1,
  criteria: [
    { level: 'strict', quantity: 'own_vs_base_pct', stat: 'ci_low', op: '>', threshold: 1, words: 'own_vs_base_pct ci_low > 1.0' },
    { level: 'strict', quantity: 'improved_share', stat: 'mean', op: '>=', threshold: 0.75, words: 'improved_share >= 0.75' },
    { level: 'lenient', quantity: 'own_vs_base_pct', stat: 'mean', op: '>', threshold: 0.5, words: 'own_vs_base_pct > 0.5' },
    { level: 'catastrophic', quantity: 'own_vs_base_pct', stat: 'mean', op: '<', threshold: 0, words: 'own_vs_base_pct < 0' },
  ],
  controls: [
    { name: 'base', description: 'the base model on the same held-out windows: every number is relative to it' },
    { name: 'random-token adapter (Bet 60)', description: 'an adapter trained on random tokens of the same length and steps' },
    { name: 'other users\' adapters (Bet 61)', description: 'every other user\'s adapter on this user\'s held-out text' },
  ],
  quantities: {
    own_vs_base_pct: { unit: '%', description: 'perplexity reduction of the user\'s own norm adapter vs the base on their held-out text, mean over users' },
    improved_share: { unit: 'share', description: 'share of users whose own adapter has a lower held-out perplexity than the base' },
    base_ppl: { unit: 'ppl', description: 'base perplexity on the held-out texts (geometric mean over users)' },
  },
  sizes: { full: FULL_SIZES, smoke: SMOKE_SIZES },
  async measure({ seed, sizes, smoke, log }) {
    const data = await betData(sizes, smoke);
    const reductions: number[] = [];
    const bases: number[] = [];
    const perUser: Record<string, number> = {};
    for (const [i, u] of data.users.entries()) {
      const own = await cachedAdapter(data, u.train, { kind: 'norm' }, sizes, seed, smoke);
      const base = nll(data, null, u.heldOut);
      const r = reductionPct(base, nll(data, own, u.heldOut));
      log(`user ${i + 1}/${data.users.length} ${u.name}: base ppl ${Math.exp(base).toFixed(2)}, own adapter ${r.toFixed(2)}%`);
      reductions.push(r);
      bases.push(base);
      perUser[u.name] = r;
    }
    return {
      values: { own_vs_base_pct: mean(reductions), improved_share: mean(reductions.map((r) => (r > 0 ? 1 : 0))), base_ppl: Math.exp(mean(bases)) },
      items: { own_vs_base_pct: reductions },
      extra: perUser,
    };
  },
  finish(runs) {
    const users = Object.keys((runs[0]?.measurement.extra ?? {}) as Record<string, number>);
    const rows = users.map((name) => {
      const vals = runs.map((r) => (r.measurement.extra as Record<string, number>)[name]!);
      return { user: name, own_vs_base_pct: mean(vals), perSeed: vals.map((v) => Number(v.toFixed(3))).join(' / ') };
    });
    return {
      details: { perUser: rows },
      figures: [{
        kind: 'bars', id: 'bet37_own_vs_base', title: 'Bet 37: own norm adapter vs base, held-out perplexity reduction (mean over seeds)', yLabel: '% reduction',
        bars: rows.map((r) => {
          const vals = runs.map((x) => (x.measurement.extra as Record<string, number>)[r.user]!);
          return { label: r.user, group: 'own adapter', mean: r.own_vs_base_pct, lo: Math.min(...vals), hi: Math.max(...vals) };
        }),
      }],
      notes: [
        'Error bars of the per-user figure are the min and max over the 3 seeds (not a CI).',
        'Anchor: per-user fine-tuning +1.07% on LaMP (Salemi & Zamani), a task metric rather than perplexity: an order of magnitude, not a like-for-like comparison.',
      ],
    };
  },
});

if (isMain(import.meta.url)) await runFromCli(bet);
