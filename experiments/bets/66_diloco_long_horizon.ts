// Bet 66 — long-horizon federated training: DiLoCo with real processes, restarts and all, for an hour.
//
// Hypothesis: 4 `sharedllm diloco join` processes training with a `diloco serve` process over the federation
// for at least 60 minutes (several hundred rounds of small H, f16 deltas), one participant SIGKILLed and
// restarted twice, (a) end within 5% of the held-out perplexity of the fault-free one-process simulation of
// the same rounds (the network, the faults and the restarts cost next to nothing), and (b) the gap to a
// single-process run of the same compute (one trainer, batch K x B, rounds x H steps: the same tokens) does not
// grow over the run: it is no larger at the end than at one third of the way.
// "fed", "sim", "sync": held-out loss of the three runs; ratios are perplexity ratios, exp(loss_a - loss_b).
//   sim_ratio    = exp(fed_final - sim_final)
//   sync_ratio   = exp(fed_final - sync_final)
//   gap_growth   = exp(fed_end - sync_end) - exp(fed_third - sync_third)   (at the end vs at round R/3)
//   restarts_ok  = 1 when the restarted participant had a delta accepted after each of its restarts
//
// STRICT:       sim_ratio <= 1.05, gap_growth <= 0 (the gap to the single process does not grow), restarts_ok >= 1.
// LENIENT:      sim_ratio <= 1.10, gap_growth <= 0.05, restarts_ok >= 1.
// CATASTROPHIC: sim_ratio > 1.5 (the federation trains far worse than its own simulation), or
//               restarts_ok < 1 in some seed (the job did not survive a restart; the mean reads below 1).
// Controls: (a) the one-process simulation (train/diloco/simulate.ts) with the same model, data, K, H,
//           rounds, outer step and compression, no faults: what the federation should reproduce; (b) the
//           single-process run of the same compute (synchronous: every step sees K x B rows): the reference
//           whose gap we follow over time. Its learning rate is the inner one, not tuned here (Bets 62 and
//           68 compare DiLoCo with synchronous training at tuned rates; this bet follows the gap's evolution).
// Seeds: 1, 2, 3 (initial weights; each participant's data order comes from its node id).
// Sizes (full): width 128, 2 layers, context 64, vocabulary 1024, batch 4 a participant, H = 10, outer
//        Nesterov lr 0.7, momentum 0.9, mean aggregation, --min-replicas 3, a 60 s round deadline; rounds
//        chosen by calibration (the measured step time) so the federated run lasts >= 60 minutes, at least 300;
//        corpus: Brown + Moby Dick + Austen, those fetched (scripts/fetch-corpora.ts; at least one is needed).
//        The participant is killed once R/3 and 2R/3 rounds are written, and back 10 s later (same identity).
//        Expect 3 to 4 hours a seed on 2 cores: the federated hour, then both controls in this process on one
//        thread (each about the federation's compute: K x rounds x H steps of B rows).
// Run: npm run bet -- 66      (smoke: npm run bet -- 66 --smoke, seconds: 2 participants, 6 rounds, H = 2)
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { Cluster, type Proc } from '../../src/cli/cluster.ts';
import { getGgml } from '../../src/ggml/runtime.ts';
import { BatchCursor } from '../../src/train/data.ts';
import { concatTokens, loadCorpus as loadCorpusFiles } from '../../src/train/corpus.ts';
import { defaultDilocoConfig } from '../../src/train/diloco/config.ts';
import { runSimulation } from '../../src/train/diloco/simulate.ts';
import { makeTinyJob } from '../../src/train/diloco/tiny-job.testing.ts';
import { loadGgufParams } from '../../src/train/gguf-model.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { type LooseGgufValue, tokenizerFromGgufMetadata } from '../../src/train/tokenizer-gguf.ts';
import { type MeasureContext, type SeedMeasurement, defineBet, isMain, loadCorpus, runFromCli } from './_common.ts';
import { INNER, yieldToSignals } from './_diloco.ts';
import type { Figure } from './_schema.ts';
import { bootstrapCI, mean } from './_stats.ts';

