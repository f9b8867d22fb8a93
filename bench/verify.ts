// Verified workers (src/federation/node/verify.ts): honest noise and false alarms, detection of lying workers,
// and the decode cost of verification. In-process clusters (primary + 2 workers + a spare over loopback TCP,
// 1 thread each) on random-weight test models; nothing here asserts a timing.
//
//   npx tsx bench/verify.ts honest [--steps 10000] [--seed 11]   false alarms, largest honest difference per model
//       [--workers-from DIR]  workers as processes run from DIR: a copy of the repository whose node_modules
//                             offers another ggml CPU variant (e.g. only libggml-cpu-haswell.so: AVX2), so
//                             the primary's re-run uses other kernels than the workers' decode
//   npx tsx bench/verify.ts detect [--runs 10]        liars (every step; 1 step in 10) of several sizes
//   npx tsx bench/verify.ts cost [--rounds 5] [--model 1]   decode CPU time: no verifier, fingerprints only, rate 1
//   npx tsx bench/verify.ts all
//
// Results, 2026-11-27, 2-core AMD EPYC VM (AVX-512, no AMX; zen4 ggml variant), busy with other jobs:
// - honest, same CPU: 10,000 steps over 4 models, 0 false alarms; Q8_0/Q4_0 re-runs bit-identical, F16 2.9e-3.
// - honest, AVX2 worker processes (haswell variant) vs AVX-512 verifier: 12,500 steps over 5 models, 0 false
//   alarms; largest difference 6e-3 x RMS on the trained sharedllm-tiny, 0.11 on random-weight Q4_0 (tolerance 0.25).
// - liars (rate 1): noise >= 0.25 x RMS caught in every run, every step or 1 step in 10, first or last hop,
//   24-25 steps after the first lie (the first flush of 32 tokens), 0.15-0.85 s; 0.1 x RMS caught at the
//   first hop only (amplified by the next hop, blamed on the right one through its input fingerprint).
// - decode CPU per step, rate 1 vs none: +16..24%; fingerprints alone within the A/A noise (+-5%), 2-25 us
//   per call; so the default rate 0.02 costs ~0.5% (+ the fingerprints, ~0.3%).
//
// Detection runs with rate 1 (every sequence verified): with `--verify-rate r`, a lie in a sequence is seen
// with probability r, so the expected number of sequences a liar serves before it is caught is 1/r.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { getGgml } from '../src/ggml/runtime.ts';
import { type VerifyCluster, startVerifyCluster } from '../src/federation/node/testing/verify-cluster.ts';
import { defaultVerifyConfig } from '../src/federation/node/verify.ts';
import { stepFingerprint } from '../src/federation/node/fingerprint.ts';
import { cachedModel } from '../src/model/testing/cached-model.ts';
import { type MakeModelOptions, SHAPES } from '../src/model/testing/make-model.ts';
import { mulberry32 } from '../src/util/random.ts';

const MODELS: { name: string; model: MakeModelOptions | string; spans: [number, number][] }[] = [
  { name: 'sharedllm-tiny-256 Q8_0 (trained)', model: 'models/sharedllm-tiny.gguf', spans: [[1, 3], [3, 6]] },
  { name: 'smollm2-960 Q8_0', model: { shape: { ...SHAPES.smollm2, tiedEmbeddings: false }, nLayer: 4, type: 'Q8_0', seed: 1 }, spans: [[1, 2], [2, 4]] },
  { name: 'qwen2-896 Q4_0', model: { shape: 'qwen2', nLayer: 4, type: 'Q4_0', seed: 2 }, spans: [[1, 3], [3, 4]] },
  { name: 'smollm2-960 F16', model: { shape: { ...SHAPES.smollm2, tiedEmbeddings: false }, nLayer: 3, type: 'F16', seed: 3 }, spans: [[1, 2], [2, 3]] },
  { name: 'tinyllama-2048 Q4_0', model: { shape: 'tinyllama', nLayer: 3, type: 'Q4_0', seed: 4 }, spans: [[0, 1], [1, 3]] },
];

const args = process.argv.slice(2);
const flag = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const prompt = (rnd: () => number, n: number) => Array.from({ length: n }, () => 1 + Math.floor(rnd() * 800));

