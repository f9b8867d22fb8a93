// The one contract of a bet's result file (results/NN_short_name.json): the rollup, the smoke tests and any
// later tool read results through this schema only. Criteria are copied into the result as written, so a
// result can be judged without the code that produced it.
import { z } from 'zod';

export const RESULT_SCHEMA_VERSION = 1;

export const LEVELS = ['strict', 'lenient', 'catastrophic'] as const;
export const VERDICTS = ['strict', 'lenient', 'fail', 'catastrophic'] as const;
export const COMPARISONS = ['<', '<=', '>', '>='] as const;
/** Which number of a quantity a criterion reads: the mean over seeds, or an end of its 95% CI. */
export const STATS = ['mean', 'ci_low', 'ci_high'] as const;

export const CriterionSchema = z.object({
  level: z.enum(LEVELS),
  /** A key of `quantities`. */
  quantity: z.string().min(1),
  stat: z.enum(STATS),
  op: z.enum(COMPARISONS),
  threshold: z.number(),
  /** The same criterion in words, as the bet's header comment states it. */
  words: z.string().min(1),
});
export type Criterion = z.infer<typeof CriterionSchema>;

const Interval = z.tuple([z.number(), z.number()]);

export const QuantitySchema = z.object({
  unit: z.string(),
  description: z.string(),
  /** One value per seed, in the order of `seeds`. */
  perSeed: z.array(z.number()),
  mean: z.number(),
  /** Bootstrap 95% CI of the mean over seeds. */
  ci95: Interval,
  /** Bootstrap 95% CI of the mean over evaluation items (tokens, documents) pooled over seeds, where there are items. */
  ci95Items: Interval.optional(),
  nItems: z.number().int().nonnegative().optional(),
});
export type Quantity = z.infer<typeof QuantitySchema>;

export const CriterionResultSchema = CriterionSchema.extend({ value: z.number(), holds: z.boolean() });

const Point = z.object({ series: z.string(), x: z.number(), mean: z.number(), lo: z.number(), hi: z.number() });
const Bar = z.object({ label: z.string(), group: z.string(), mean: z.number(), lo: z.number(), hi: z.number() });
const Cell = z.object({ x: z.string(), y: z.string(), value: z.number() });

/** Figures are data; the rollup draws them (curves with CI bands, bars with error bars, heatmaps). */
export const FigureSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('curve'), id: z.string().regex(/^[a-z0-9_]+$/), title: z.string(), xLabel: z.string(), yLabel: z.string(), logX: z.boolean().optional(), points: z.array(Point) }),
  z.object({ kind: z.literal('bars'), id: z.string().regex(/^[a-z0-9_]+$/), title: z.string(), yLabel: z.string(), bars: z.array(Bar) }),
  z.object({ kind: z.literal('heatmap'), id: z.string().regex(/^[a-z0-9_]+$/), title: z.string(), xLabel: z.string(), yLabel: z.string(), cells: z.array(Cell) }),
]);
export type Figure = z.infer<typeof FigureSchema>;

export const ResultSchema = z.object({
  schemaVersion: z.literal(RESULT_SCHEMA_VERSION),
  bet: z.string().regex(/^\d{2,}$/),
  name: z.string().regex(/^[a-z0-9_]+$/),
  hypothesis: z.string().min(1),
  /** What a reader must not take from this result, in one line. */
  notClaimed: z.string().min(1),
  /** Bets this one overturns (their numbers); the rollup links the retraction from them. */
  retracts: z.array(z.string()),
  run: z.string().min(1),
  mode: z.enum(['full', 'smoke']),
  seeds: z.array(z.number().int()).min(1),
  criteria: z.array(CriterionSchema).min(1),
  controls: z.array(z.object({ name: z.string(), description: z.string() })).min(1),
  quantities: z.record(z.string(), QuantitySchema),
  criteriaResults: z.array(CriterionResultSchema),
  verdict: z.enum(VERDICTS),
  /** Anything else a reader needs (tables of settings, breakdowns), free-form but JSON. */
  details: z.record(z.string(), z.unknown()),
  figures: z.array(FigureSchema),
  notes: z.array(z.string()),
  environment: z.object({
    commit: z.string(),
    dirty: z.boolean(),
    cpuModel: z.string(),
    cpus: z.number().int().positive(),
    threads: z.number().int().positive(),
    node: z.string(),
    platform: z.string(),
  }),
  wallTimeS: z.number().nonnegative(),
});
export type BetResult = z.infer<typeof ResultSchema>;
