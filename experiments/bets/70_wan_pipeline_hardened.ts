// Bet 70 (first registered as 65, then 67: 65 and 66 are reserved for the federated-training issue's bets;
// renumbered again to 70 because the file's first commit as 67 also held a result, so its criteria did not
// visibly precede it; criteria unchanged; its runs as 67 gave fail twice, and it is run again from this
// commit) — pipeline inference over an emulated WAN, hardened replacement of Bet 64.
//
// What Bet 64 got wrong: its predictions started from one loopback measurement per seed, taken in another
// cluster at another moment; on the shared 2-core machine that compute baseline swung 7.5-29 ms per token
// between seeds, its proxy-overhead control came out negative (-10 ms: it measured noise, not the proxy),
// and relative errors at RTT 0 divided noise by a few ms. Its catastrophic verdict says nothing about the
// network model. This bet asks the same question of the network term alone, with the noise controlled.
//
// Hypothesis: over a WAN, a pipelined step costs its compute plus, per link traversal, one one-way latency
// and one serialisation, and nothing else of note. Network term of a setting = (time at the setting) -
// (mean of the unshaped-emulator runs just before and just after it, same cluster: its compute baseline);
// predicted network term = L x (RTT/2 + bytes/bw), L = 3 traversals, bytes = n_embd x 4 per token (+256).
// "net rel err" = max over settings of |measured net - predicted net| / predicted net, mean over seeds;
// for decode (1 and 8 sequences) over the settings with RTT >= 10 ms (below that the predicted term is
// a few ms, inside the machine's noise); for the 512-token prefill over all 8 settings.
//
// STRICT:       decode1 net rel err <= 0.15, decode8 net rel err <= 0.25, prefill net rel err <= 0.15,
//               null control <= 3 ms, proxy overhead <= 2 ms per token.
// LENIENT:      decode1 net rel err <= 0.35, decode8 net rel err <= 0.50, prefill net rel err <= 0.30,
//               null control <= 8 ms, proxy overhead <= 5 ms per token.
// CATASTROPHIC: any of the three net rel errs > 1.0, or a failover that did not finish its stream.
// Controls: (a) null: mean |difference| between consecutive unshaped baselines (decode, 1 sequence) must
//           be small, else the noise hides a 10 ms RTT; (b) proxy overhead: emulator unshaped against no
//           emulator, measured alternately 3 times with both federations up (not across moments);
//           (c) failover on loopback against failover at 50 ms RTT, 100 Mbit/s.
// Seeds: 1, 2, 3 (prompt tokens, order of the settings; the model is fixed).
// Model: random-weight smollm2 shape (n_embd 960), 4 layers, Q8_0; primary holds no layers, 2 workers.
// Retracts: Bet 64 (its design, whatever this bet's verdict).
// Run: npm run bet -- 70
import { SHAPES } from '../../src/model/testing/make-model.ts';
import { mulberry32 } from '../../src/util/random.ts';
import { type SeedMeasurement, defineBet, isMain, runFromCli, testModel } from './_common.ts';
import { type BetFederation, federationStatus, startFederation } from './_federation.ts';
import { mean, shuffled } from './_stats.ts';
import { timedCompletion } from './_stream.ts';
import { finish64 } from './_64_report.ts';
import { BURST_BYTES, FRAME_BYTES, MBITS, type Measured, RTTS, type Setting, type SettingResult, type Sizes as Sizes64, failover, measureSetting, promptIds, relErr, type Extra64 } from './64_wan_pipeline.ts';

export interface Sizes extends Sizes64 {
  /** Alternations of direct and emulated (unshaped) runs for the proxy-overhead control. */
  proxyReps: number;
}

const shapeOf = (s: Setting) => ({ latencyMs: s.rttMs / 2, bytesPerSecond: s.mbit * 125_000, burstBytes: BURST_BYTES });
const UNSHAPED = { latencyMs: 0, bytesPerSecond: 0, burstBytes: BURST_BYTES };
const avg = (a: Measured, b: Measured): Measured => ({
  decode1Ms: (a.decode1Ms + b.decode1Ms) / 2, decode1Gaps: [...a.decode1Gaps, ...b.decode1Gaps], decode8StepMs: (a.decode8StepMs + b.decode8StepMs) / 2,
  decode8Tps: (a.decode8Tps + b.decode8Tps) / 2, prefillMs: (a.prefillMs + b.prefillMs) / 2,
});

