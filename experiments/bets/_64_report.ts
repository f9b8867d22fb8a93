// Bet 64's tables and figures from every seed's measurements (the bet file holds the hypothesis and the
// measuring; this file only arranges numbers for the result and the rollup).
import type { SeedMeasurement } from './_common.ts';
import type { Figure } from './_schema.ts';
import { bootstrapCI, mean } from './_stats.ts';
import type { Extra64, Sizes } from './64_wan_pipeline.ts';

function band(values: number[]): { mean: number; lo: number; hi: number } {
  const [lo, hi] = bootstrapCI(values);
  return { mean: mean(values), lo, hi };
}

const label = (s: { rttMs: number; mbit: number }) => `${s.rttMs} ms / ${s.mbit} Mbit`;

/** How the predictions were anchored, for the notes (Bet 64: the same seed's loopback run). */
const ANCHOR_64 = "every prediction starts from the same seed's loopback run to cancel most of it.";

/** `id` names the figures (a hardened replacement reuses this report under its own number). */
export function finish64(runs: { seed: number; measurement: SeedMeasurement }[], sizes: Sizes, smoke: boolean, id = '64', anchor = ANCHOR_64): { details: Record<string, unknown>; figures: Figure[]; notes: string[] } {
  const extras = runs.map((r) => r.measurement.extra as Extra64);
  const at = (rttMs: number, mbit: number) => extras.map((e) => e.settings.find((s) => s.rttMs === rttMs && s.mbit === mbit)!);

  const table = sizes.grid.map((g) => {
    const rows = at(g.rttMs, g.mbit);
    const m = (f: (r: (typeof rows)[number]) => number) => band(rows.map(f));
    return {
      setting: label(g),
      rttMs: g.rttMs, mbit: g.mbit,
      decode1TokensPerS: m((r) => 1000 / r.measured.decode1Ms),
      decode1Ms: m((r) => r.measured.decode1Ms), decode1PredictedMs: m((r) => r.predicted.decode1Ms), decode1RelErr: m((r) => r.relErr.decode1),
      decode8TokensPerS: m((r) => r.measured.decode8Tps),
      decode8StepMs: m((r) => r.measured.decode8StepMs), decode8PredictedMs: m((r) => r.predicted.decode8StepMs), decode8RelErr: m((r) => r.relErr.decode8),
      prefillMs: m((r) => r.measured.prefillMs), prefillPredictedMs: m((r) => r.predicted.prefillMs), prefillRelErr: m((r) => r.relErr.prefill),
    };
  });
  const base = (f: (e: Extra64) => number) => band(extras.map(f));
  const reference = {
    loopback: { decode1TokensPerS: base((e) => 1000 / e.loopback.decode1Ms), decode8TokensPerS: base((e) => e.loopback.decode8Tps), prefillMs: base((e) => e.loopback.prefillMs) },
    emulatorAtRtt0: { decode1TokensPerS: base((e) => 1000 / e.control.decode1Ms), decode8TokensPerS: base((e) => e.control.decode8Tps), prefillMs: base((e) => e.control.prefillMs) },
  };
  const breakdown = {
    setting: label(sizes.focus),
    stepMs: base((e) => e.breakdown.totalMs),
    primaryComputeMs: base((e) => e.breakdown.localMs),
    workersComputeMs: base((e) => e.breakdown.workerMs),
    hopsMs: base((e) => e.breakdown.hopsMs),
    steps: extras.map((e) => e.breakdown.steps),
  };
  const failover = {
    loopback: { recoveryMs: base((e) => e.failover.lan.recoveryMs), stallMs: base((e) => e.failover.lan.stallMs), ok: extras.map((e) => e.failover.lan.ok) },
    wan: { setting: label(sizes.focus), recoveryMs: base((e) => e.failover.wan.recoveryMs), stallMs: base((e) => e.failover.wan.stallMs), ok: extras.map((e) => e.failover.wan.ok) },
  };

  const curve = (id: string, title: string, yLabel: string, measured: (r: Extra64['settings'][number]) => number, predicted: (r: Extra64['settings'][number]) => number): Figure => ({
    kind: 'curve', id, title, xLabel: 'RTT (ms)', yLabel,
    points: sizes.grid.flatMap((g) => {
      const rows = at(g.rttMs, g.mbit);
      return [
        { series: `measured, ${g.mbit} Mbit/s`, x: g.rttMs, ...band(rows.map(measured)) },
        { series: `predicted, ${g.mbit} Mbit/s`, x: g.rttMs, ...band(rows.map(predicted)) },
      ];
    }),
  });
  const figures: Figure[] = [
    curve(`${id}_decode1_ms`, `Bet ${id}: per-token time, 1 sequence (mean, 95% CI over seeds)`, 'ms per token', (r) => r.measured.decode1Ms, (r) => r.predicted.decode1Ms),
    curve(`${id}_decode8_step_ms`, `Bet ${id}: step time, 8 concurrent sequences`, 'ms per step', (r) => r.measured.decode8StepMs, (r) => r.predicted.decode8StepMs),
    curve(`${id}_prefill_ms`, `Bet ${id}: time to first token, 512-token prompt`, 'ms', (r) => r.measured.prefillMs, (r) => r.predicted.prefillMs),
    {
      kind: 'bars', id: `${id}_throughput`, title: `Bet ${id}: decode tokens/s (mean, 95% CI over seeds)`, yLabel: 'tokens/s',
      bars: [
        { label: 'loopback', group: '1 sequence', ...reference.loopback.decode1TokensPerS },
        { label: 'loopback', group: '8 sequences', ...reference.loopback.decode8TokensPerS },
        { label: 'emulator, RTT 0', group: '1 sequence', ...reference.emulatorAtRtt0.decode1TokensPerS },
        { label: 'emulator, RTT 0', group: '8 sequences', ...reference.emulatorAtRtt0.decode8TokensPerS },
        ...table.flatMap((t) => [
          { label: t.setting, group: '1 sequence', ...t.decode1TokensPerS },
          { label: t.setting, group: '8 sequences', ...t.decode8TokensPerS },
        ]),
      ],
    },
    {
      kind: 'heatmap', id: `${id}_rel_err`, title: `Bet ${id}: |measured - predicted| / predicted (mean over seeds)`, xLabel: 'quantity', yLabel: 'setting',
      cells: table.flatMap((t) => [
        { x: 'decode, 1 seq', y: t.setting, value: t.decode1RelErr.mean },
        { x: 'decode, 8 seq', y: t.setting, value: t.decode8RelErr.mean },
        { x: 'prefill 512', y: t.setting, value: t.prefillRelErr.mean },
      ]),
    },
    {
      kind: 'bars', id: `${id}_breakdown`, title: `Bet ${id}: where a decode step's time goes at ${label(sizes.focus)} (medians, mean over seeds)`, yLabel: 'ms',
      bars: [
        { label: 'whole step', group: 'time', ...breakdown.stepMs },
        { label: 'primary compute', group: 'time', ...breakdown.primaryComputeMs },
        { label: 'workers compute', group: 'time', ...breakdown.workersComputeMs },
        { label: 'hops (network)', group: 'time', ...breakdown.hopsMs },
      ],
    },
    {
      kind: 'bars', id: `${id}_failover`, title: `Bet ${id}: failover after SIGKILL of the last worker`, yLabel: 'ms',
      bars: [
        { label: 'loopback', group: 'recovery (primary)', ...failover.loopback.recoveryMs },
        { label: 'loopback', group: 'stall seen by client', ...failover.loopback.stallMs },
        { label: label(sizes.focus), group: 'recovery (primary)', ...failover.wan.recoveryMs },
        { label: label(sizes.focus), group: 'stall seen by client', ...failover.wan.stallMs },
      ],
    },
  ];
  const flag = extras[0]?.networkFlag ?? [];
  const notes = [
    `The machine is a shared 2-core VM: other work ran on it during this bet, so compute times are noisy; ${anchor}`,
    flag.length > 0 ? `Nodes ran with ${flag.join(' ')} (the data-plane WAN preset).` : 'This checkout\'s `sharedllm node` has no --network flag (the data-plane WAN preset lives on another branch): nodes ran with their default (LAN) data-plane timers. The coordinator uses lanConfig(); wanConfig() is not wired to a CLI flag here.',
    'Links are emulated per worker (each worker behind its own userspace proxy, one-way latency RTT/2 each direction, a token bucket of 1500 bytes per direction, no jitter); the return hop from the last worker to the primary crosses that worker\'s link backwards.',
    `Layer plan on the WAN federation: ${extras[0]?.plan ?? 'unknown'}.`,
    ...(smoke ? ['Smoke run: tiny sizes, one seed, one setting; the numbers mean nothing.'] : []),
  ];
  return { details: { settings: table, reference, breakdown, failover }, figures, notes };
}
