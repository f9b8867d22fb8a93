// Bet 49 — adapter kinds by size: norm-only vs LoRA r = 1, 4, 16, gain over the random-token control.
//
// Hypothesis: norm-only adapters (13 KB on sharedllm-tiny) give more perplexity gain over the random-token
// control per KB than any LoRA rank (r = 1: 120 KB, r = 4: 480 KB, r = 16: 1.9 MB, on every attention and
// FFN matrix), and lose at most 1 point of absolute gain to the best LoRA: the numbers support norm-only as
// the default.
// Per kind and user: gain_pp = (own adapter's held-out perplexity reduction vs the base) - (that of an adapter
// of the same kind trained on random tokens, Bet 60's control), mean over users; per_kb = gain_pp / KB of
// the adapter (F32). "norm_per_kb_margin" = norm_per_kb - the best LoRA per_kb; "norm_abs_margin" =
// norm_gain_pp - the best LoRA gain_pp.
//
// STRICT:       norm_per_kb_margin ci_low > 0, norm_abs_margin >= -1.0, and norm_gain_pp ci_low > 0.
// LENIENT:      norm_per_kb_margin > 0 and norm_gain_pp > 0.
// CATASTROPHIC: norm_gain_pp < 0 (a norm adapter does no better than one trained on random tokens).
// Controls: per kind, the random-token adapter (same kind, length, steps and learning rate); the base.
// Learning rate: per kind, the better of {default, 3 x default} (norm 1e-2, LoRA 2e-3) by validation NLL of
//        the first user's adapter (seed 0, validation split = the 512 tokens before the training text),
//        chosen once before the seeds run; held-out text is not used for it.
// Seeds: 1, 2, 3 (batch order; the control's random tokens; the LoRA A initialisation).
// Sizes: the 2 most recent of Bet 37's users (Trump, Obama), Bet 37's data sizes (4096 training tokens, 20
//        steps of 2 x 128, 512 held-out tokens), 1 thread (2 users, not more: 50 adapters to train fit the
//        session's time on a shared 2-core machine; set before any full run).
// Run: SHAREDLLM_CORPORA=/path/to/corpora npm run bet -- 49
import { defineBet, isMain, runFromCli } from './_common.ts';
import { type AdapterBetData, type AdapterBetSizes, type AdapterSpec, FULL_SIZES, SMOKE_SIZES, betData, cachedAdapter, controlSeed, nll, randomTokens, reductionPct, specLabel } from './_adapters.ts';
import { adapterBytes } from '../../src/train/adapter/index.ts';
import { ADAPTER_DEFAULTS } from '../../src/train/adapter/session.ts';
import { mean } from './_stats.ts';

interface KindSizes {
  data: AdapterBetSizes;
  /** Users scored (the first n of the data's users). */
  users: number;
  kinds: AdapterSpec[];
  /** Learning-rate grid, as factors of the kind's default. */
  lrFactors: number[];
}

const KINDS: AdapterSpec[] = [{ kind: 'norm' }, { kind: 'lora', rank: 1 }, { kind: 'lora', rank: 4 }, { kind: 'lora', rank: 16 }];
const LORAS = ['lora_r1', 'lora_r4', 'lora_r16'];

const quantities: Record<string, { unit: string; description: string }> = {
  norm_per_kb_margin: { unit: 'pp/KB', description: 'norm gain per KB minus the best LoRA rank\'s gain per KB' },
  norm_abs_margin: { unit: 'pp', description: 'norm gain minus the best LoRA rank\'s gain (absolute)' },
};
for (const k of ['norm', ...LORAS]) {
  quantities[`${k}_gain_pp`] = { unit: 'pp', description: `${k}: held-out perplexity reduction of the user's adapter minus that of the random-token adapter, mean over users` };
  quantities[`${k}_per_kb`] = { unit: 'pp/KB', description: `${k}: gain_pp per KB of adapter (F32)` };
  quantities[`${k}_kb`] = { unit: 'KB', description: `${k}: adapter size (F32 parameters)` };
}

/** The learning rate per kind, picked once per process (validation split of the first user, seed 0). */
let lrChoice: Promise<Map<string, { lr: number; validNll: Record<string, number> }>> | undefined;

async function chooseLr(data: AdapterBetData, s: KindSizes, smoke: boolean, log: (m: string) => void): Promise<Map<string, { lr: number; validNll: Record<string, number> }>> {
  const u = data.users[0]!;
  const out = new Map<string, { lr: number; validNll: Record<string, number> }>();
  for (const spec of s.kinds) {
    const validNll: Record<string, number> = {};
    let best = { lr: 0, nll: Infinity };
    for (const f of s.lrFactors) {
      const lr = ADAPTER_DEFAULTS.lr[spec.kind] * f;
      const a = await cachedAdapter(data, u.train, { ...spec, ...(f === 1 ? {} : { lr }) }, s.data, 0, smoke);
      const v = nll(data, a, u.valid);
      validNll[String(lr)] = v;
      if (v < best.nll) best = { lr, nll: v };
    }
    log(`${specLabel(spec)}: lr ${best.lr} (validation NLL ${JSON.stringify(validNll)})`);
    out.set(specLabel(spec), { lr: best.lr, validNll });
  }
  return out;
}

