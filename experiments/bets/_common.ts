// What every bet shares: its definition as data (hypothesis, criteria, controls, seeds, sizes), the command
// line (`--smoke`, `--out`), test models and corpora (cached on disk), the environment a result records,
// and runBet(), which runs the seeds, summarises each quantity with bootstrap CIs, applies the verdict and
// writes the result file through the one schema.
//
// A bet file exports `bet = defineBet({...})` and ends with `await runFromCli(bet)` when run directly.
// `--smoke` runs the same code with the bet's tiny sizes and its first seed, into a temp folder: it never
// overwrites a committed result. `--jobs N` measures up to N seeds at once, each in a child process
// (_parallel.ts); the result is the one a sequential run writes.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CommandSpec, UsageError, parseCommand, renderHelp } from '../../src/cli/args.ts';
import { cachedModel } from '../../src/model/testing/cached-model.ts';
import type { MakeModelOptions } from '../../src/model/testing/make-model.ts';
import { exitLikeFailedSeed, measureSeedToFile, measureSeedsInChildren } from './_parallel.ts';
import { type BetResult, type Criterion, type Figure, type Quantity, RESULT_SCHEMA_VERSION, ResultSchema } from './_schema.ts';
import { bootstrapCI, mean } from './_stats.ts';
import { checkCriteria, judge } from './_verdict.ts';

export const BETS_DIR = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(BETS_DIR, '../..');
export const RESULTS_DIR = join(BETS_DIR, 'results');

/** What one seed measured: a value per quantity, and optionally the evaluation items behind it. */
export interface SeedMeasurement {
  values: Record<string, number>;
  /** Per-item values (tokens, documents) whose mean is the quantity, for a CI over items. */
  items?: Record<string, number[]>;
  /** Anything the bet's finish() wants back (tables, breakdowns). */
  extra?: unknown;
}

export interface MeasureContext<Sizes> {
  seed: number;
  sizes: Sizes;
  smoke: boolean;
  log: (message: string) => void;
}

export interface BetDefinition<Sizes> {
  /** Two digits or more, the catalogue's number. */
  id: string;
  /** lower_snake_case; the file is `${id}_${name}.ts`, the result `results/${id}_${name}.json`. */
  name: string;
  hypothesis: string;
  notClaimed: string;
  retracts?: string[];
  /** The exact command of a full run. */
  run: string;
  seeds: number[];
  /** Criteria as data: the same as the header comment states in words. */
  criteria: Criterion[];
  controls: { name: string; description: string }[];
  quantities: Record<string, { unit: string; description: string }>;
  sizes: { full: Sizes; smoke: Sizes };
  /** CPU threads the bet's compute uses (recorded with the result). */
  threads: number;
  measure(ctx: MeasureContext<Sizes>): Promise<SeedMeasurement>;
  /** Tables, figures and notes from every seed's measurement. */
  finish?(seeds: { seed: number; measurement: SeedMeasurement }[], sizes: Sizes, smoke: boolean): { details?: Record<string, unknown>; figures?: Figure[]; notes?: string[] };
}

export function defineBet<Sizes>(def: BetDefinition<Sizes>): BetDefinition<Sizes> {
  if (!/^\d{2,}$/.test(def.id) || !/^[a-z0-9_]+$/.test(def.name)) throw new Error(`bet id '${def.id}' and name '${def.name}' must be digits and lower_snake_case`);
  checkCriteria(def.criteria, Object.keys(def.quantities));
  return def;
}

export interface BetArgs {
  smoke: boolean;
  /** Folder the result goes to (default: results/ for a full run, a temp folder for --smoke). */
  outDir: string;
  /** Seeds measured at once, each in a child process (default 1: in this process, one after another). */
  jobs?: number;
  /** The bet's file, which the child processes run (needed when jobs > 1). */
  file?: string;
  /** Set in a child process: measure this one seed into `out` (JSON) and write no result. */
  seedOnly?: { seed: number; out: string };
}

/** parseBetArgs for a command line: a bad flag prints what was wrong and the help, and exits 2. */
export function parseBetArgsOrExit(argv: readonly string[]): ReturnType<typeof parseBetArgs> {
  try {
    return parseBetArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`error: ${e.message}\n\n${betHelp()}\n`);
    process.exit(2);
  }
}

/** The flags of a bet run, as `npm run bet -- NN --help` and `node --import tsx NN_name.ts --help` show them. */
export const BET_COMMAND: CommandSpec = {
  name: 'bet',
  summary: 'Run one bet of the catalogue: every seed, then the verdict; a full run writes results/NN_name.json.',
  usage: 'npm run bet -- NN [--smoke] [--out DIR] [--jobs N]   (or: node --import tsx experiments/bets/NN_name.ts [flags])',
  flags: {
    smoke: { type: 'boolean', help: "tiny sizes, the first seed only, into a temp folder (what CI runs; never touches results/)", default: false },
    out: { type: 'string', arg: 'DIR', help: 'folder for the result file (default: results/, or a temp folder with --smoke)' },
    jobs: { type: 'number', integer: true, min: 1, max: 256, default: 1, help: "seeds measured at once, each in a child process that uses the bet's threads: for long bets on a machine with cores to spare (wall times of seeds run together share the machine); with --smoke, its one seed in a child process, to try that path in seconds" },
  },
  examples: ['npm run bet -- 66 --smoke', 'npm run bet -- 66 --jobs 3'],
};

