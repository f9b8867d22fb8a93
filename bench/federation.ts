// Federation benchmark: decode tokens/s of the full-size TinyLlama-shape Q8_0 file (22 layers) on one node
// against a pipeline of primary + 1 worker and primary + 2 workers on loopback (workers are real
// `sharedllm node` processes; the primary runs in this process so that its decode loop is the same code as
// the single node's), runs alternated, medians and ratios; then the aggregate tokens/s of 8 concurrent
// sequences against 1 through the primary's Batcher (the OpenAI API's path without HTTP).
// Decode speed: every setup decodes the same greedy tokens, interleaved step by step (see `interleaved`);
// a run's tokens/s is 1000 / its median step time; the table shows the median over runs, and the ratio is
// the median of the runs' own ratios (each run's setups saw the same machine).
// Targets: >= 0.97x with one worker, >= 0.9x with two, aggregate (8 vs 1) >= 2x.
//
// Threads (the fairness rule): every process gets the same share of the cores, threads = cores / 3 (the
// largest setup runs 3 processes), at least 1, and the single node gets that same share. Each process
// then computes as if it were its own machine with that many cores, which is what a federation is, and
// the machine is never oversubscribed even when all stages compute at once (8 sequences in flight).
// `--fed-threads N` overrides it. Why not give every process all the cores: ggml's threads meet at
// spinning barriers hundreds of times per token, so a stage whose threads another process interrupts
// waits for the whole time slice. Measured on the 2-core KVM machine this was written on, with 2 threads
// per process the stages computed 30-60% slower than the same layers in one process (a worker's 11
// layers: 24 ms in-process, 32 ms in the pipeline; the head: 2.5 ms vs 5-15 ms) while the hops cost
// 0.7 ms each; with 1 thread per process the stages cost what they cost in one process.
// `--fed-cpus 0-1` pins every process's threads one per core (`sharedllm node --cpus`): with 2 threads per
// process that removes most of the loss (see Ggml.setCpus for the figures).
//
// Each setup also prints where a decode step's time goes, from the pipeline's own timings: the primary's
// compute (embeddings, its layers, the head), each worker's compute as the worker reports it, and the
// hops (the remote wall time minus the workers' compute: loopback, framing, validation, event loops).
import { Cluster, stopChildrenOnSignals } from '../src/cli/cluster.ts';
import { startPrimary, type Primary } from '../src/federation/node/primary.ts';
import { silentLogger } from '../src/util/log.ts';
import { Batcher, type Forward, localForward } from '../src/model/batcher.ts';
import { loadModelPart } from '../src/model/load.ts';
import { cachedModel } from '../src/model/testing/cached-model.ts';
import { argmax } from '../src/model/testing/compare.ts';
import { availableParallelism } from 'node:os';
import { getGgml } from '../src/ggml/runtime.ts';
import type { TimingSummary } from '../src/federation/node/step-timings.ts';
import { fmt, log, median, table } from './stats.ts';

export interface FederationBenchOptions {
  runs: number;
  /** Threads per process (default: cores / 3, at least 1; see above). */
  threads?: number;
  /** Pin every process's threads to these cores (`sharedllm node --cpus`), e.g. [0, 1]. */
  cpus?: number[];
  /** Tokens decoded per single-sequence run (default 64). */
  decodeTokens?: number;
  /** Steps per sequence in the concurrent runs (default 32). */
  concurrentSteps?: number;
}

const PROMPT = [1, 15043, 3186, 29892, 920, 526, 366, 29973];
const CONCURRENT = 8;
const N_CTX = 160;

/** Decode `n` greedy tokens after the prompt, one step per token; tokens/s of the decode and the tokens. */
async function decode(forward: Forward, n: number): Promise<{ tps: number; tokens: number[] }> {
  const seq = await forward.openSequence();
  let logits = (await forward.step([{ seq, tokens: Int32Array.from(PROMPT) }])).logits[0]![0]!;
  const tokens: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const t = argmax(logits);
    tokens.push(t);
    logits = (await forward.step([{ seq, tokens: Int32Array.of(t) }])).logits[0]![0]!;
  }
  const tps = n / ((performance.now() - t0) / 1000);
  await forward.closeSequence(seq);
  return { tps, tokens };
}

/**
 * Decode `n` greedy tokens on every setup at once, interleaved step by step (setup 1, setup 2, ..., then
 * the next token), so that a noisy host (this VM's speed drifts by 10-20% within minutes) slows every setup
 * alike. Per setup: each step's wall time (ms). The greedy tokens must agree across setups.
 */
