// Bet 61 — the confusion matrix of per-user norm adapters: is each user's own adapter the best for them?
//
// Hypothesis: every user's own norm adapter (Bet 37's) fits their held-out text better than the other users'
// adapters do. Every adapter is evaluated on every user's held-out text (12 x 12 per seed).
// "diag_adv_pct" = per user, 100 (ppl_others / ppl_own - 1), ppl_others = exp(mean NLL of the 11 other
// adapters on that user's text), then the mean over users; "own_best_share" = share of users whose own
// adapter has the lowest NLL of all 12 (chance: 1/12).
// Published anchor: the original catalogue reported a 5-29% diagonal advantage.
//
// STRICT:       diag_adv_pct ci_low > 1.0 and own_best_share >= 0.75.
// LENIENT:      diag_adv_pct > 0 and own_best_share >= 0.25 (3x chance).
// CATASTROPHIC: diag_adv_pct < 0 (the other users' adapters fit a user better than their own).
// Controls: the off-diagonal cells are the control (an adapter trained on another user's text, the same
//           size, steps and domain); Bet 60's random-token adapter is the second.
// Seeds: 1, 2, 3 (Bet 37's adapters, read from the same cache).
// Sizes: Bet 37's (12 presidents, 4096 training tokens, 20 steps of 2 x 128, lr 1e-2, 512 held-out tokens).
// Run: SHAREDLLM_CORPORA=/path/to/corpora npm run bet -- 61
import { defineBet, isMain, runFromCli } from './_common.ts';
import { type AdapterBetSizes, FULL_SIZES, SMOKE_SIZES, betData, cachedAdapter, nll, reductionPct } from './_adapters.ts';
import { mean } from './_stats.ts';

interface Confusion {
  users: string[];
  /** nll[i][j]: adapter j on user i's held-out text. */
  nll: number[][];
  base: number[];
}

export const bet = defineBet<AdapterBetSizes>({
  id: '61',
  name: 'adapter_confusion',
  hypothesis: 'Every user\'s own norm adapter fits their held-out text better than the other users\' adapters (diagonal advantage of the 12 x 12 confusion matrix).',
  notClaimed: 'Presidents\' addresses differ by era as well as by person: a diagonal advantage here may be partly an era effect (neighbouring presidents are the closest off-diagonal cells), not only individual voice.',
  run: 'SHAREDLLM_CORPORA=/path/to/corpora npm run bet -- 61',
  seeds: [1, 2, 3],
  threads: 1,
  criteria: [
    { level: 'strict', quantity: 'diag_adv_pct', stat: 'ci_low', op: '>', threshold: 1, words: 'diag_adv_pct ci_low > 1.0' },
    { level: 'strict', quantity: 'own_best_share', stat: 'mean', op: '>=', threshold: 0.75, words: 'own_best_share >= 0.75' },
    { level: 'lenient', quantity: 'diag_adv_pct', stat: 'mean', op: '>', threshold: 0, words: 'diag_adv_pct > 0' },
    { level: 'lenient', quantity: 'own_best_share', stat: 'mean', op: '>=', threshold: 0.25, words: 'own_best_share >= 0.25' },
    { level: 'catastrophic', quantity: 'diag_adv_pct', stat: 'mean', op: '<', threshold: 0, words: 'diag_adv_pct < 0' },
  ],
  controls: [
    { name: 'other users\' adapters', description: 'the off-diagonal cells: adapters of the same size, steps and domain, trained on another user' },
    { name: 'base', description: 'the base on the same windows (the heatmap\'s reference)' },
  ],
  quantities: {
    diag_adv_pct: { unit: '%', description: 'per user, 100 (ppl with the other users\' adapters / ppl with their own - 1), mean over users' },
    own_best_share: { unit: 'share', description: 'share of users whose own adapter is the best of all 12 on their held-out text' },
    own_vs_base_pct: { unit: '%', description: 'diagonal: own adapter vs base (Bet 37\'s number, recomputed)' },
    others_vs_base_pct: { unit: '%', description: 'off-diagonal: other users\' adapters vs base, mean' },
  },
  sizes: { full: FULL_SIZES, smoke: SMOKE_SIZES },
  async measure({ seed, sizes, smoke, log }) {
    const data = await betData(sizes, smoke);
    const adapters = [];
    for (const u of data.users) adapters.push(await cachedAdapter(data, u.train, { kind: 'norm' }, sizes, seed, smoke));
    const c: Confusion = { users: data.users.map((u) => u.name), nll: [], base: [] };
    for (const [i, u] of data.users.entries()) {
      c.base.push(nll(data, null, u.heldOut));
      c.nll.push(adapters.map((a) => nll(data, a, u.heldOut)));
      log(`user ${i + 1}/${data.users.length} ${u.name}: scored ${adapters.length} adapters`);
    }
    const n = c.users.length;
    const adv: number[] = [];
    let best = 0;
    const own: number[] = [];
    const others: number[] = [];
    for (let i = 0; i < n; i++) {
      const row = c.nll[i]!;
      const off = row.filter((_, j) => j !== i);
      adv.push(100 * (Math.exp(mean(off) - row[i]!) - 1));
      if (row.every((v, j) => j === i || v > row[i]!)) best++;
      own.push(reductionPct(c.base[i]!, row[i]!));
      for (const v of off) others.push(reductionPct(c.base[i]!, v));
    }
    return {
      values: { diag_adv_pct: mean(adv), own_best_share: best / n, own_vs_base_pct: mean(own), others_vs_base_pct: mean(others) },
      items: { diag_adv_pct: adv },
      extra: c,
    };
  },
  finish(runs) {
    const cs = runs.map((r) => r.measurement.extra as Confusion);
    const users = cs[0]?.users ?? [];
    // Each cell: perplexity reduction vs the base of that user's text, mean over seeds.
    const cells = users.flatMap((row, i) => users.map((col, j) => ({
      x: short(col), y: short(row), value: Number(mean(cs.map((c) => reductionPct(c.base[i]!, c.nll[i]![j]!))).toFixed(2)),
    })));
    const ranks = users.map((name, i) => {
      const r = mean(cs.map((c) => c.nll[i]!.filter((v) => v < c.nll[i]![i]!).length + 1));
      return { user: name, meanRankOfOwnAdapter: r };
    });
    return {
      details: { ownAdapterRank: ranks },
      figures: [{ kind: 'heatmap', id: 'bet61_confusion', title: 'Bet 61: % perplexity reduction vs base, adapter (x) on user\'s held-out text (y), mean over seeds', xLabel: 'adapter of', yLabel: 'held-out text of', cells }],
      notes: [
        'Anchor: the original catalogue reported a 5-29% diagonal advantage (model, data and adapter sizes not comparable).',
        'Rank 1 = the user\'s own adapter is the best of the 12 on their text.',
      ],
    };
  },
});

/** 'franklin_d_roosevelt' -> 'F. D. Roosevelt' (short axis labels). */
function short(name: string): string {
  const parts = name.split('_');
  const last = parts.pop() ?? name;
  return [...parts.map((p) => `${p[0]!.toUpperCase()}.`), last[0]!.toUpperCase() + last.slice(1)].join(' ');
}

if (isMain(import.meta.url)) await runFromCli(bet);