export interface Sizes66 {
  participants: number;
  /** Fixed rounds, or 0: calibrate so the federated run lasts `targetMinutes`, at least `minRounds`. */
  rounds: number;
  targetMinutes: number;
  minRounds: number;
  innerSteps: number;
  nEmbd: number;
  nLayer: number;
  ctx: number;
  vocab: number;
  corpus: 'prose' | 'corpora';
  minReplicas: number;
  roundTimeoutS: number;
  restartPauseS: number;
  evalTokens: number;
  /** Points of the loss curves (the controls are scored at these rounds). */
  curvePoints: number;
}

interface Extra66 {
  rounds: number;
  curveRounds: number[];
  fed: number[];
  sim: number[];
  sync: number[];
  trainMinutes: number;
  restartRounds: number[];
  dropped: number;
  refused: number;
  bytesPerParticipantRound: number;
  params: number;
}

const B = INNER.batch;
const OUTER = defaultDilocoConfig().outer;

/** Rounds for about `minutes` of federated training, from the measured step time (K processes on the cores). */
function calibrate(s: Sizes66, model: ReturnType<typeof loadGgufParams>['model'], params: ReturnType<typeof loadGgufParams>['params']): number {
  const ggml = getGgml({ gpu: 'off', threads: 1 });
  const t = new Trainer(ggml, model, { ...INNER, steps: 100, seed: 1 }, params);
  try {
    const rows = new Int32Array(B * s.ctx + 1).map((_, i) => i % model.nVocab);
    t.trainStep(rows.subarray(0, B * s.ctx), rows.subarray(1));
    const t0 = performance.now();
    for (let i = 0; i < 5; i++) t.trainStep(rows.subarray(0, B * s.ctx), rows.subarray(1));
    const stepMs = (performance.now() - t0) / 5;
    const perRoundMs = s.innerSteps * stepMs * Math.max(1, s.participants / Math.max(1, cpus().length)) + 300; // + eval, write, transfer
    return Math.max(s.minRounds, Math.ceil((s.targetMinutes * 60_000) / perRoundMs));
  } finally {
    t.dispose();
  }
}

async function jsonLine(proc: Proc, event: string, fields: Record<string, string | number>, timeoutMs: number): Promise<Record<string, unknown>> {
  const looks = [`"event":"${event}"`, ...Object.entries(fields).map(([k, v]) => `"${k}":${v}[,}]`)];
  const m = await proc.waitFor(new RegExp(`^${looks.map((l) => `(?=.*${l})`).join('')}.*$`, 'm'), timeoutMs);
  return JSON.parse(m[0]) as Record<string, unknown>;
}

