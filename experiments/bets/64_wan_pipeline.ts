// Bet 64 — pipeline inference over an emulated WAN.
//
// Hypothesis: over a WAN, a pipelined federation's time is its loopback compute plus one one-way latency
// and one serialisation per link traversal, and nothing else of note:
//   per-token (1 sequence)  ~= c1 + L x (RTT/2 + b1/bw)
//   step (8 sequences)      ~= c8 + L x (RTT/2 + 8 b1/bw)
//   prefill (512 tokens)    ~= p  + L x (RTT/2 + 512 b1/bw)
// where c1, c8, p are the same seed's loopback measurements (no emulator), L = workers + 1 = 3 traversals
// (primary -> w1 -> w2 -> primary), b1 = n_embd x 4 bytes (+256 bytes of framing), bw the link's bandwidth.
// "max rel err" below is the largest |measured - predicted| / predicted over the 8 WAN settings (RTT 0, 10,
// 50, 100 ms x 10, 100 Mbit/s), averaged over seeds.
//
// STRICT:       decode1 max rel err <= 0.15, decode8 max rel err <= 0.25, prefill max rel err <= 0.25,
//               and proxy overhead <= 3 ms per token.
// LENIENT:      decode1 max rel err <= 0.35, decode8 max rel err <= 0.50, prefill max rel err <= 0.50,
//               and proxy overhead <= 10 ms per token.
// CATASTROPHIC: any of the three max rel errs > 1.0 (off by more than 2x), or a failover that did not
//               finish its stream (failover_ok < 1).
// Controls: (a) the emulator at RTT 0 with no bandwidth cap against no emulator (proxy overhead: the
//           emulator must not be what we measure); (b) the loopback run of the same seed, same sizes, is the
//           compute baseline every prediction starts from; (c) failover on loopback against failover at
//           50 ms RTT.
// Seeds: 1, 2, 3 (prompt tokens and the order of the WAN settings; the model is fixed).
// Model: random-weight smollm2 shape (n_embd 960), 4 layers, Q8_0; primary holds no layers, 2 workers.
// Run: npm run bet -- 64
import { SHAPES } from '../../src/model/testing/make-model.ts';
import { mulberry32 } from '../../src/util/random.ts';
import { type SeedMeasurement, defineBet, isMain, runFromCli, testModel } from './_common.ts';
import { type BetFederation, federationStatus, startFederation } from './_federation.ts';
import { median, shuffled } from './_stats.ts';
import { timedCompletion } from './_stream.ts';
import { finish64 } from './_64_report.ts';

export interface Setting {
  rttMs: number;
  mbit: number;
}

export interface Sizes {
  nLayer: number;
  workers: number;
  grid: Setting[];
  /** Where the time breakdown and the WAN failover are measured. */
  focus: Setting;
  decodeTokens: number;
  concurrency: number;
  concurrentTokens: number;
  prefillTokens: number;
  /** One-token steps for the breakdown at the focus setting (the primary keeps medians of the last 256). */
  breakdownTokens: number;
  failoverTokens: number;
  killAfterTokens: number;
}

export const RTTS = [0, 10, 50, 100];
export const MBITS = [10, 100];
/** Token bucket depth of the emulated links: one MTU, so a frame pays its serialisation as on a real link. */
export const BURST_BYTES = 1500;
/** Framing bytes per step message (header, JSON routing), an estimate: negligible next to the hidden states. */
export const FRAME_BYTES = 256;

export interface Measured {
  decode1Ms: number;
  decode1Gaps: number[];
  decode8StepMs: number;
  decode8Tps: number;
  prefillMs: number;
}

export interface SettingResult extends Setting {
  measured: Measured;
  predicted: { decode1Ms: number; decode8StepMs: number; prefillMs: number };
  relErr: { decode1: number; decode8: number; prefill: number };
}

export interface Extra64 {
  loopback: Measured;
  control: Measured;
  settings: SettingResult[];
  breakdown: { totalMs: number; localMs: number; workerMs: number; hopsMs: number; steps: number };
  failover: { lan: { ok: boolean; recoveryMs: number; stallMs: number }; wan: { ok: boolean; recoveryMs: number; stallMs: number } };
  networkFlag: string[];
  plan: string;
}

export function promptIds(rng: () => number, n: number): number[] {
  return Array.from({ length: n }, () => 100 + Math.floor(rng() * 20_000));
}

