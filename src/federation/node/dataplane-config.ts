/**
 * Timers, retries and bans of the primary's data plane (its calls to workers), as named presets in the style
 * of config.ts (memberlist's DefaultLANConfig). Start from a preset and override single fields:
 *
 *   const dataPlane = { ...lanDataPlane(), callTimeoutMs: 8_000 };
 *   validateDataPlane(dataPlane);
 *
 * How they combine: every call to a worker (open, step, close, truncate) has a deadline; a worker that
 * misses it, answers with an error or a malformed result, or whose connection closes is banned
 * (`banBaseMs`, doubling with each ban up to `banMaxMs`), its span re-planned onto another worker (or this
 * node) and every open sequence replayed there; then the call is tried again, at most `maxFailovers` times.
 *
 * A step's deadline scales with its work: `stepFloorMs + stepSlowdown x (the measured time of recent steps
 * of that size) + stepPerTokenMs x tokens`. The measured part is what lets a 10-token decode step fail over
 * within seconds while a 4,000-token prefill on a slow worker is given the minutes it needs.
 */

export interface DataPlaneConfig {
  /** Deadline of one control call to a worker (open_seq, close_seq, truncate_seq, info). Covers a round
   *  trip plus a worker busy with a step in front of it. */
  callTimeoutMs: number;
  /** Deadline of load_span: reading (or streaming, then hashing) a span of a big model can take minutes. */
  loadSpanTimeoutMs: number;
  /** Probing a worker's candidate addresses (connect + HELLO + PING) when connecting to it. */
  connectTimeoutMs: number;
  /** Step deadline, fixed part: the least any step gets (scheduling noise, GC pauses, one slow hop). */
  stepFloorMs: number;
  /** Step deadline, measured part: this many times the median wall time of recent steps of that size. */
  stepSlowdown: number;
  /** Step deadline, per-token part: an allowance per token for steps of a size not measured yet. */
  stepPerTokenMs: number;
  /** Steps of a size class measured before the measured part is trusted. */
  stepMinSamples: number;
  /** After a step missed its deadline without naming a culprit, each hop gets this long to answer a PING;
   *  the first that does not is the one that failed. */
  pingTimeoutMs: number;
  /** Failovers one call may go through before it fails to the user (each re-plans one failed worker). */
  maxFailovers: number;
  /** First ban of a worker that failed (its connection closed, it timed out, or it answered malformed). */
  banBaseMs: number;
  /** Each further ban of the same worker lasts this many times the previous one... */
  banFactor: number;
  /** ...up to this cap (Petals' blacklist: a flaky worker is retried less and less often, never forever). */
  banMaxMs: number;
  /** A worker that has not failed for this long starts again from `banBaseMs`. */
  banForgetMs: number;
  /** While waiting for the first workers at startup, ask the coordinator this often. */
  workerPollMs: number;
}

/** Defaults for machines on one local network: fail over within seconds. */
export function lanDataPlane(): DataPlaneConfig {
  return {
    callTimeoutMs: 4_000,
    loadSpanTimeoutMs: 30 * 60_000, // a big span from a slow disk, or streamed and hashed
    connectTimeoutMs: 3_000,
    stepFloorMs: 4_000,
    stepSlowdown: 8,
    stepPerTokenMs: 20, // a 4,096-token prefill not measured yet: 4 s + 82 s
    stepMinSamples: 5,
    pingTimeoutMs: 2_000,
    maxFailovers: 3,
    banBaseMs: 30_000,
    banFactor: 2,
    banMaxMs: 30 * 60_000,
    banForgetMs: 60 * 60_000,
    workerPollMs: 500,
  };
}

/** Defaults for workers across the internet: round trips of hundreds of ms, loss, slow uplinks. */
export function wanDataPlane(): DataPlaneConfig {
  return {
    callTimeoutMs: 15_000,
    loadSpanTimeoutMs: 2 * 60 * 60_000, // streaming a span over a home uplink
    connectTimeoutMs: 8_000,
    stepFloorMs: 15_000,
    stepSlowdown: 8,
    stepPerTokenMs: 60, // hidden states of a long prefill cross a slow link
    stepMinSamples: 5,
    pingTimeoutMs: 6_000,
    maxFailovers: 3,
    banBaseMs: 60_000,
    banFactor: 2,
    banMaxMs: 60 * 60_000,
    banForgetMs: 6 * 60 * 60_000,
    workerPollMs: 1_000,
  };
}

/** Fast timers for tests in one process on loopback: a silent worker is replaced within about a second. */
export function localTestDataPlane(): DataPlaneConfig {
  return {
    callTimeoutMs: 1_000,
    loadSpanTimeoutMs: 60_000,
    connectTimeoutMs: 1_000,
    stepFloorMs: 1_000,
    stepSlowdown: 8,
    stepPerTokenMs: 10,
    stepMinSamples: 5,
    pingTimeoutMs: 300,
    maxFailovers: 3,
    banBaseMs: 5_000,
    banFactor: 2,
    banMaxMs: 60_000,
    banForgetMs: 10 * 60_000,
    workerPollMs: 50,
  };
}

export const NETWORKS = ['lan', 'wan'] as const;
export type Network = (typeof NETWORKS)[number];

/** The preset for `--network lan|wan`. */
export function dataPlaneFor(network: Network): DataPlaneConfig {
  return network === 'wan' ? wanDataPlane() : lanDataPlane();
}

export class DataPlaneConfigError extends Error {
  constructor(readonly field: keyof DataPlaneConfig, readonly expected: string, readonly actual: string) {
    super(`data-plane config: ${field} must be ${expected}, got ${actual}`);
    this.name = 'DataPlaneConfigError';
  }
}

/** Throws DataPlaneConfigError for a setting that cannot work (a ban that shrinks, a zero deadline). */
export function validateDataPlane(config: DataPlaneConfig): DataPlaneConfig {
  const positive: (keyof DataPlaneConfig)[] = ['callTimeoutMs', 'loadSpanTimeoutMs', 'connectTimeoutMs', 'stepFloorMs', 'pingTimeoutMs', 'banBaseMs', 'workerPollMs'];
  for (const k of positive) if (!(config[k] > 0)) throw new DataPlaneConfigError(k, '> 0', String(config[k]));
  for (const k of ['stepSlowdown', 'stepPerTokenMs', 'stepMinSamples', 'maxFailovers'] as const) {
    if (!(config[k] >= 0)) throw new DataPlaneConfigError(k, '>= 0', String(config[k]));
  }
  if (!(config.banFactor >= 1)) throw new DataPlaneConfigError('banFactor', '>= 1 (bans must not shrink)', String(config.banFactor));
  if (!(config.banMaxMs >= config.banBaseMs)) throw new DataPlaneConfigError('banMaxMs', `>= banBaseMs (${config.banBaseMs})`, String(config.banMaxMs));
  return config;
}