async function measure66(ctx: MeasureContext<Sizes66>): Promise<SeedMeasurement> {
  const s = ctx.sizes;
  const cluster = new Cluster({ prefix: 'sharedllm-bet66-', readyTimeoutMs: 10 * 60_000 });
  try {
    const documents = s.corpus === 'corpora' ? corporaDocs() : undefined;
    const job = makeTinyJob(join(cluster.dir, 'job'), {
      participants: s.participants, nEmbd: s.nEmbd, nLayer: s.nLayer, nCtx: s.ctx, vocabSize: s.vocab, seed: ctx.seed,
      ...(documents ? { documents, heldOutDocs: Math.max(2, Math.round(documents.length * 0.05)) } : {}),
    });
    const base = loadGgufParams(getGgml({ gpu: 'off', threads: 1 }), job.init);
    const tokenizer = tokenizerFromGgufMetadata((k) => base.file.metadata.get(k) as LooseGgufValue | undefined);
    base.file.dispose();
    const model = { ...base.model, nCtx: s.ctx };
    const R = s.rounds > 0 ? s.rounds : calibrate(s, model, base.params);
    ctx.log(`${R} rounds of H = ${s.innerSteps}, ${s.participants} participants`);

    // The federated run: coordinator, server, K participants; participant K-1 restarted after R/3 and 2R/3.
    const coordinator = await cluster.coordinator();
    const out = join(cluster.dir, 'out');
    const t0 = performance.now();
    const serve = cluster.spawn('serve', [
      'diloco', 'serve', '--init', job.init, '--rounds', String(R), '--inner-steps', String(s.innerSteps), '--batch', String(B), '--ctx', String(s.ctx),
      '--lr', String(INNER.lr), '--warmup', String(INNER.warmup), '--outer-lr', String(OUTER.lr), '--outer-momentum', String(OUTER.momentum),
      '--min-replicas', String(s.minReplicas), '--round-timeout', String(s.roundTimeoutS), '--compress', 'f16', '--eval-corpus', job.heldOut,
      '--eval-tokens', String(s.evalTokens), '--out', out, '--coordinator-url', coordinator.url, '--rpc-port', '0', '--data-dir', join(cluster.dir, 'serve'),
      '--threads', '1', '--log-format', 'json',
    ]);
    await jsonLine(serve, 'diloco_serving', {}, 10 * 60_000);
    const joinArgs = (i: number) => ['diloco', 'join', '--coordinator-url', coordinator.url, '--corpus', job.shards[i]!, '--data-dir', join(cluster.dir, `join-${i}`), '--threads', '1', '--log-format', 'json'];
    const joins = job.shards.map((_, i) => cluster.spawn(`join-${i}`, joinArgs(i)));
    const restarted = s.participants - 1;
    const restartedId = String((await jsonLine(joins[restarted]!, 'lease_registered', {}, 10 * 60_000)).nodeId);
    // Round indices: killed once R/3 and 2R/3 rounds are written.
    const restartRounds = [Math.max(0, Math.floor(R / 3) - 1), Math.max(1, Math.floor((2 * R) / 3) - 1)];
    for (const [n, r] of restartRounds.entries()) {
      await jsonLine(serve, 'round_written', { round: r }, 24 * 3600_000);
      await joins[restarted]!.stop('SIGKILL');
      ctx.log(`participant ${restarted} killed after round ${r}`);
      await new Promise((resolve) => setTimeout(resolve, 1000 * s.restartPauseS));
      joins[restarted] = cluster.spawn(`join-${restarted}-again-${n + 1}`, joinArgs(restarted));
    }
    const exit = await serve.exited;
    if (exit.code !== 0) throw new Error(`diloco serve failed (${exit.code ?? exit.signal}):\n${serve.tail()}`);
    const trainMinutes = (performance.now() - t0) / 60_000;
    ctx.log(`federated run done: ${(trainMinutes * 60).toFixed(1)} s`);
    // Participants stop when they see the job done; one that (re)started too late to see it would keep looking
    // for the job: cluster.close() stops it after a short wait.
    await Promise.race([Promise.all(joins.map((j) => j.exited)), new Promise((resolve) => setTimeout(resolve, 10_000))]);
    interface Line { kind: string; round: number; heldOutLoss: number; accepted: string[]; dropped: string[]; refused: unknown[]; bytesInPerParticipant: number }
    const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Line);
    const start = lines.find((l) => l.kind === 'start')!;
    const rounds = lines.filter((l) => l.kind === 'round');
    const fedAt = (r: number) => (r === 0 ? start.heldOutLoss : rounds.find((l) => l.round === r - 1)!.heldOutLoss); // after r rounds
    const restartsOk = restartRounds.every((r) => rounds.some((l) => l.round > r && l.accepted.includes(restartedId))) ? 1 : 0;

    // The controls, in this process: the same train tokens (the shards in order), the same held-out tokens.
    await yieldToSignals();
    const ggml = getGgml({ gpu: 'off', threads: 1 });
    const encode = (paths: string[]) => concatTokens(loadCorpusFiles(paths).map((d) => tokenizer.encode(d.text)), tokenizer.eosId);
    const train = concatTokens(job.shards.map((p) => encode([p])));
    const heldOut = encode([job.heldOut]).subarray(0, s.evalTokens + 1);
    // Curve points every `every` rounds and at the end; the simulation is scored there only (evalEvery).
    const every = Math.max(1, Math.floor(R / s.curvePoints));
    const curveRounds = [...new Set([...Array.from({ length: Math.floor(R / every) }, (_, i) => (i + 1) * every), R])];
    const third = Math.round(R / 3);
    const marks = [...new Set([...curveRounds, third])].sort((a, b) => a - b);
    const sim = new Map<number, number>();
    runSimulation({
      ggml, model, inner: INNER, diloco: { ...defaultDilocoConfig(), compression: 'f16' }, train, heldOut, participants: s.participants, rounds: R,
      innerSteps: s.innerSteps, seed: ctx.seed, init: base.params, evalEvery: every,
      onRound: (m) => { if (m.heldOutLoss !== undefined && marks.includes(m.round + 1)) sim.set(m.round + 1, m.heldOutLoss); },
    });
    ctx.log('simulation done');
    const sync = syncRun(ggml, model, base.params, train, heldOut, { steps: R * s.innerSteps, batch: s.participants * B, seed: ctx.seed }, marks.map((r) => r * s.innerSteps));
    const at = (m: Map<number, number>, r: number) => m.get(r)!;
    const gap = (r: number) => Math.exp(fedAt(r) - sync.get(r * s.innerSteps)!);
    const extra: Extra66 = {
      rounds: R, curveRounds, fed: curveRounds.map(fedAt), sim: curveRounds.map((r) => at(sim, r)), sync: curveRounds.map((r) => sync.get(r * s.innerSteps)!),
      trainMinutes, restartRounds, dropped: rounds.reduce((n, l) => n + l.dropped.length, 0), refused: rounds.reduce((n, l) => n + l.refused.length, 0),
      bytesPerParticipantRound: mean(rounds.map((l) => l.bytesInPerParticipant)), params: [...base.params.values()].reduce((n, v) => n + v.length, 0),
    };
    return {
      values: {
        sim_ratio: Math.exp(fedAt(R) - at(sim, R)),
        sync_ratio: gap(R),
        gap_growth: gap(R) - gap(third),
        restarts_ok: restartsOk,
        train_minutes: trainMinutes,
        rounds: R,
      },
      extra,
    };
  } finally {
    await cluster.close();
  }
}