export async function measureSetting(fed: BetFederation, sizes: Sizes, rng: () => number): Promise<Measured> {
  const url = fed.primary.url;
  const one = await timedCompletion(url, { model: fed.modelId, prompt: promptIds(rng, 8), max_tokens: sizes.decodeTokens });
  const many = await Promise.all(Array.from({ length: sizes.concurrency }, () => timedCompletion(url, { model: fed.modelId, prompt: promptIds(rng, 8), max_tokens: sizes.concurrentTokens })));
  const prefill = await timedCompletion(url, { model: fed.modelId, prompt: promptIds(rng, sizes.prefillTokens), max_tokens: 1 });
  const rates = many.map((s) => (s.arrivals.length - 1) / ((s.arrivals.at(-1)! - s.arrivals[0]!) / 1000)).filter(Number.isFinite);
  return {
    decode1Ms: median(one.gapsMs),
    decode1Gaps: one.gapsMs,
    decode8StepMs: median(many.map((s) => median(s.gapsMs))),
    decode8Tps: rates.reduce((a, b) => a + b, 0),
    prefillMs: prefill.ttftMs,
  };
}

function predict(base: Measured, s: Setting, traversals: number, nEmbd: number, concurrency: number, prefillTokens: number): SettingResult['predicted'] {
  const bytesPerMs = (s.mbit * 125_000) / 1000;
  const b1 = nEmbd * 4 + FRAME_BYTES;
  const hop = (bytes: number) => traversals * (s.rttMs / 2 + bytes / bytesPerMs);
  return {
    decode1Ms: base.decode1Ms + hop(b1),
    decode8StepMs: base.decode8StepMs + hop(concurrency * (b1 - FRAME_BYTES) + FRAME_BYTES),
    prefillMs: base.prefillMs + hop(prefillTokens * nEmbd * 4 + FRAME_BYTES),
  };
}

export async function failover(fed: BetFederation, sizes: Sizes, rng: () => number): Promise<{ ok: boolean; recoveryMs: number; stallMs: number }> {
  const victim = fed.workers.at(-1)!;
  try {
    const s = await timedCompletion(fed.primary.url, { model: fed.modelId, prompt: promptIds(rng, 8), max_tokens: sizes.failoverTokens }, (n) => {
      if (n === sizes.killAfterTokens) victim.proc.child.kill('SIGKILL');
    });
    const status = await federationStatus(fed.primary);
    const recovery = status.recoveries.at(-1);
    const stallMs = Math.max(...s.gapsMs) - median(s.gapsMs);
    return { ok: recovery !== undefined && s.tokens >= sizes.failoverTokens, recoveryMs: recovery?.ms ?? 0, stallMs };
  } catch {
    return { ok: false, recoveryMs: 0, stallMs: 0 };
  }
}

export const relErr = (measured: number, predicted: number) => Math.abs(measured - predicted) / predicted;

