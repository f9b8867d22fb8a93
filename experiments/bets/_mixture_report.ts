// Bets 04 and 18 from the shared runs (_mixture_run.ts): the quantities each seed gives, and the tables and
// figures of the report.
import type { MeasureContext, SeedMeasurement } from './_common.ts';
import type { MixtureSizes } from './_mixture.ts';
import { type MixtureRun, type SetScores, mixtureRun } from './_mixture_run.ts';
import type { Figure } from './_schema.ts';
import { bootstrapCI, mean } from './_stats.ts';

type Q = Record<string, { unit: string; description: string }>;

export function mixtureQuantities04(): Q {
  return {
    mix_over_best_single_mixed: { unit: 'ratio', description: 'perplexity of the posterior mixture / the best single specialist, mixed-domain windows (< 1: the mixture wins)' },
    mix_over_oracle_domains: { unit: 'ratio', description: 'perplexity of the posterior mixture / the right specialist, mean over the domain sets' },
    mix_over_base_all: { unit: 'ratio', description: 'perplexity of the posterior mixture / the base, all sets' },
    mix_over_union_all: { unit: 'ratio', description: 'perplexity of the posterior mixture / the union model (same data, same total compute), all sets' },
    random_mix_over_union_all: { unit: 'ratio', description: 'control: posterior mixture of random-split specialists / the union model, all sets' },
    specialization_gain: { unit: 'ratio points', description: 'random_mix_over_union_all - mix_over_union_all (> 0: specialisation adds to ensembling)' },
    uniform_over_posterior_mixed: { unit: 'ratio', description: 'uniform ensemble / posterior mixture, mixed windows' },
    top1_over_posterior_mixed: { unit: 'ratio', description: 'top-1 routing / posterior mixture, mixed windows' },
  };
}

export function mixtureQuantities18(): Q {
  return {
    top_is_domain: { unit: 'fraction', description: 'domain-set tokens whose top-credited specialist is their domain\'s (chance: 1/3)' },
    ablation_top_worse: { unit: 'fraction', description: 'domain-set tokens where dropping the top-credited specialist raises the NLL more than dropping a random other' },
    random_share_dev: { unit: 'share', description: 'control: random-split mixture, largest |mean share - 1/3| over models, mean over domain sets' },
    domain_share_dev: { unit: 'share', description: 'domain specialists, the same measure (how uneven real credit is)' },
    top_is_domain_mixed: { unit: 'fraction', description: 'the same as top_is_domain on the mixed windows (the domain of each segment)' },
  };
}

const domainSets = (run: MixtureRun): SetScores[] => run.sets.filter((s) => s.set !== 'mixed');
const mixedSet = (run: MixtureRun): SetScores => run.sets.find((s) => s.set === 'mixed')!;
/** Token-weighted mean NLL over every set of one arm. */
const allSets = (run: MixtureRun, f: (s: SetScores) => number): number => {
  const tokens = run.sets.reduce((n, s) => n + s.tokens, 0);
  return run.sets.reduce((acc, s) => acc + f(s) * s.tokens, 0) / tokens;
};
const shareDev = (shares: readonly number[]): number => Math.max(...shares.map((x) => Math.abs(x - 1 / shares.length)));

export async function measure04(ctx: MeasureContext<MixtureSizes>): Promise<SeedMeasurement> {
  const run = await mixtureRun(ctx.sizes, ctx.seed, ctx.smoke, ctx.log);
  const mixed = mixedSet(run);
  const post = (s: SetScores) => s.mixture.posterior;
  const union = allSets(run, (s) => s.union);
  const mixUnion = Math.exp(allSets(run, post) - union);
  const randUnion = Math.exp(allSets(run, (s) => s.randomMixture.posterior) - union);
  return {
    values: {
      mix_over_best_single_mixed: Math.exp(mixed.mixture.posterior - Math.min(...mixed.specialists)),
      mix_over_oracle_domains: mean(domainSets(run).map((s) => Math.exp(s.mixture.posterior - s.oracle))),
      mix_over_base_all: Math.exp(allSets(run, post) - allSets(run, (s) => s.base)),
      mix_over_union_all: mixUnion,
      random_mix_over_union_all: randUnion,
      specialization_gain: randUnion - mixUnion,
      uniform_over_posterior_mixed: Math.exp(mixed.mixture.uniform - mixed.mixture.posterior),
      top1_over_posterior_mixed: Math.exp(mixed.mixture.top1 - mixed.mixture.posterior),
    },
    extra: run,
  };
}