/** The single-process run of the same compute: one trainer, K x B rows a step; held-out loss at the given steps. */
function syncRun(ggml: ReturnType<typeof getGgml>, model: ReturnType<typeof loadGgufParams>['model'], init: Map<string, Float32Array>, train: Int32Array, heldOut: Int32Array, o: { steps: number; batch: number; seed: number }, marks: number[]): Map<number, number> {
  const t = new Trainer(ggml, model, { ...INNER, batch: o.batch, steps: o.steps, seed: o.seed }, init);
  const out = new Map<number, number>();
  try {
    const cursor = new BatchCursor(train, o.batch, model.nCtx, o.seed);
    for (let step = 1; step <= o.steps; step++) {
      const b = cursor.next();
      t.trainStep(b.input, b.target);
      if (!marks.includes(step)) continue;
      out.set(step, t.evalTokens(heldOut, o.batch).nll);
    }
    return out;
  } finally {
    t.dispose();
  }
}

/** Brown + Moby Dick + Austen, whichever are fetched (at least one must be). */
function corporaDocs(): { name: string; text: string }[] {
  const docs: { name: string; text: string }[] = [];
  for (const c of ['brown', 'moby-dick', 'austen'] as const) {
    try {
      docs.push(...loadCorpus(c).map((d) => ({ name: `${c}-${d.name}`, text: d.text })));
    } catch {
      // not fetched: the others
    }
  }
  if (docs.length === 0) throw new Error('Bet 66 needs a corpus: node --import tsx scripts/fetch-corpora.ts');
  return docs;
}

const band = (xs: number[]) => {
  const [lo, hi] = bootstrapCI(xs);
  return { mean: mean(xs), lo, hi };
};