async function measure({ seed, sizes, log }: { seed: number; sizes: Sizes; log: (m: string) => void }): Promise<SeedMeasurement> {
  const model = testModel({ shape: 'smollm2', nLayer: sizes.nLayer, type: 'Q8_0', seed: 1 });
  const nEmbd = SHAPES.smollm2.nEmbd;
  const traversals = sizes.workers + 1;
  const rng = mulberry32(seed);
  const ctxSize = sizes.prefillTokens + Math.max(sizes.breakdownTokens, sizes.failoverTokens, sizes.decodeTokens) + 64;
  const spec = { model, workers: sizes.workers, parallel: sizes.concurrency, ctxSize, seed };

  log('loopback federation (no emulator)');
  const direct = await startFederation({ ...spec, wan: false });
  let loopback: Measured;
  let lan: Extra64['failover']['lan'];
  try {
    await timedCompletion(direct.primary.url, { model: direct.modelId, prompt: promptIds(rng, 8), max_tokens: 2 }); // warm-up
    loopback = await measureSetting(direct, sizes, rng);
    lan = await failover(direct, sizes, rng);
  } finally {
    await direct.close();
  }

  log('emulated WAN federation');
  const wan = await startFederation({ ...spec, wan: true });
  const settings: SettingResult[] = [];
  let control: Measured;
  let breakdown: Extra64['breakdown'];
  let wanFailover: Extra64['failover']['wan'];
  let plan: string;
  try {
    await timedCompletion(wan.primary.url, { model: wan.modelId, prompt: promptIds(rng, 8), max_tokens: 2 }); // warm-up
    if (wan.links.some((l) => l.stats().connections === 0)) throw new Error('a worker is not reached through its emulator: the bet would measure loopback');
    wan.shape({});
    control = await measureSetting(wan, sizes, rng);
    // The order of the settings is shuffled per seed, so a slow drift of the shared machine is not read as an effect.
    const order = shuffled(sizes.grid, seed);
    for (const s of order) {
      wan.shape({ latencyMs: s.rttMs / 2, bytesPerSecond: s.mbit * 125_000, burstBytes: BURST_BYTES });
      log(`RTT ${s.rttMs} ms, ${s.mbit} Mbit/s`);
      const measured = await measureSetting(wan, sizes, rng);
      const predicted = predict(loopback, s, traversals, nEmbd, sizes.concurrency, sizes.prefillTokens);
      settings.push({ ...s, measured, predicted, relErr: { decode1: relErr(measured.decode1Ms, predicted.decode1Ms), decode8: relErr(measured.decode8StepMs, predicted.decode8StepMs), prefill: relErr(measured.prefillMs, predicted.prefillMs) } });
    }
    const f = sizes.focus;
    wan.shape({ latencyMs: f.rttMs / 2, bytesPerSecond: f.mbit * 125_000, burstBytes: BURST_BYTES });
    log(`time breakdown at RTT ${f.rttMs} ms (${sizes.breakdownTokens} one-token steps)`);
    await timedCompletion(wan.primary.url, { model: wan.modelId, prompt: promptIds(rng, 8), max_tokens: sizes.breakdownTokens });
    const status = await federationStatus(wan.primary);
    const t = status.decodeTimings;
    breakdown = { totalMs: t?.totalMs ?? 0, localMs: t?.localMs ?? 0, workerMs: Object.values(t?.workerMs ?? {}).reduce((a, b) => a + b, 0), hopsMs: t?.hopsMs ?? 0, steps: t?.steps ?? 0 };
    plan = status.plan.map((p) => `[${p.first},${p.last}) ${p.where}`).join(', ');
    log('failover at the focus setting');
    wanFailover = await failover(wan, sizes, rng);
  } finally {
    await wan.close();
  }

  const focus = settings.find((s) => s.rttMs === sizes.focus.rttMs && s.mbit === sizes.focus.mbit)!;
  const extra: Extra64 = { loopback, control, settings, breakdown, failover: { lan, wan: wanFailover }, networkFlag: wan.networkFlag, plan };
  return {
    values: {
      decode1_max_rel_err: Math.max(...settings.map((s) => s.relErr.decode1)),
      decode8_max_rel_err: Math.max(...settings.map((s) => s.relErr.decode8)),
      prefill_max_rel_err: Math.max(...settings.map((s) => s.relErr.prefill)),
      proxy_overhead_ms: control.decode1Ms - loopback.decode1Ms,
      failover_ok: lan.ok && wanFailover.ok ? 1 : 0,
      decode1_ms_loopback: loopback.decode1Ms,
      decode1_ms_focus: focus.measured.decode1Ms,
      decode8_tps_loopback: loopback.decode8Tps,
      decode8_tps_focus: focus.measured.decode8Tps,
      prefill_ms_loopback: loopback.prefillMs,
      prefill_ms_focus: focus.measured.prefillMs,
      failover_ms_lan: lan.recoveryMs,
      failover_ms_wan: wanFailover.recoveryMs,
    },
    items: { decode1_ms_loopback: loopback.decode1Gaps, decode1_ms_focus: focus.measured.decode1Gaps },
    extra,
  };
}

const grid = RTTS.flatMap((rttMs) => MBITS.map((mbit) => ({ rttMs, mbit })));