async function interleaved(forwards: Forward[], n: number, rotate: number): Promise<number[][]> {
  const seqs = await Promise.all(forwards.map((f) => f.openSequence()));
  const logits = await Promise.all(forwards.map(async (f, i) => (await f.step([{ seq: seqs[i]!, tokens: Int32Array.from(PROMPT) }])).logits[0]![0]!));
  const ms = forwards.map(() => [] as number[]);
  for (let k = 0; k < n; k++) {
    const tokens = logits.map(argmax);
    if (new Set(tokens).size !== 1) throw new Error(`greedy tokens differ at step ${k}: ${tokens.join(', ')} (single node first)`);
    for (let j = 0; j < forwards.length; j++) {
      const i = (j + k + rotate) % forwards.length;
      const t0 = performance.now();
      logits[i] = (await forwards[i]!.step([{ seq: seqs[i]!, tokens: Int32Array.of(tokens[i]!) }])).logits[0]![0]!;
      ms[i]!.push(performance.now() - t0);
    }
  }
  await Promise.all(forwards.map((f, i) => f.closeSequence(seqs[i]!)));
  return ms;
}

/** `nSeq` sequences decoding `steps` tokens each at once through a Batcher; aggregate tokens/s. */
async function concurrent(forward: Forward, batcher: Batcher, nSeq: number, steps: number): Promise<number> {
  const seqs: number[] = [];
  for (let i = 0; i < nSeq; i++) seqs.push(await forward.openSequence());
  // Prefill every sequence first (untimed), each with a slightly different prompt.
  const first = await Promise.all(seqs.map((seq, i) => batcher.submit({ seq, tokens: Int32Array.from([...PROMPT, 100 + i]) })));
  const t0 = performance.now();
  await Promise.all(
    seqs.map(async (seq, i) => {
      let logits = first[i]![0]!;
      for (let k = 0; k < steps; k++) logits = (await batcher.submit({ seq, tokens: Int32Array.of(argmax(logits)) }))[0]!;
    }),
  );
  const tps = (nSeq * steps) / ((performance.now() - t0) / 1000);
  for (const s of seqs) await forward.closeSequence(s);
  return tps;
}

interface Setup {
  name: string;
  forward: Forward;
  batcher: Batcher;
  plan: string;
  primary?: Primary;
  close(): Promise<void>;
}

async function federationOf(model: string, nWorkers: number, threads: number, cpus: number[] | undefined): Promise<Setup> {
  const cluster = new Cluster({ prefix: 'sharedllm-bench-' });
  try {
    const coordinator = await cluster.coordinator({ relayPort: 0 });
    const hosts = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
    // Workers load their spans from their own copy of the file (no streaming: setup time only).
    await Promise.all(hosts.slice(0, nWorkers).map((host, i) => cluster.worker(`worker-${i}`, { coordinatorUrl: coordinator.url, host, threads, model, extra: cpus ? ['--cpus', cpus.join(',')] : [] })));
    const primary: Primary = await startPrimary({
      model, coordinatorUrl: coordinator.url, dataDir: `${cluster.dir}/primary`, cacheDir: `${cluster.dir}/cache-primary`,
      nSeqMax: CONCURRENT, nCtx: N_CTX, waitWorkers: nWorkers, waitMs: 120_000, logger: silentLogger, gpu: 'off', threads,
    });
    const plan = primary.plan().map((p) => `[${p.first},${p.last}) ${p.where === 'primary' ? 'primary' : p.where}`).join(', ');
    return {
      name: `primary + ${nWorkers} worker${nWorkers > 1 ? 's' : ''}`, forward: primary.pipeline, batcher: primary.batcher, plan, primary,
      close: async () => {
        await primary.close();
        await cluster.close();
      },
    };
  } catch (e) {
    process.stderr.write(`federation setup failed:\n${cluster.dump()}\n`);
    await cluster.close();
    throw e;
  }
}