export const bet = defineBet<Sizes66>({
  id: '66',
  name: 'diloco_long_horizon',
  hypothesis: 'Four diloco join processes and a diloco serve process training for >= 60 minutes over the federation, one participant killed and restarted twice, end within 5% of the held-out perplexity of the fault-free one-process simulation, and their gap to a single-process run of the same compute does not grow over the run.',
  notClaimed: 'A small model (about 1M parameters) on a few MB of English on one machine over loopback: nothing about real WAN links, large models, many participants, hostile participants (Bets 44 and 65), or DiLoCo against tuned synchronous training (Bets 62 and 68).',
  run: 'npm run bet -- 66',
  seeds: [1, 2, 3],
  threads: 1,
  criteria: [
    { level: 'strict', quantity: 'sim_ratio', stat: 'mean', op: '<=', threshold: 1.05, words: 'sim_ratio <= 1.05' },
    { level: 'strict', quantity: 'gap_growth', stat: 'mean', op: '<=', threshold: 0, words: 'gap_growth <= 0' },
    { level: 'strict', quantity: 'restarts_ok', stat: 'mean', op: '>=', threshold: 1, words: 'restarts_ok >= 1' },
    { level: 'lenient', quantity: 'sim_ratio', stat: 'mean', op: '<=', threshold: 1.1, words: 'sim_ratio <= 1.10' },
    { level: 'lenient', quantity: 'gap_growth', stat: 'mean', op: '<=', threshold: 0.05, words: 'gap_growth <= 0.05' },
    { level: 'lenient', quantity: 'restarts_ok', stat: 'mean', op: '>=', threshold: 1, words: 'restarts_ok >= 1' },
    { level: 'catastrophic', quantity: 'sim_ratio', stat: 'mean', op: '>', threshold: 1.5, words: 'sim_ratio > 1.5' },
    { level: 'catastrophic', quantity: 'restarts_ok', stat: 'mean', op: '<', threshold: 1, words: 'restarts_ok < 1 in some seed' },
  ],
  controls: [
    { name: 'one-process simulation', description: 'train/diloco/simulate.ts with the same model, data, K, H, rounds, outer step and f16 deltas, without faults: what the federated run should reproduce' },
    { name: 'single process, same compute', description: 'one trainer, K x B rows a step for rounds x H steps (the same tokens), inner learning rate: the reference whose gap is followed over the run' },
  ],
  quantities: {
    sim_ratio: { unit: 'ratio', description: 'final held-out perplexity, federated run / one-process simulation' },
    sync_ratio: { unit: 'ratio', description: 'final held-out perplexity, federated run / single process of the same compute' },
    gap_growth: { unit: 'ratio', description: 'sync ratio at the end minus sync ratio after R/3 rounds (negative: the gap shrinks)' },
    restarts_ok: { unit: 'flag', description: '1 when the restarted participant had a delta accepted after each restart' },
    train_minutes: { unit: 'minutes', description: 'wall time of the federated run (server start to its last round)' },
    rounds: { unit: 'rounds', description: 'rounds of the run (calibrated for the target minutes in full runs)' },
  },
  sizes: {
    full: { participants: 4, rounds: 0, targetMinutes: 60, minRounds: 300, innerSteps: 10, nEmbd: 128, nLayer: 2, ctx: 64, vocab: 1024, corpus: 'corpora', minReplicas: 3, roundTimeoutS: 60, restartPauseS: 10, evalTokens: 8192, curvePoints: 30 },
    smoke: { participants: 2, rounds: 6, targetMinutes: 0, minRounds: 6, innerSteps: 2, nEmbd: 32, nLayer: 1, ctx: 32, vocab: 320, corpus: 'prose', minReplicas: 2, roundTimeoutS: 2, restartPauseS: 0.2, evalTokens: 512, curvePoints: 3 },
  },
  measure: measure66,
  finish: (runs, sizes) => {
    const extras = runs.map((r) => r.measurement.extra as Extra66);
    const e0 = extras[0]!;
    const points: Extract<Figure, { kind: 'curve' }>['points'] = [];
    for (const [series, pick] of [[`federated (${sizes.participants} processes, restarts)`, (e: Extra66) => e.fed], ['one-process simulation', (e: Extra66) => e.sim], ['single process, same compute', (e: Extra66) => e.sync]] as const) {
      e0.curveRounds.forEach((r, i) => points.push({ series, x: r, ...band(extras.map((e) => pick(e)[i]!)) }));
    }
    return {
      details: { rounds: extras.map((e) => e.rounds), trainMinutes: extras.map((e) => e.trainMinutes), restartRounds: e0.restartRounds, dropped: extras.map((e) => e.dropped), refused: extras.map((e) => e.refused), bytesPerParticipantRound: e0.bytesPerParticipantRound, params: e0.params },
      figures: [{ kind: 'curve', id: '66_curves', title: 'Held-out loss over the run: federated with restarts, its simulation, the single process of the same compute', xLabel: 'round', yLabel: 'held-out loss (nats/token)', points }],
      notes: [
        `Federated: ${runs.length} seed(s), ${e0.rounds} rounds of H = ${sizes.innerSteps} inner steps, ${sizes.participants} participants, f16 deltas of ${Math.round(e0.bytesPerParticipantRound)} bytes a participant a round for ${e0.params} parameters; one participant killed (SIGKILL) once rounds ${e0.restartRounds.map((r) => r + 1).join(' and ')} were written, back ${sizes.restartPauseS} s later.`,
        'Wall times depend on the machine and its load; the losses do not depend on timing except through which participants made each round (dropped and restarted ones), which is the point of the bet.',
      ],
    };
  },
});

if (isMain(import.meta.url)) await runFromCli(bet);