/** Start worker processes from another copy of the repository; their ports and ggml CPU variant. */
async function externalWorkers(dir: string, n: number): Promise<{ workers: { nodeId: string; addr: string }[]; variant: string; stop: () => void }> {
  const models = MODELS.map((m) => (typeof m.model === 'string' ? resolve(m.model) : cachedModel(m.model)));
  const procs: ChildProcess[] = [];
  const workers: { nodeId: string; addr: string }[] = [];
  let variant = '';
  for (let i = 0; i < n; i++) {
    const nodeId = `worker-${i + 1}`;
    const p = spawn(process.execPath, ['--import', 'tsx', 'bench/verify-worker.ts', nodeId, ...models], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] });
    procs.push(p);
    const line = await new Promise<string>((ok, fail) => {
      p.stdout!.once('data', (d: Buffer) => ok(d.toString()));
      p.once('exit', (code) => fail(new Error(`worker exited with ${code}`)));
    });
    const [, port, v] = line.trim().split(' ');
    variant = v ?? '';
    workers.push({ nodeId, addr: `127.0.0.1:${port}` });
  }
  const stop = () => procs.forEach((p) => p.kill());
  process.once('exit', stop);
  return { workers, variant, stop };
}

async function honest(totalSteps: number, workersFrom: string | undefined): Promise<void> {
  const ext = workersFrom ? await externalWorkers(workersFrom, 3) : undefined;
  const primaryVariant = readFileSync('/proc/self/maps', 'utf8').match(/libggml-cpu-[a-z0-9_]+\.so/)?.[0];
  console.log(`\n## Honest workers: false alarms and honest differences (${totalSteps} steps in all)`);
  console.log(`workers: ${ext ? `processes with ${ext.variant}` : 'in-process'}; primary (verifier): ${primaryVariant}`);
  console.log('model | steps | hop-steps checked | tokens recomputed | false alarms | largest honest difference (x RMS) | tolerance');
  const perModel = Math.ceil(totalSteps / MODELS.length);
  for (const m of MODELS) {
    const path = typeof m.model === 'string' ? resolve(m.model) : cachedModel(m.model);
    const c = await startVerifyCluster({ model: path, spans: m.spans, verify: { rate: 1 }, nCtx: 128, ...(ext ? { external: ext.workers } : {}) });
    const rnd = mulberry32(flag('seed', 11));
    for (let i = 0; c.steps < perModel; i++) {
      // Alternate one sequence per step and two stepped together (groups of a batched step).
      const n = Math.min(100, perModel - c.steps);
      if (i % 2 === 0) await c.generate(prompt(rnd, 8), n);
      else await c.generateBatch([prompt(rnd, 8), prompt(rnd, 13)], n);
    }
    await c.verifier.idle();
    const s = c.verifier.stats;
    console.log(`${m.name} | ${c.steps} | ${s.checked} | ${s.tokens} | ${s.mismatches} | ${s.maxPassedError.toExponential(2)} | ${c.verifier.config.tolerance}`);
    if (s.lastIncident) console.log(`  false alarm: ${s.lastIncident.evidence}`);
    await c.close();
  }
  ext?.stop();
}

async function detect(runs: number): Promise<void> {
  console.log(`\n## Lying workers (rate 1, flush every ${defaultVerifyConfig().flushTokens} tokens; ${runs} runs each)`);
  console.log('schedule | noise (x RMS) | liar | detected | steps from first lie to ban (median, max) | ms (median) | answers changed by the lie');
  const m = MODELS[1]!;
  const model = cachedModel(m.model as MakeModelOptions);
  const schedules: [string, (s: number) => boolean][] = [['every step', () => true], ['1 step in 10', (s) => s % 10 === 0]];
  for (const [label, on] of schedules) {
    for (const size of [1, 0.25, 0.1]) {
      for (const liar of [0, 1]) {
        let detected = 0;
        let changed = 0;
        const steps: number[] = [];
        const ms: number[] = [];
        for (let r = 0; r < runs; r++) {
          const c: VerifyCluster = await startVerifyCluster({ model, spans: m.spans, verify: { rate: 1 }, nCtx: 128 });
          const rnd = mulberry32(100 + r);
          const p = prompt(rnd, 8);
          const reference = await c.generate(p, 48); // honest
          await c.verifier.idle();
          const w = c.workers[liar]!;
          w.lie = { on, size };
          const stepsAtLie = c.steps;
          let caughtAt: { step: number; at: number } | undefined;
          const original = c.verifier.onMismatch;
          c.verifier.onMismatch = (nodeId, ev) => {
            caughtAt ??= { step: c.steps, at: performance.now() };
            original(nodeId, ev);
          };
          for (let k = 0; k < 4 && !caughtAt; k++) {
            const out = await c.generate(p, 48);
            if (out.join() !== reference.join()) changed++;
            await c.verifier.idle();
          }
          if (caughtAt && w.firstLie) {
            detected++;
            steps.push(caughtAt.step - Math.max(w.firstLie.step, stepsAtLie));
            ms.push(caughtAt.at - w.firstLie.at);
          }
          await c.close();
        }
        const med = (v: number[]) => (v.length ? [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]! : Number.NaN);
        console.log(`${label} | ${size} | hop ${liar} | ${detected}/${runs} | ${med(steps)}, ${Math.max(...steps, 0)} | ${med(ms).toFixed(0)} | ${changed}`);
      }
    }
  }
}

