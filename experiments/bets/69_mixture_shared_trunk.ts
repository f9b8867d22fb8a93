// Bet 69 — specialists that own only their top layer: cheap to mix, and still specialists.
//
// A stacked mixture (src/model/stacked-model.ts) loads and runs once every tensor its specialists share, so
// decode costs one model plus K times what each owns (npm run bench -- --only mixture, AMD EPYC 2 vCPUs:
// 3 full fine-tunes 3.39x one model a token, 3 specialists owning their last layer only 1.12x). Bet: that
// cheap kind keeps most of what full fine-tuning gives. Three specialists per arm, one per domain, from the
// same base, data, steps and learning rate (src/train/partial.ts trains the owned tensors over the frozen rest):
//   full  every tensor (Bet 04's specialists)
//   top   the last layer only (head and everything below frozen): a stack of 3 reads 1.24x one model's weights
//   head  the last layer, the final norm and the output matrix: 1.53x
// "Recovered": the share of the full arm's gain over the base (mean NLL, nats/token) that an arm keeps:
//   recovered_top_mixed    = (base - top posterior mixture) / (base - full posterior mixture), mixed windows
//   recovered_top_domains  = the same with each domain's own specialist (oracle), mean over the 3 domain sets
//   recovered_head_mixed, recovered_head_domains: the same for the head arm (reported)
//   weights_ratio_top, weights_ratio_head: parameters a stack of the 3 holds / one model's (exact)
//
// STRICT:       recovered_top_mixed >= 0.8 and recovered_top_domains >= 0.8.
// LENIENT:      recovered_top_mixed >= 0.5 and recovered_top_domains >= 0.5.
// CATASTROPHIC: recovered_top_mixed <= 0 (the cheap mixture is no better than the base).
// Controls: the full arm (the gain to keep; Bet 04's recipe), the base (no gain), the head arm (does owning the
//           head matter?). Not tuned: every arm uses Bet 04's learning rate and steps; a partial fine-tune
//           might want a higher rate (a lower bound on what it keeps, not the best it can do).
// Seeds: 1, 2, 3 (data order and training files, as in Bet 04; the held-out split is fixed).
// Sizes: Bet 04's (MIXTURE_SIZES): SharedLLM-tiny (6 layers, 7.2M parameters), 40 steps x 2 rows x 128 tokens
//        per specialist, lr 1e-3, ~120k characters per domain (Go, Spanish Bible, kernel docs); 12 windows of
//        128 tokens per domain and 12 mixed.
// Run: npm run bet -- 69 [--jobs 3] (needs data/corpora: node --import tsx scripts/fetch-corpora.ts)
import { mulberry32 } from '../../src/util/random.ts';
import { paramSpecs } from '../../src/train/params.ts';
import { type OwnedPart, ownsTensor } from '../../src/train/partial.ts';
import type { Trainer } from '../../src/train/trainer.ts';
import { type MeasureContext, type SeedMeasurement, defineBet, isMain, runFromCli } from './_common.ts';
import { type Base, Combiner, type MixtureSizes, baseModel, evalWindows, fineTune, loadBase, loadDomains, meanOf, scoreWindow, singleNll, windowLogits } from './_mixture.ts';
import { MIXTURE_SIZES } from './_mixture_run.ts';
import type { Figure } from './_schema.ts';
import { bootstrapCI, mean } from './_stats.ts';

const ARMS = { full: { layers: Infinity, head: true }, top: { layers: 1, head: false }, head: { layers: 1, head: true } } as const satisfies Record<string, OwnedPart>;
type Arm = keyof typeof ARMS;

interface Extra69 {
  /** Mean NLL per set and arm (posterior mixture on 'mixed', the domain's own specialist on a domain set). */
  nll: { set: string; base: number; full: number; top: number; head: number }[];
}

/** Parameters a stack of K specialists of this arm holds, over one model's. */
function weightsRatio(base: Base, arm: Arm, K: number): number {
  const specs = paramSpecs(base.model);
  const size = (s: { ne: readonly number[] }) => s.ne.reduce((a, b) => a * b, 1);
  const total = specs.reduce((n, s) => n + size(s), 0);
  const owned = specs.filter((s) => ownsTensor(base.model, ARMS[arm], s.name)).reduce((n, s) => n + size(s), 0);
  return (total + (K - 1) * owned) / total;
}