export async function benchFederation(o: FederationBenchOptions): Promise<Record<string, number>> {
  const nDecode = o.decodeTokens ?? 64;
  const steps = o.concurrentSteps ?? 32;
  const threads = o.threads ?? Math.max(1, Math.floor(availableParallelism() / 3));
  // Ctrl-C during a run must not leave the worker processes behind.
  stopChildrenOnSignals();
  log(`\n## federation: TinyLlama-1.1B shape (22 layers), Q8_0, loopback, ${threads} thread${threads > 1 ? 's' : ''} per process ` +
    `(${availableParallelism()} cores; the single node gets the same)`);
  if (o.cpus) {
    getGgml({ gpu: 'off', threads, cpus: o.cpus });
    log(`threads pinned to cores ${o.cpus.join(',')} in every process (a persistent threadpool, threads sleep between graphs)`);
  }
  const model = cachedModel({ shape: 'tinyllama', nLayer: 22, type: 'Q8_0', seed: 1 });
  const { part } = await loadModelPart(model, { gpu: 'off', threads: threads, nCtx: N_CTX, nSeqMax: CONCURRENT });
  const single: Setup = { name: 'single node', forward: localForward(part), batcher: new Batcher(localForward(part)), plan: '[0,22) here', close: async () => part.dispose() };
  const setups: Setup[] = [single];
  try {
    setups.push(await federationOf(model, 1, threads, o.cpus));
    setups.push(await federationOf(model, 2, threads, o.cpus));
    for (const s of setups) log(`${s.name}: ${s.plan}`);

    // Warm-up (first graphs, page cache), and the greedy tokens must agree everywhere.
    const ref = (await decode(single.forward, 8)).tokens;
    for (const s of setups.slice(1)) {
      const got = (await decode(s.forward, 8)).tokens;
      if (got.join() !== ref.join()) throw new Error(`${s.name}: greedy tokens ${got} differ from the single node's ${ref}`);
    }

    const dec = setups.map(() => [] as number[]);
    const parts = setups.map(() => [] as TimingSummary[]);
    const agg1 = setups.map(() => [] as number[]);
    const aggN = setups.map(() => [] as number[]);
    for (let r = 0; r < o.runs; r++) {
      // Alternate the order so that warm-up and background load fall on every setup.
      const order = setups.map((_, i) => i);
      if (r % 2 === 1) order.reverse();
      for (const s of setups) s.primary?.pipeline.timings.clear();
      const ms = await interleaved(setups.map((s) => s.forward), nDecode, r);
      for (const [i, s] of setups.entries()) {
        dec[i]!.push(1000 / median(ms[i]!));
        if (s.primary) parts[i]!.push(s.primary.pipeline.timings.summary((t) => t.tokens === 1));
      }
      for (const i of order) {
        agg1[i]!.push(await concurrent(setups[i]!.forward, setups[i]!.batcher, 1, steps));
        aggN[i]!.push(await concurrent(setups[i]!.forward, setups[i]!.batcher, CONCURRENT, steps));
      }
      log(`run ${r + 1}/${o.runs}: decode ${setups.map((s, i) => `${s.name} ${fmt(dec[i]!.at(-1)!)}`).join(' | ')} tok/s; ` +
        `${CONCURRENT} seqs ${setups.map((s, i) => `${fmt(aggN[i]!.at(-1)!)}`).join(' / ')} tok/s`);
    }

    const d = dec.map(median);
    // Runs are paired (interleaved), so the ratio is the median of the runs' own ratios.
    const ratio = dec.map((x) => median(x.map((v, r) => v / dec[0]![r]!)));
    const a1 = agg1.map(median);
    const aN = aggN.map(median);
    const targets = ['', '>= 0.97', '>= 0.90'];
    log(table([
      [`decode tok/s (${nDecode} tokens x ${o.runs} runs, interleaved)`, 'tok/s', 'vs single', 'runs\' ratios', 'target'],
      ...setups.map((s, i) => [s.name, fmt(d[i]!), fmt(ratio[i]!, 3), i === 0 ? '' : dec[i]!.map((x, r) => fmt(x / dec[0]![r]!, 3)).join(' '), targets[i]!]),
    ]));
    log('where a decode step goes (medians, ms): the primary computes embeddings, its layers and the head; each worker its span; hops = waiting minus the workers\' compute');
    for (const [i, s] of setups.entries()) {
      if (parts[i]!.length === 0) continue;
      const m = (f: (t: TimingSummary) => number) => fmt(median(parts[i]!.map(f)), 1);
      const workers = Object.keys(parts[i]![0]!.workerMs).map((id, k) => `worker ${k + 1} ${m((t) => t.workerMs[id] ?? 0)}`);
      log(`  ${s.name}: step ${m((t) => t.totalMs)} = primary ${m((t) => t.localMs)} + ${workers.join(' + ')} + hops ${m((t) => t.hopsMs)}`);
    }
    log(`  single node: step ${fmt(1000 / d[0]!, 1)}`);
    log(table([
      [`aggregate tok/s (${steps} steps each)`, '1 seq', `${CONCURRENT} seqs`, 'ratio', 'target'],
      ...setups.map((s, i) => [s.name, fmt(a1[i]!), fmt(aN[i]!), fmt(aN[i]! / a1[i]!, 2), i === setups.length - 1 ? '>= 2' : '']),
    ]));
    return {
      'single.decode': d[0]!,
      'w1.decode': d[1]!, 'w1.ratio': ratio[1]!,
      'w2.decode': d[2]!, 'w2.ratio': ratio[2]!,
      'w2.aggregate1': a1[2]!, 'w2.aggregate8': aN[2]!, 'w2.aggregateRatio': aN[2]! / a1[2]!,
      'single.aggregateRatio': aN[0]! / a1[0]!,
    };
  } finally {
    for (const s of setups.reverse()) await s.close().catch((e: unknown) => log(`closing ${s.name}: ${(e as Error).message}`));
  }
}