async function cost(rounds: number): Promise<void> {
  // CPU time of this process (primary, workers and verifier all run here), not wall time: other jobs on the
  // machine slow the wall clock of every setup differently.
  console.log(`\n## Decode cost (${rounds} rounds, 64-token sequences, setups interleaved; CPU ms per decode step, median)`);
  const m = MODELS[flag('model', 1)]!;
  const model = typeof m.model === 'string' ? resolve(m.model) : cachedModel(m.model);
  console.log(`model: ${m.name}, spans ${JSON.stringify(m.spans)}`);
  const setups = [
    { name: 'no verifier', verify: undefined },
    { name: 'no verifier (A/A control)', verify: undefined },
    { name: 'fingerprints only (rate 0)', verify: { rate: 0 } },
    { name: 'rate 1 (every sequence)', verify: { rate: 1 } },
  ];
  const clusters = [];
  for (const s of setups) clusters.push(await startVerifyCluster({ model, spans: m.spans, verify: s.verify ?? { rate: 0 }, nCtx: 128, ...(s.verify ? {} : { noVerifier: true }) }));
  const times: number[][] = setups.map(() => []);
  const rnd = mulberry32(5);
  for (let r = 0; r < rounds; r++) {
    const p = prompt(rnd, 8);
    // Rotate the order each round: garbage one setup leaves is collected during the next one's steps.
    for (let k = 0; k < clusters.length; k++) {
      const i = (k + r) % clusters.length;
      const c = clusters[i]!;
      const t0 = process.cpuUsage();
      await c.generate(p, 64);
      await c.verifier.idle(); // the verification's time counts, even though it runs after the steps
      const d = process.cpuUsage(t0);
      times[i]!.push((d.user + d.system) / 1000 / 64);
    }
  }
  const med = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
  const base = med(times[0]!);
  for (const [i, s] of setups.entries()) console.log(`${s.name} | ${med(times[i]!).toFixed(2)} ms/step | ${(((med(times[i]!) - base) / base) * 100).toFixed(1)}%`);
  const fpCost = (med(times[2]!) - base) / base;
  const fullCost = (med(times[3]!) - med(times[2]!)) / base;
  const rate = defaultVerifyConfig().rate;
  console.log(`decode cost at the default rate ${rate}: fingerprints ${(fpCost * 100).toFixed(1)}% + ${rate} x ${(fullCost * 100).toFixed(1)}% = ${((fpCost + rate * fullCost) * 100).toFixed(2)}%`);
  // The fingerprints alone, without the noise of whole decode steps: one decode token per call, a fresh salt
  // each time (a worker makes two per step: what it received, what it sends).
  for (const nEmbd of [960, 2048, 4096]) {
    const h = Float32Array.from({ length: nEmbd }, (_, i) => Math.sin(i));
    const t0 = performance.now();
    const reps = 5000;
    for (let r = 0; r < reps; r++) stepFingerprint(h, nEmbd, [{ n: 1 }], r);
    console.log(`stepFingerprint of one decode token, n_embd ${nEmbd}: ${(((performance.now() - t0) / reps) * 1000).toFixed(2)} us`);
  }
  for (const c of clusters) await c.close();
}

const cpu = cpus()[0]?.model ?? 'unknown CPU';
console.log(`# bench/verify.ts on ${cpu}, ggml CPU backend ${getGgml({ gpu: 'off', threads: 1 }).cpu.description}, ${new Date().toISOString()}`);
const mode = args[0] ?? 'all';
const from = args.indexOf('--workers-from');
if (mode === 'honest' || mode === 'all') await honest(flag('steps', 10_000), from >= 0 ? args[from + 1] : undefined);
if (mode === 'detect' || mode === 'all') await detect(flag('runs', 10));
if (mode === 'cost' || mode === 'all') await cost(flag('rounds', 5));
