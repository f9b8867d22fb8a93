// A bet's seeds in parallel (`--jobs N`): each seed's measure() runs in a child process of its own, the bet
// file run again with `--seed-only S --measurement-out FILE`; the parent waits for them, reads each seed's
// measurement back (validated), and judges, finishes and writes the result as a sequential run would.
//
// - Children are spawned as `node --import tsx <bet file> ...`, N at a time, in seed order; their output is
//   forwarded line by line with a `[seed S]` prefix, and the tail of their stderr is kept for an error.
// - A measurement crosses as JSON; numbers JSON cannot hold (NaN, +-Infinity) are tagged and restored, so
//   the parent sees what the child measured. A typed array arrives as a plain array (the child warns).
// - A child that fails stops the others and fails the run (SeedProcessError: its exit code, its stderr).
// - SIGINT/SIGTERM in the parent: SIGTERM to every child (a bet's own cluster then stops), SIGKILL to each
//   child's process group after a grace; the parent exits 130/143. Each child leads its own process group,
//   so that the SIGKILL also reaches what the child started.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { stopChildrenOnSignals } from '../../src/cli/cluster.ts';
import type { SeedMeasurement } from './_common.ts';

/** Settings of parallel seeds, one comment each. */
export const PARALLEL_DEFAULTS = {
  /** Between SIGTERM and SIGKILL when the parent stops its children: a bet's cluster stops in seconds. */
  stopGraceMs: 10_000,
  /** Stderr kept per child for the error of a failed seed (the tail; older output is dropped). */
  keepBytes: 64 << 10,
  /** Lines of that stderr quoted in the error. */
  tailLines: 40,
} as const;

/** A seed's child process failed: its exit, and the end of what it wrote on stderr. */
export class SeedProcessError extends Error {
  constructor(readonly seed: number, readonly exitCode: number | null, readonly signal: NodeJS.Signals | null, readonly stderrTail: string, file: string) {
    super(`seed ${seed} failed in its child process: expected exit code 0, got ${exitCode ?? signal}. Its stderr ends with:\n${stderrTail}\n` +
      `Rerun that seed alone to debug it: node --import tsx ${file} --seed-only ${seed} --measurement-out seed-${seed}.json`);
    this.name = 'SeedProcessError';
  }
}

/** A run's entry point: a failed seed's process ends this one with the same exit code (1 if it was killed). */
export async function exitLikeFailedSeed<T>(run: Promise<T>): Promise<T> {
  try {
    return await run;
  } catch (e) {
    if (!(e instanceof SeedProcessError)) throw e;
    process.stderr.write(`${e.message}\n`);
    process.exit(e.exitCode !== null && e.exitCode !== 0 ? e.exitCode : 1);
  }
}

// NaN and +-Infinity as JSON: `{"$nonFinite":"NaN"}`, restored by the reviver.
const NON_FINITE = '$nonFinite';
const NonFinite = z.object({ [NON_FINITE]: z.enum(['NaN', 'Infinity', '-Infinity']) }).strict();
/** Any number, NaN included: a value the parent's summarise() refuses with its own message, as in a sequential run. */
const AnyNumber = z.custom<number>((v) => typeof v === 'number', 'a number');

export const SeedMeasurementSchema = z.object({
  values: z.record(z.string(), AnyNumber),
  items: z.record(z.string(), z.array(AnyNumber)).optional(),
  extra: z.unknown().optional(),
});

/** The measurement as JSON; warns (through `log`) about what JSON changes: typed arrays, Maps, Sets. */
export function measurementToJson(m: SeedMeasurement, log: (message: string) => void): string {
  const warned = new Set<string>();
  const warn = (what: string) => {
    if (!warned.has(what)) log(`warning: the measurement holds a ${what}; it reaches finish() as ${what === 'typed array' ? 'a plain array' : 'an empty object'} when seeds run in child processes (--jobs)`);
    warned.add(what);
  };
  return JSON.stringify(m, (_key, value: unknown) => {
    if (typeof value === 'number' && !Number.isFinite(value)) return { [NON_FINITE]: String(value) };
    if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
      warn('typed array');
      return Array.from(value as unknown as ArrayLike<number>);
    }
    if (value instanceof Map) warn('Map');
    if (value instanceof Set) warn('Set');
    return value;
  });
}

export function measurementFromJson(text: string, source: string): SeedMeasurement {
  const parsed = SeedMeasurementSchema.safeParse(JSON.parse(text, (_key, value: unknown) => {
    const tagged = NonFinite.safeParse(value);
    return tagged.success ? Number(tagged.data[NON_FINITE]) : value;
  }));
  if (!parsed.success) throw new Error(`${source} is not a seed's measurement ({ values, items?, extra? }): ${parsed.error.message}`);
  return parsed.data;
}

/** In a child (`--seed-only S --measurement-out FILE`): measure one seed and write it; no result file. */
export async function measureSeedToFile(measure: () => Promise<SeedMeasurement>, out: string, log: (message: string) => void): Promise<void> {
  // The bet's own processes (a cluster) stop with this one when the parent sends SIGTERM.
  stopChildrenOnSignals();
  const m = await measure();
  writeFileSync(out, measurementToJson(m, log));
}