/** Internal flags of a seed's child process (not in --help). */
const CHILD_FLAGS: CommandSpec['flags'] = {
  'seed-only': { type: 'number', integer: true, help: '(internal) measure this seed only' },
  'measurement-out': { type: 'string', help: '(internal) file the seed\'s measurement is written to' },
};

export function betHelp(): string {
  return renderHelp(BET_COMMAND);
}

/** Parse and check a bet's flags; throws UsageError (from src/cli/args.ts) on a bad one, `help` with --help. */
export function parseBetArgs(argv: readonly string[]): BetArgs & { help: boolean } {
  const { flags } = parseCommand({ ...BET_COMMAND, flags: { ...BET_COMMAND.flags, ...CHILD_FLAGS } }, argv);
  const smoke = flags.smoke === true;
  const out = typeof flags.out === 'string' ? flags.out : undefined;
  const jobs = typeof flags.jobs === 'number' ? flags.jobs : 1;
  const seed = flags['seed-only'];
  const measurementOut = flags['measurement-out'];
  if ((typeof seed === 'number') !== (typeof measurementOut === 'string')) throw new UsageError('--seed-only and --measurement-out go together (they are how a bet run with --jobs starts a seed\'s process)', BET_COMMAND.name);
  return {
    help: flags.help === true,
    smoke,
    outDir: out ?? (smoke ? join(tmpdir(), 'sharedllm-bets-smoke') : RESULTS_DIR),
    jobs,
    ...(typeof seed === 'number' && typeof measurementOut === 'string' ? { seedOnly: { seed, out: measurementOut } } : {}),
  };
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

/** Commit, CPU and runtime of this run. The CPU model comes from os.cpus() (/proc/cpuinfo on Linux). */
export function environment(threads: number): BetResult['environment'] {
  const list = cpus();
  return {
    commit: git(['rev-parse', 'HEAD']) || 'unknown',
    dirty: git(['status', '--porcelain', '--untracked-files=no']) !== '',
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    cpus: Math.max(1, list.length),
    threads,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}

/** A random-weight test model in a real model's shape, written once per machine (.cache/test-models). */
export function testModel(options: MakeModelOptions): string {
  return cachedModel(options);
}

/** A corpus fetched by scripts/fetch-corpora.ts: its documents (one per file), in a stable order. */
export function loadCorpus(source: 'brown' | 'moby-dick' | 'austen', dir = join(ROOT, 'data', 'corpora')): { name: string; text: string }[] {
  const folder = join(dir, source);
  if (!existsSync(folder)) throw new Error(`corpus '${source}' is not at ${folder}. Fetch it first: node --import tsx scripts/fetch-corpora.ts --only ${source}`);
  return readdirSync(folder).filter((f) => f.endsWith('.txt')).sort().map((f) => ({ name: f.replace(/\.txt$/, ''), text: readFileSync(join(folder, f), 'utf8') }));
}

/** Mean and bootstrap CIs of one quantity over seeds (and over items, where the bet kept them). */
export function summarise(perSeed: number[], items: number[] | undefined, info: { unit: string; description: string }): Quantity {
  for (const v of [...perSeed, ...(items ?? [])]) {
    if (!Number.isFinite(v)) throw new Error(`a measured value is not a finite number (${v}): the bet must record a failure as a number (e.g. a 0/1 flag), not NaN`);
  }
  return {
    ...info,
    perSeed,
    mean: mean(perSeed),
    ci95: bootstrapCI(perSeed),
    ...(items !== undefined && items.length > 0 ? { ci95Items: bootstrapCI(items), nItems: items.length } : {}),
  };
}

/** Round to 6 significant digits: results read better and diff cleanly; nothing we measure is that precise. */
function tidy(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isInteger(value) ? Number(value.toPrecision(6)) : value;
}

export function resultPath(dir: string, def: { id: string; name: string }): string {
  return join(dir, `${def.id}_${def.name}.json`);
}

/** Run every seed (the first only with --smoke), judge, validate and write the result; returns it. */
export async function runBet<Sizes>(def: BetDefinition<Sizes>, args: BetArgs): Promise<BetResult> {
  const t0 = performance.now();
  // Recorded before the run: the commit and working tree the numbers come from.
  const env = environment(def.threads);
  const sizes = args.smoke ? def.sizes.smoke : def.sizes.full;
  const seeds = args.smoke ? def.seeds.slice(0, 1) : def.seeds;
  const log = (m: string) => process.stderr.write(`[bet ${def.id}${args.smoke ? ' smoke' : ''}] ${m}\n`);
  const jobs = args.jobs ?? 1;
  const runs: { seed: number; measurement: SeedMeasurement }[] = [];
  if (jobs > 1) {
    if (args.file === undefined) throw new Error(`--jobs ${jobs} runs each seed in a child process of the bet's file, and runBet was not told the file (BetArgs.file)`);
    const cores = Math.max(1, cpus().length);
    if (Math.min(jobs, seeds.length) * def.threads > cores) log(`${Math.min(jobs, seeds.length)} seeds x ${def.threads} thread(s) on ${cores} cores: the seeds share cores`);
    runs.push(...(await measureSeedsInChildren({ file: args.file, seeds, jobs, smoke: args.smoke, cwd: ROOT, log })));
  } else {
    for (const seed of seeds) {
      log(`seed ${seed}`);
      runs.push({ seed, measurement: await def.measure({ seed, sizes, smoke: args.smoke, log }) });
    }
  }
  const quantities: Record<string, Quantity> = {};
  for (const [key, info] of Object.entries(def.quantities)) {
    const perSeed = runs.map((r) => {
      const v = r.measurement.values[key];
      if (v === undefined) throw new Error(`seed ${r.seed} did not measure '${key}'`);
      return v;
    });
    const items = runs.flatMap((r) => r.measurement.items?.[key] ?? []);
    quantities[key] = summarise(perSeed, items.length > 0 ? items : undefined, info);
  }
  const { verdict, results } = judge(def.criteria, quantities);
  const finished = def.finish?.(runs, sizes, args.smoke) ?? {};
  const result: BetResult = ResultSchema.parse({
    schemaVersion: RESULT_SCHEMA_VERSION,
    bet: def.id, name: def.name, hypothesis: def.hypothesis, notClaimed: def.notClaimed, retracts: def.retracts ?? [], run: def.run,
    mode: args.smoke ? 'smoke' : 'full', seeds, criteria: def.criteria, controls: def.controls, quantities, criteriaResults: results, verdict,
    details: finished.details ?? {}, figures: finished.figures ?? [], notes: [...(finished.notes ?? []), ...(jobs > 1 && seeds.length > 1 ? [`Seeds measured ${Math.min(jobs, seeds.length)} at a time in child processes (--jobs ${jobs}): their wall times shared the machine.`] : [])],
    environment: env, wallTimeS: (performance.now() - t0) / 1000,
  });
  mkdirSync(args.outDir, { recursive: true });
  const path = resultPath(args.outDir, def);
  writeFileSync(path, `${JSON.stringify(result, tidy, 2)}\n`);
  log(`verdict ${verdict}; wrote ${path} (${result.wallTimeS.toFixed(1)} s)`);
  return ResultSchema.parse(JSON.parse(readFileSync(path, 'utf8')));
}

/**
 * The entry point of a bet file run directly: `node --import tsx experiments/bets/NN_name.ts [--smoke] [--out DIR]
 * [--jobs N]`; with `--seed-only S --measurement-out FILE` it is a seed's child process of a `--jobs` run.
 */
export async function runFromCli<Sizes>(def: BetDefinition<Sizes>, argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  const args = parseBetArgsOrExit(argv);
  if (args.help) {
    process.stdout.write(`${betHelp()}\n`);
    return;
  }
  if (args.seedOnly) {
    await measureOneSeed(def, args.seedOnly, args.smoke);
    return;
  }
  const result = await exitLikeFailedSeed(runBet(def, { ...args, file: process.argv[1] === undefined ? undefined : resolve(process.argv[1]) }));
  process.stdout.write(`${def.id}_${def.name}: ${result.verdict}\n`);
}

/** A seed's child process: measure `seed` (one of the bet's seeds) and write its measurement as JSON. */
async function measureOneSeed<Sizes>(def: BetDefinition<Sizes>, only: { seed: number; out: string }, smoke: boolean): Promise<void> {
  const seeds = smoke ? def.seeds.slice(0, 1) : def.seeds;
  if (!seeds.includes(only.seed)) throw new Error(`--seed-only ${only.seed}: bet ${def.id} ${smoke ? 'smoke runs seed' : 'has seeds'} ${seeds.join(', ')}`);
  const log = (m: string) => process.stderr.write(`[bet ${def.id}${smoke ? ' smoke' : ''}] ${m}\n`);
  log(`seed ${only.seed}`);
  await measureSeedToFile(() => def.measure({ seed: only.seed, sizes: smoke ? def.sizes.smoke : def.sizes.full, smoke, log }), only.out, log);
}

/** True when `metaUrl` is the module node was asked to run (a bet file run directly, not imported). */
export function isMain(metaUrl: string): boolean {
  return process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(metaUrl);
}