async function measure69(ctx: MeasureContext<MixtureSizes>): Promise<SeedMeasurement> {
  const sizes = ctx.sizes;
  const base = loadBase(sizes.ctx);
  const domains = loadDomains(sizes, ctx.seed);
  const windows = evalWindows(domains, base.tok, sizes);
  const tick = () => new Promise<void>((r) => setImmediate(r));
  const logitsOf = (label: string, make: () => Trainer): Float32Array[][] => {
    const t0 = performance.now();
    const model = make();
    try {
      return windowLogits(model, windows);
    } finally {
      model.dispose();
      ctx.log(`${label} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    }
  };
  const baseLogits = logitsOf('base', () => baseModel(base, sizes));
  const arms: Record<Arm, Float32Array[][][]> = { full: [], top: [], head: [] };
  for (const arm of Object.keys(ARMS) as Arm[]) {
    for (const d of domains) {
      arms[arm].push(logitsOf(`${arm} ${d.name}`, () => fineTune(base, d.train, sizes, sizes.steps, ctx.seed, arm === 'full' ? undefined : ARMS[arm])));
      await tick();
    }
  }
  const combiner = new Combiner(base.ggml, base.model.nVocab);
  const rng = mulberry32(ctx.seed);
  const nll: Extra69['nll'] = [];
  try {
    for (const set of [...new Set(windows.map((w) => w.set))]) {
      const idx = windows.flatMap((w, i) => (w.set === set ? [i] : []));
      const mixed = set === 'mixed';
      const score = (arm: Arm) => meanOf(idx.flatMap((i) => {
        const s = scoreWindow(combiner, arms[arm].map((l) => l[i]!), windows[i]!, rng, 0);
        return s.map((t) => (mixed ? t.nll.posterior : t.single[t.domain]!));
      }));
      nll.push({ set, base: meanOf(idx.flatMap((i) => singleNll(combiner, baseLogits[i]!, windows[i]!))), full: score('full'), top: score('top'), head: score('head') });
      await tick();
    }
  } finally {
    combiner.dispose();
  }
  const recovered = (arm: 'top' | 'head', sets: typeof nll) => mean(sets.map((r) => (r.base - r[arm]) / (r.base - r.full)));
  const mixedRow = nll.filter((r) => r.set === 'mixed');
  const domainRows = nll.filter((r) => r.set !== 'mixed');
  ctx.log(nll.map((r) => `${r.set}: base ${r.base.toFixed(3)} full ${r.full.toFixed(3)} top ${r.top.toFixed(3)} head ${r.head.toFixed(3)}`).join('; '));
  return {
    values: {
      recovered_top_mixed: recovered('top', mixedRow),
      recovered_top_domains: recovered('top', domainRows),
      recovered_head_mixed: recovered('head', mixedRow),
      recovered_head_domains: recovered('head', domainRows),
      weights_ratio_top: weightsRatio(base, 'top', domains.length),
      weights_ratio_head: weightsRatio(base, 'head', domains.length),
    },
    extra: { nll } satisfies Extra69,
  };
}

const band = (xs: number[]) => {
  const [lo, hi] = bootstrapCI(xs);
  return { mean: mean(xs), lo, hi };
};

export const bet = defineBet<MixtureSizes>({
  id: '69',
  name: 'mixture_shared_trunk',
  hypothesis: 'Specialists fine-tuned on their last layer only (a stacked mixture of three reads 1.24x the weights of one model a token) keep at least 80% of the full fine-tunes\' gain over the base: on mixed-domain text (posterior mixture) and on each domain (its own specialist).',
  notClaimed: 'Tiny models (6 layers, 7.2M parameters) fine-tuned briefly (40 steps) at one learning rate on three very different domains: nothing about large models, long fine-tunes, tuned partial fine-tunes, or other choices of the owned part (LoRA, more layers).',
  run: 'npm run bet -- 69',
  seeds: [1, 2, 3],
  threads: 1,
  criteria: [
    { level: 'strict', quantity: 'recovered_top_mixed', stat: 'mean', op: '>=', threshold: 0.8, words: 'recovered_top_mixed >= 0.8' },
    { level: 'strict', quantity: 'recovered_top_domains', stat: 'mean', op: '>=', threshold: 0.8, words: 'recovered_top_domains >= 0.8' },
    { level: 'lenient', quantity: 'recovered_top_mixed', stat: 'mean', op: '>=', threshold: 0.5, words: 'recovered_top_mixed >= 0.5' },
    { level: 'lenient', quantity: 'recovered_top_domains', stat: 'mean', op: '>=', threshold: 0.5, words: 'recovered_top_domains >= 0.5' },
    { level: 'catastrophic', quantity: 'recovered_top_mixed', stat: 'mean', op: '<=', threshold: 0, words: 'recovered_top_mixed <= 0' },
  ],
  controls: [
    { name: 'full fine-tunes', description: 'the same three specialists with every tensor trained (Bet 04\'s recipe): the gain to keep' },
    { name: 'base', description: 'no fine-tune: zero gain' },
    { name: 'last layer and head', description: 'owning the final norm and output matrix too (1.53x the weights in a stack of three): whether the head matters' },
  ],
  quantities: {
    recovered_top_mixed: { unit: 'fraction', description: 'share of the full arm\'s NLL gain over the base kept by the last-layer arm, posterior mixture on mixed windows' },
    recovered_top_domains: { unit: 'fraction', description: 'the same with each domain\'s own specialist, mean over the domain sets' },
    recovered_head_mixed: { unit: 'fraction', description: 'the same as recovered_top_mixed for specialists owning the last layer and the head' },
    recovered_head_domains: { unit: 'fraction', description: 'the same as recovered_top_domains for specialists owning the last layer and the head' },
    weights_ratio_top: { unit: 'ratio', description: 'parameters a stack of the three last-layer specialists holds, over one model\'s' },
    weights_ratio_head: { unit: 'ratio', description: 'the same for specialists owning the last layer and the head' },
  },
  sizes: MIXTURE_SIZES,
  measure: measure69,
  finish: (runs) => {
    const extras = runs.map((r) => r.measurement.extra as Extra69);
    const points: Extract<Figure, { kind: 'bars' }>['bars'] = [];
    for (const [i, row] of extras[0]!.nll.entries()) {
      for (const arm of ['base', 'full', 'head', 'top'] as const) points.push({ group: row.set, label: arm, ...band(extras.map((e) => Math.exp(e.nll[i]![arm]))) });
    }
    return {
      details: { nll: extras.map((e) => e.nll) },
      figures: [{ kind: 'bars', id: '69_perplexity', title: 'Held-out perplexity: base, full fine-tunes, last layer and head, last layer only (posterior mixture on mixed, own specialist on each domain)', yLabel: 'perplexity', bars: points }],
      notes: ['Perplexity = exp(mean NLL): the posterior mixture (exact Bayes from a uniform prior, as in Bet 04) on the mixed windows, each domain\'s own specialist on its domain windows.'],
    };
  },
});

if (isMain(import.meta.url)) await runFromCli(bet);