export const bet = defineBet<KindSizes>({
  id: '49',
  name: 'adapter_kinds',
  hypothesis: 'Norm-only adapters give more held-out perplexity gain over a random-token control per KB than LoRA at r = 1, 4 or 16, and lose at most 1 point of absolute gain to the best LoRA: norm-only is the right default.',
  notClaimed: 'Two users, 20 steps, one small base, a 2-point learning-rate grid: a larger budget may favour LoRA\'s capacity; nothing about bias-only adapters (not measured).',
  run: 'SHAREDLLM_CORPORA=/path/to/corpora npm run bet -- 49',
  seeds: [1, 2, 3],
  threads: 1,
  criteria: [
    { level: 'strict', quantity: 'norm_per_kb_margin', stat: 'ci_low', op: '>', threshold: 0, words: 'norm_per_kb_margin ci_low > 0' },
    { level: 'strict', quantity: 'norm_abs_margin', stat: 'mean', op: '>=', threshold: -1, words: 'norm_abs_margin >= -1.0' },
    { level: 'strict', quantity: 'norm_gain_pp', stat: 'ci_low', op: '>', threshold: 0, words: 'norm_gain_pp ci_low > 0' },
    { level: 'lenient', quantity: 'norm_per_kb_margin', stat: 'mean', op: '>', threshold: 0, words: 'norm_per_kb_margin > 0' },
    { level: 'lenient', quantity: 'norm_gain_pp', stat: 'mean', op: '>', threshold: 0, words: 'norm_gain_pp > 0' },
    { level: 'catastrophic', quantity: 'norm_gain_pp', stat: 'mean', op: '<', threshold: 0, words: 'norm_gain_pp < 0' },
  ],
  controls: [
    { name: 'random-token adapter per kind', description: 'the same kind, length, steps and learning rate, trained on i.i.d. tokens from the pooled unigram distribution (as Bet 60)' },
    { name: 'base', description: 'the base model on the same held-out windows' },
  ],
  quantities,
  sizes: {
    full: { data: FULL_SIZES, users: 2, kinds: KINDS, lrFactors: [1, 3] },
    smoke: { data: SMOKE_SIZES, users: 1, kinds: KINDS, lrFactors: [1] },
  },
  async measure({ seed, sizes: s, smoke, log }) {
    const data = await betData(s.data, smoke);
    const lrs = await (lrChoice ??= chooseLr(data, s, smoke, log));
    const values: Record<string, number> = {};
    const items: Record<string, number[]> = {};
    for (const spec of s.kinds) {
      const label = specLabel(spec);
      const lr = lrs.get(label)!.lr;
      const tuned: AdapterSpec = lr === ADAPTER_DEFAULTS.lr[spec.kind] ? spec : { ...spec, lr };
      const gains: number[] = [];
      let bytes = 0;
      for (const [i, u] of data.users.slice(0, s.users).entries()) {
        const own = await cachedAdapter(data, u.train, tuned, s.data, seed, smoke);
        const control = await cachedAdapter(data, randomTokens(data.unigram, u.train.length, controlSeed(seed, i)), tuned, s.data, seed, smoke);
        const base = nll(data, null, u.heldOut);
        gains.push(reductionPct(base, nll(data, own, u.heldOut)) - reductionPct(base, nll(data, control, u.heldOut)));
        bytes = adapterBytes(own);
        log(`${label} user ${u.name}: gain over control ${gains.at(-1)!.toFixed(2)} pp`);
      }
      const kb = bytes / 1024;
      values[`${label}_gain_pp`] = mean(gains);
      values[`${label}_per_kb`] = mean(gains) / kb;
      values[`${label}_kb`] = kb;
      items[`${label}_gain_pp`] = gains;
    }
    const bestPerKb = Math.max(...LORAS.map((k) => values[`${k}_per_kb`]!));
    const bestGain = Math.max(...LORAS.map((k) => values[`${k}_gain_pp`]!));
    values.norm_per_kb_margin = values.norm_per_kb! - bestPerKb;
    values.norm_abs_margin = values.norm_gain_pp! - bestGain;
    return { values, items, extra: Object.fromEntries([...lrs].map(([k, v]) => [k, v])) };
  },
  finish(runs) {
    const labels = ['norm', ...LORAS];
    const stat = (key: string) => {
      const v = runs.map((r) => r.measurement.values[key]!);
      return { mean: mean(v), lo: Math.min(...v), hi: Math.max(...v) };
    };
    return {
      details: {
        learningRates: runs[0]?.measurement.extra ?? {},
        kinds: labels.map((k) => ({ kind: k, kb: stat(`${k}_kb`).mean, gain_pp: stat(`${k}_gain_pp`).mean, per_kb: stat(`${k}_per_kb`).mean })),
      },
      figures: [
        { kind: 'bars', id: 'bet49_gain', title: 'Bet 49: gain over the random-token control by adapter kind (mean over seeds; bars: min-max)', yLabel: 'pp of perplexity reduction', bars: labels.map((k) => ({ label: k, group: 'gain', ...stat(`${k}_gain_pp`) })) },
        { kind: 'bars', id: 'bet49_per_kb', title: 'Bet 49: gain over the control per KB of adapter (mean over seeds; bars: min-max)', yLabel: 'pp per KB', bars: labels.map((k) => ({ label: k, group: 'per KB', ...stat(`${k}_per_kb`) })) },
      ],
      notes: ['The learning rate of each kind was chosen once on validation text of the first user (seed 0), before the seeds ran; see details.learningRates.'],
    };
  },
});

if (isMain(import.meta.url)) await runFromCli(bet);