export const bet = defineBet<Sizes>({
  id: '64',
  name: 'wan_pipeline',
  hypothesis: 'Over a WAN, pipelined inference costs its loopback compute plus one one-way latency and one serialisation per link traversal (per token, per 8-sequence step and per 512-token prefill), and nothing else of note.',
  notClaimed: 'Real WANs (loss, reordering, congestion control, asymmetric paths, jitter) are not emulated; the model is a random-weight 4-layer test model on a shared 2-core machine, so absolute tokens/s say nothing about real models or hardware.',
  run: 'npm run bet -- 64',
  seeds: [1, 2, 3],
  threads: 1,
  criteria: [
    { level: 'strict', quantity: 'decode1_max_rel_err', stat: 'mean', op: '<=', threshold: 0.15, words: 'decode1 max rel err <= 0.15' },
    { level: 'strict', quantity: 'decode8_max_rel_err', stat: 'mean', op: '<=', threshold: 0.25, words: 'decode8 max rel err <= 0.25' },
    { level: 'strict', quantity: 'prefill_max_rel_err', stat: 'mean', op: '<=', threshold: 0.25, words: 'prefill max rel err <= 0.25' },
    { level: 'strict', quantity: 'proxy_overhead_ms', stat: 'mean', op: '<=', threshold: 3, words: 'proxy overhead <= 3 ms per token' },
    { level: 'lenient', quantity: 'decode1_max_rel_err', stat: 'mean', op: '<=', threshold: 0.35, words: 'decode1 max rel err <= 0.35' },
    { level: 'lenient', quantity: 'decode8_max_rel_err', stat: 'mean', op: '<=', threshold: 0.5, words: 'decode8 max rel err <= 0.50' },
    { level: 'lenient', quantity: 'prefill_max_rel_err', stat: 'mean', op: '<=', threshold: 0.5, words: 'prefill max rel err <= 0.50' },
    { level: 'lenient', quantity: 'proxy_overhead_ms', stat: 'mean', op: '<=', threshold: 10, words: 'proxy overhead <= 10 ms per token' },
    { level: 'catastrophic', quantity: 'decode1_max_rel_err', stat: 'mean', op: '>', threshold: 1, words: 'decode1 max rel err > 1.0' },
    { level: 'catastrophic', quantity: 'decode8_max_rel_err', stat: 'mean', op: '>', threshold: 1, words: 'decode8 max rel err > 1.0' },
    { level: 'catastrophic', quantity: 'prefill_max_rel_err', stat: 'mean', op: '>', threshold: 1, words: 'prefill max rel err > 1.0' },
    { level: 'catastrophic', quantity: 'failover_ok', stat: 'mean', op: '<', threshold: 1, words: 'a failover did not finish its stream (failover_ok < 1)' },
  ],
  controls: [
    { name: 'proxy overhead', description: 'the emulator at RTT 0 without a bandwidth cap against no emulator: per-token time difference (decode, 1 sequence)' },
    { name: 'loopback baseline', description: 'the same seed on loopback without the emulator: c1, c8 and p of every prediction' },
    { name: 'failover on loopback', description: 'the last worker SIGKILLed mid-stream on loopback, against the same at the focus WAN setting' },
  ],
  quantities: {
    decode1_max_rel_err: { unit: 'ratio', description: 'largest |measured - predicted| / predicted per-token time, 1 sequence, over the WAN settings' },
    decode8_max_rel_err: { unit: 'ratio', description: 'largest relative error of the step time with 8 concurrent sequences, over the WAN settings' },
    prefill_max_rel_err: { unit: 'ratio', description: 'largest relative error of the 512-token prefill (time to first token), over the WAN settings' },
    proxy_overhead_ms: { unit: 'ms/token', description: 'control: per-token time through the emulator at RTT 0 (no cap) minus without it' },
    failover_ok: { unit: '0/1', description: 'both failovers (loopback and WAN) recovered and finished their stream' },
    decode1_ms_loopback: { unit: 'ms/token', description: 'per-token time, 1 sequence, loopback (median inter-token gap)' },
    decode1_ms_focus: { unit: 'ms/token', description: 'per-token time, 1 sequence, at the focus setting (50 ms RTT, 100 Mbit/s in full runs)' },
    decode8_tps_loopback: { unit: 'tokens/s', description: 'aggregate decode tokens/s of 8 concurrent sequences, loopback' },
    decode8_tps_focus: { unit: 'tokens/s', description: 'aggregate decode tokens/s of 8 concurrent sequences at the focus setting' },
    prefill_ms_loopback: { unit: 'ms', description: 'time to first token of a 512-token prompt, loopback' },
    prefill_ms_focus: { unit: 'ms', description: 'time to first token of a 512-token prompt at the focus setting' },
    failover_ms_lan: { unit: 'ms', description: "the primary's recovery time (ban, re-plan, replay) after the last worker dies, loopback" },
    failover_ms_wan: { unit: 'ms', description: "the primary's recovery time after the last worker dies, at the focus setting" },
  },
  sizes: {
    full: { nLayer: 4, workers: 2, grid, focus: { rttMs: 50, mbit: 100 }, decodeTokens: 32, concurrency: 8, concurrentTokens: 16, prefillTokens: 512, breakdownTokens: 260, failoverTokens: 16, killAfterTokens: 4 },
    smoke: { nLayer: 2, workers: 2, grid: [{ rttMs: 10, mbit: 100 }], focus: { rttMs: 10, mbit: 100 }, decodeTokens: 3, concurrency: 2, concurrentTokens: 3, prefillTokens: 16, breakdownTokens: 3, failoverTokens: 5, killAfterTokens: 2 },
  },
  measure,
  finish: finish64,
});

if (isMain(import.meta.url)) await runFromCli(bet);