interface ParallelOptions {
  /** The bet file: a module that ends with `if (isMain(import.meta.url)) await runFromCli(bet)`. */
  file: string;
  seeds: readonly number[];
  jobs: number;
  smoke: boolean;
  cwd: string;
  log: (message: string) => void;
}

interface Child {
  seed: number;
  proc: ChildProcess;
  exited: Promise<void>;
}

/** Measure every seed in child processes, `jobs` at a time; measurements come back in the order of `seeds`. */
export async function measureSeedsInChildren(opts: ParallelOptions): Promise<{ seed: number; measurement: SeedMeasurement }[]> {
  const dir = mkdtempSync(join(tmpdir(), 'sharedllm-bet-seeds-'));
  const live = new Set<Child>();
  let stopping = false;
  let interrupted = false;
  const stopAll = async () => {
    stopping = true;
    const children = [...live];
    for (const c of children) c.proc.kill('SIGTERM');
    const timer = setTimeout(() => children.forEach((c) => killGroup(c.proc)), PARALLEL_DEFAULTS.stopGraceMs);
    await Promise.all(children.map((c) => c.exited));
    clearTimeout(timer);
  };
  // Last resort (the parent exits for any other reason): SIGTERM, which the children act on when they can.
  const onExit = () => live.forEach((c) => c.proc.kill('SIGTERM'));
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  const onSignal = (signal: NodeJS.Signals) => {
    const code = signal === 'SIGINT' ? 130 : 143;
    if (stopping) {
      live.forEach((c) => killGroup(c.proc));
      removeDir();
      process.exit(code);
    }
    interrupted = true;
    opts.log(`${signal}: stopping ${live.size} seed process(es)`);
    void stopAll().then(() => {
      removeDir();
      process.exit(code);
    });
  };
  process.on('exit', onExit);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const results = new Map<number, SeedMeasurement>();
  const queue = [...opts.seeds];
  let failure: Error | undefined;
  const runOne = async (seed: number): Promise<void> => {
    const out = join(dir, `seed-${seed}.json`);
    const args = ['--import', 'tsx', opts.file, '--seed-only', String(seed), '--measurement-out', out, ...(opts.smoke ? ['--smoke'] : [])];
    const proc = spawn(process.execPath, args, { cwd: opts.cwd, env: process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stderr = '';
    const flushOut = forwardLines(proc.stdout!, process.stdout, `[seed ${seed}] `);
    const flushErr = forwardLines(proc.stderr!, process.stderr, `[seed ${seed}] `, (text) => {
      stderr = (stderr + text).slice(-PARALLEL_DEFAULTS.keepBytes);
    });
    let exit: { code: number | null; signal: NodeJS.Signals | null } = { code: null, signal: null };
    const exited = new Promise<void>((resolve) => {
      proc.once('error', (e) => {
        stderr += `\n${e.message}`;
      });
      proc.once('close', (code, signal) => {
        exit = { code, signal };
        live.delete(child);
        flushOut();
        flushErr();
        resolve();
      });
    });
    const child: Child = { seed, proc, exited };
    live.add(child);
    opts.log(`seed ${seed} in child process ${proc.pid ?? '(not started)'}`);
    await exited;
    if (stopping) return;
    if (exit.code !== 0) throw new SeedProcessError(seed, exit.code, exit.signal, stderr.split('\n').slice(-PARALLEL_DEFAULTS.tailLines).join('\n'), opts.file);
    results.set(seed, measurementFromJson(readFileSync(out, 'utf8'), `seed ${seed}'s measurement (${out})`));
    opts.log(`seed ${seed} measured (${results.size} of ${opts.seeds.length})`);
  };
  const worker = async (): Promise<void> => {
    for (let seed = queue.shift(); seed !== undefined && !stopping; seed = queue.shift()) {
      try {
        await runOne(seed);
      } catch (e) {
        if (!failure) {
          failure = e instanceof Error ? e : new Error(String(e));
          await stopAll();
        }
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(opts.jobs, opts.seeds.length) }, worker));
    if (failure) throw failure;
    // Stopped by a signal: its handler exits this process once the children are gone; nothing to return.
    if (interrupted) await new Promise<never>(() => {});
    return opts.seeds.map((seed) => {
      const measurement = results.get(seed);
      if (!measurement) throw new Error(`seed ${seed} has no measurement`);
      return { seed, measurement };
    });
  } finally {
    process.off('exit', onExit);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    removeDir();
  }
}

/** SIGKILL a child and everything it started (its process group; the child alone where groups are not). */
function killGroup(proc: ChildProcess): void {
  if (proc.exitCode !== null || proc.signalCode !== null || proc.pid === undefined) return;
  try {
    if (process.platform === 'win32') proc.kill('SIGKILL');
    else process.kill(-proc.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Copy a stream to `to` line by line, each line prefixed; returns a flush for the last partial line. */
function forwardLines(from: NodeJS.ReadableStream, to: NodeJS.WritableStream, prefix: string, tap?: (text: string) => void): () => void {
  let partial = '';
  from.setEncoding('utf8');
  from.on('data', (text: string) => {
    tap?.(text);
    const lines = (partial + text).split('\n');
    partial = lines.pop() ?? '';
    if (lines.length > 0) to.write(lines.map((l) => `${prefix}${l}\n`).join(''));
  });
  return () => {
    if (partial !== '') to.write(`${prefix}${partial}\n`);
    partial = '';
  };
}