export async function measure18(ctx: MeasureContext<MixtureSizes>): Promise<SeedMeasurement> {
  const run = await mixtureRun(ctx.sizes, ctx.seed, ctx.smoke, ctx.log);
  const sets = domainSets(run);
  const tokens = sets.reduce((n, s) => n + s.tokens, 0);
  const weighted = (f: (s: SetScores) => number) => sets.reduce((acc, s) => acc + f(s) * s.tokens, 0) / tokens;
  return {
    values: {
      top_is_domain: weighted((s) => s.topIsDomain),
      ablation_top_worse: weighted((s) => s.ablationTopWorse),
      random_share_dev: mean(sets.map((s) => shareDev(s.randomMeanShares))),
      domain_share_dev: mean(sets.map((s) => shareDev(s.meanShares))),
      top_is_domain_mixed: mixedSet(run).topIsDomain,
    },
    extra: run,
  };
}

function band(values: number[]): { mean: number; lo: number; hi: number } {
  const [lo, hi] = bootstrapCI(values);
  return { mean: mean(values), lo, hi };
}

export function finishMixture(id: string, seeds: { seed: number; measurement: SeedMeasurement }[]): { details: Record<string, unknown>; figures: Figure[]; notes: string[] } {
  const runs = seeds.map((s) => s.measurement.extra as MixtureRun);
  const r0 = runs[0]!;
  const names = r0.domains;
  const setNames = r0.sets.map((s) => s.set);
  const at = (set: string) => runs.map((r) => r.sets.find((s) => s.set === set)!);
  const arms: [string, (s: SetScores) => number][] = [
    ['base', (s) => s.base],
    ...names.map((n, k): [string, (s: SetScores) => number] => [`specialist ${n}`, (s) => s.specialists[k]!]),
    ['union model', (s) => s.union],
    ['oracle', (s) => s.oracle],
    ['uniform', (s) => s.mixture.uniform],
    ['top-1', (s) => s.mixture.top1],
    ['posterior mixture', (s) => s.mixture.posterior],
    ['random-split mixture', (s) => s.randomMixture.posterior],
    ...(r0.sets[0]?.fixedShare ? [['fixed-share mixture', (s: SetScores) => s.fixedShare!.nll] as [string, (s: SetScores) => number]] : []),
  ];
  const table = setNames.flatMap((set) => arms.map(([arm, f]) => ({ set, arm, perplexity: band(at(set).map((s) => Math.exp(f(s)))) })));
  const figures: Figure[] = [];
  if (id !== '18') {
    figures.push({
      kind: 'bars', id: `${id}_perplexity`, title: 'Held-out perplexity per set (mean of 3 seeds, 95% CI)', yLabel: 'perplexity',
      bars: table.map((t) => ({ label: t.arm, group: t.set, ...t.perplexity })),
    });
  } else {
    const points: Extract<Figure, { kind: 'curve' }>['points'] = [];
    for (const [k, n] of names.entries()) {
      for (let t = 0; t < r0.trace.length; t++) points.push({ series: n, x: t + 1, ...band(runs.map((r) => r.trace[t]!.shares[k]!)) });
    }
    figures.push({ kind: 'curve', id: '18_attribution_mixed', title: `Share of each token per specialist over a mixed window (segments: ${segments(r0).join(' | ')})`, xLabel: 'token', yLabel: 'share of the token', points });
    figures.push({
      kind: 'heatmap', id: '18_mean_shares', title: 'Mean share of the token per specialist, per held-out set (seed mean)', xLabel: 'specialist', yLabel: 'set',
      cells: setNames.flatMap((set) => names.map((n, k) => ({ x: n, y: set, value: mean(at(set).map((s) => s.meanShares[k]!)) }))),
    });
  }
  return {
    details: {
      perplexity: table,
      shares: setNames.map((set) => ({ set, domain: names.map((n, k) => ({ model: n, share: band(at(set).map((s) => s.meanShares[k]!)) })), randomSplit: names.map((_, k) => ({ model: `random ${k + 1}`, share: band(at(set).map((s) => s.randomMeanShares[k]!)) })) })),
      trainSeconds: runs.map((r) => r.seconds.train),
      trainChars: r0.trainChars,
    },
    figures,
    notes: [
      'Both bets read the same runs (_mixture_run.ts: cached per code version, sizes and seed; a run is deterministic given its seed).',
      'The mixture numbers come from the serving code (src/model/mixture/: the ggml Combiner, mixStep, the Bayes update from a uniform prior at the start of each window); the models are evaluated in f32 straight from the trainer (not quantised).',
      'The machine (2 cores, AMD EPYC) was shared with other jobs during the run: the seconds in details are not comparable timings.',
    ],
  };
}

function segments(run: MixtureRun): string[] {
  const out: string[] = [];
  let last = -1;
  for (const t of run.trace) {
    if (t.domain !== last) out.push(run.domains[t.domain]!);
    last = t.domain;
  }
  return out;
}