async function measure({ seed, sizes, log }: { seed: number; sizes: Sizes; log: (m: string) => void }): Promise<SeedMeasurement> {
  const model = testModel({ shape: 'smollm2', nLayer: sizes.nLayer, type: 'Q8_0', seed: 1 });
  const nEmbd = SHAPES.smollm2.nEmbd;
  const L = sizes.workers + 1;
  const rng = mulberry32(seed);
  const ctxSize = sizes.prefillTokens + Math.max(sizes.breakdownTokens, sizes.failoverTokens, sizes.decodeTokens) + 64;
  const spec = { model, workers: sizes.workers, parallel: sizes.concurrency, ctxSize, seed };
  const warm = (fed: BetFederation) => timedCompletion(fed.primary.url, { model: fed.modelId, prompt: promptIds(rng, 8), max_tokens: 2 });

  log('both federations up: loopback and emulated');
  const direct = await startFederation({ ...spec, wan: false });
  let wan: BetFederation | undefined;
  try {
    wan = await startFederation({ ...spec, wan: true });
    // Warm-up: one whole discarded measurement on each (the first decode, 8-sequence batch and long prefill
    // of a fresh process are slower; Bet 64's loopback runs, always measured first, paid for it).
    for (const fed of [direct, wan]) {
      await warm(fed);
      await measureSetting(fed, sizes, rng);
    }
    if (wan.links.some((l) => l.stats().connections === 0)) throw new Error('a worker is not reached through its emulator: the bet would measure loopback');
    wan.shape(UNSHAPED);
    const directRuns: Measured[] = [];
    const proxyRuns: Measured[] = [];
    for (let r = 0; r < sizes.proxyReps; r++) {
      // Alternate which goes first, so a trend over the reps does not favour one side.
      const pair = r % 2 === 0 ? [direct, wan] : [wan, direct];
      for (const fed of pair) (fed === direct ? directRuns : proxyRuns).push(await measureSetting(fed, sizes, rng));
    }
    const loopback = directRuns.reduce(avg);
    const control = proxyRuns.reduce(avg);
    const proxyOverhead = mean(proxyRuns.map((p, i) => p.decode1Ms - directRuns[i]!.decode1Ms));
    log('failover on loopback');
    const lan = await failover(direct, sizes, rng);
    await direct.close();

    log('grid, each setting bracketed by unshaped baselines');
    const baselines: Measured[] = [await measureSetting(wan, sizes, rng)];
    const settings: SettingResult[] = [];
    for (const s of shuffled(sizes.grid, seed)) {
      log(`RTT ${s.rttMs} ms, ${s.mbit} Mbit/s`);
      wan.shape(shapeOf(s));
      const measured = await measureSetting(wan, sizes, rng);
      wan.shape(UNSHAPED);
      baselines.push(await measureSetting(wan, sizes, rng));
      const base = avg(baselines.at(-2)!, baselines.at(-1)!);
      const perMs = (s.mbit * 125_000) / 1000;
      const net = (bytes: number) => L * (s.rttMs / 2 + bytes / perMs);
      const predictedNet = { decode1Ms: net(nEmbd * 4 + FRAME_BYTES), decode8StepMs: net(sizes.concurrency * nEmbd * 4 + FRAME_BYTES), prefillMs: net(sizes.prefillTokens * nEmbd * 4 + FRAME_BYTES) };
      settings.push({
        ...s, measured,
        predicted: { decode1Ms: base.decode1Ms + predictedNet.decode1Ms, decode8StepMs: base.decode8StepMs + predictedNet.decode8StepMs, prefillMs: base.prefillMs + predictedNet.prefillMs },
        relErr: {
          decode1: relErr(measured.decode1Ms - base.decode1Ms, predictedNet.decode1Ms),
          decode8: relErr(measured.decode8StepMs - base.decode8StepMs, predictedNet.decode8StepMs),
          prefill: relErr(measured.prefillMs - base.prefillMs, predictedNet.prefillMs),
        },
      });
    }
    const nullMs = mean(baselines.slice(1).map((b, i) => Math.abs(b.decode1Ms - baselines[i]!.decode1Ms)));

    const f = sizes.focus;
    wan.shape(shapeOf(f));
    log(`time breakdown at RTT ${f.rttMs} ms (${sizes.breakdownTokens} one-token steps)`);
    await timedCompletion(wan.primary.url, { model: wan.modelId, prompt: promptIds(rng, 8), max_tokens: sizes.breakdownTokens });
    const status = await federationStatus(wan.primary);
    const t = status.decodeTimings;
    const breakdown = { totalMs: t?.totalMs ?? 0, localMs: t?.localMs ?? 0, workerMs: Object.values(t?.workerMs ?? {}).reduce((a, b) => a + b, 0), hopsMs: t?.hopsMs ?? 0, steps: t?.steps ?? 0 };
    const plan = status.plan.map((p) => `[${p.first},${p.last}) ${p.where}`).join(', ');
    log('failover at the focus setting');
    const wanFailover = await failover(wan, sizes, rng);

    const decodeSettings = settings.filter((s) => s.rttMs >= 10);
    const focus = settings.find((s) => s.rttMs === f.rttMs && s.mbit === f.mbit)!;
    const extra: Extra64 = { loopback, control, settings, breakdown, failover: { lan, wan: wanFailover }, networkFlag: wan.networkFlag, plan };
    return {
      values: {
        decode1_net_rel_err: Math.max(...decodeSettings.map((s) => s.relErr.decode1)),
        decode8_net_rel_err: Math.max(...decodeSettings.map((s) => s.relErr.decode8)),
        prefill_net_rel_err: Math.max(...settings.map((s) => s.relErr.prefill)),
        null_decode1_ms: nullMs,
        proxy_overhead_ms: proxyOverhead,
        failover_ok: lan.ok && wanFailover.ok ? 1 : 0,
        decode1_ms_loopback: loopback.decode1Ms,
        decode1_ms_focus: focus.measured.decode1Ms,
        hops_ms_focus: breakdown.hopsMs,
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
  } finally {
    await direct.close();
    await wan?.close();
  }
}

const grid = RTTS.flatMap((rttMs) => MBITS.map((mbit) => ({ rttMs, mbit })));
const ANCHOR = 'every prediction starts from the unshaped-emulator runs just before and just after its setting, in the same federation (the predicted curves are that baseline plus the predicted network term).';

export const bet = defineBet<Sizes>({
  id: '70',
  name: 'wan_pipeline_hardened',
  hypothesis: 'Over a WAN, a pipelined step costs its compute plus one one-way latency and one serialisation per link traversal (per token, per 8-sequence step, per 512-token prefill); measured against a bracketing same-federation baseline, with a null control.',
  notClaimed: 'Real WANs (loss, reordering, congestion control, asymmetric paths, jitter) are not emulated; decode below 10 ms RTT is not judged (noise); a random-weight 4-layer test model on a shared 2-core machine says nothing about absolute speed of real models.',
  retracts: ['64'],
  run: 'npm run bet -- 70',
  seeds: [1, 2, 3],
  threads: 1,
  criteria: [
    { level: 'strict', quantity: 'decode1_net_rel_err', stat: 'mean', op: '<=', threshold: 0.15, words: 'decode1 net rel err <= 0.15' },
    { level: 'strict', quantity: 'decode8_net_rel_err', stat: 'mean', op: '<=', threshold: 0.25, words: 'decode8 net rel err <= 0.25' },
    { level: 'strict', quantity: 'prefill_net_rel_err', stat: 'mean', op: '<=', threshold: 0.15, words: 'prefill net rel err <= 0.15' },
    { level: 'strict', quantity: 'null_decode1_ms', stat: 'mean', op: '<=', threshold: 3, words: 'null control <= 3 ms' },
    { level: 'strict', quantity: 'proxy_overhead_ms', stat: 'mean', op: '<=', threshold: 2, words: 'proxy overhead <= 2 ms per token' },
    { level: 'lenient', quantity: 'decode1_net_rel_err', stat: 'mean', op: '<=', threshold: 0.35, words: 'decode1 net rel err <= 0.35' },
    { level: 'lenient', quantity: 'decode8_net_rel_err', stat: 'mean', op: '<=', threshold: 0.5, words: 'decode8 net rel err <= 0.50' },
    { level: 'lenient', quantity: 'prefill_net_rel_err', stat: 'mean', op: '<=', threshold: 0.3, words: 'prefill net rel err <= 0.30' },
    { level: 'lenient', quantity: 'null_decode1_ms', stat: 'mean', op: '<=', threshold: 8, words: 'null control <= 8 ms' },
    { level: 'lenient', quantity: 'proxy_overhead_ms', stat: 'mean', op: '<=', threshold: 5, words: 'proxy overhead <= 5 ms per token' },
    { level: 'catastrophic', quantity: 'decode1_net_rel_err', stat: 'mean', op: '>', threshold: 1, words: 'decode1 net rel err > 1.0' },
    { level: 'catastrophic', quantity: 'decode8_net_rel_err', stat: 'mean', op: '>', threshold: 1, words: 'decode8 net rel err > 1.0' },
    { level: 'catastrophic', quantity: 'prefill_net_rel_err', stat: 'mean', op: '>', threshold: 1, words: 'prefill net rel err > 1.0' },
    { level: 'catastrophic', quantity: 'failover_ok', stat: 'mean', op: '<', threshold: 1, words: 'a failover did not finish its stream (failover_ok < 1)' },
  ],
  controls: [
    { name: 'null', description: 'mean |difference| between consecutive unshaped baselines (decode, 1 sequence): the noise floor the network term is read against' },
    { name: 'proxy overhead', description: 'emulator unshaped against no emulator, alternated 3 times with both federations up (decode, 1 sequence)' },
    { name: 'failover on loopback', description: 'the last worker SIGKILLed mid-stream on loopback, against the same at 50 ms RTT, 100 Mbit/s' },
  ],
  quantities: {
    decode1_net_rel_err: { unit: 'ratio', description: 'largest |measured - predicted| / predicted network term per token, 1 sequence, settings with RTT >= 10 ms' },
    decode8_net_rel_err: { unit: 'ratio', description: 'the same for the step time of 8 concurrent sequences' },
    prefill_net_rel_err: { unit: 'ratio', description: 'the same for the 512-token prefill (time to first token), all settings' },
    null_decode1_ms: { unit: 'ms/token', description: 'null control: mean |difference| between consecutive unshaped baselines' },
    proxy_overhead_ms: { unit: 'ms/token', description: 'control: per-token time through the unshaped emulator minus without it (alternated)' },
    failover_ok: { unit: '0/1', description: 'both failovers (loopback and WAN) recovered and finished their stream' },
    decode1_ms_loopback: { unit: 'ms/token', description: 'per-token time, 1 sequence, loopback (no emulator)' },
    decode1_ms_focus: { unit: 'ms/token', description: 'per-token time, 1 sequence, at 50 ms RTT, 100 Mbit/s (full runs)' },
    hops_ms_focus: { unit: 'ms/step', description: "the primary's median remote wall time minus the workers' compute at the focus setting (what the hops cost)" },
    decode8_tps_loopback: { unit: 'tokens/s', description: 'aggregate decode tokens/s of 8 concurrent sequences, loopback' },
    decode8_tps_focus: { unit: 'tokens/s', description: 'aggregate decode tokens/s of 8 concurrent sequences at the focus setting' },
    prefill_ms_loopback: { unit: 'ms', description: 'time to first token of a 512-token prompt, loopback' },
    prefill_ms_focus: { unit: 'ms', description: 'time to first token of a 512-token prompt at the focus setting' },
    failover_ms_lan: { unit: 'ms', description: "the primary's recovery time after the last worker dies, loopback" },
    failover_ms_wan: { unit: 'ms', description: "the primary's recovery time after the last worker dies, at the focus setting" },
  },
  sizes: {
    full: { nLayer: 4, workers: 2, grid, focus: { rttMs: 50, mbit: 100 }, decodeTokens: 32, concurrency: 8, concurrentTokens: 16, prefillTokens: 512, breakdownTokens: 260, failoverTokens: 16, killAfterTokens: 4, proxyReps: 3 },
    smoke: { nLayer: 2, workers: 2, grid: [{ rttMs: 10, mbit: 100 }], focus: { rttMs: 10, mbit: 100 }, decodeTokens: 3, concurrency: 2, concurrentTokens: 3, prefillTokens: 16, breakdownTokens: 3, failoverTokens: 5, killAfterTokens: 2, proxyReps: 1 },
  },
  measure,
  finish: (runs, sizes, smoke) => finish64(runs, sizes, smoke, '70', ANCHOR),
});

if (isMain(import.meta.url)) await runFromCli(bet);
