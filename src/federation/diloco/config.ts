// Timers of DiLoCo jobs over the data plane, as named presets (config.ts style): one comment per setting.
//
//   const net = { ...lanDilocoNet(), pollWaitMs: 2_000 };
//
// The round deadline (--round-timeout) is the job's, not here: it bounds a round, these bound each call.

export interface DilocoNetConfig {
  /** A participant's long poll for the next round: the server answers as soon as one opens, else after this. */
  pollWaitMs: number;
  /** Deadline of a control call (job, model, commit), on top of the long poll's own wait. */
  callTimeoutMs: number;
  /** Deadline of one tensor (weights down, delta up): a big tensor over a slow uplink. */
  tensorTimeoutMs: number;
  /** Connecting to the server (connect + authenticated HELLO + PING). */
  connectTimeoutMs: number;
  /** After a failed call or a lost server, a participant waits this long before trying again... */
  retryBaseMs: number;
  /** ...doubling up to this (the server may be restarting). */
  retryMaxMs: number;
  /** A participant that finds no server for its job for this long gives up (exit 1, with the reason). */
  jobLostMs: number;
  /** The server checks the round deadline this often. */
  tickMs: number;
  /** After the last round the server keeps answering 'done' this long, so that participants stop cleanly. */
  doneLingerMs: number;
  /** The server's cached list of members (who may connect): served this long before a refresh... */
  membershipTtlMs: number;
  /** ...and refreshed at most this often for a caller not in it (a participant that registered a moment ago). */
  membershipMinRefreshMs: number;
}

/** Machines on one network: retries within a second, a job lost after two minutes. */
export function lanDilocoNet(): DilocoNetConfig {
  return {
    pollWaitMs: 10_000,
    callTimeoutMs: 30_000,
    tensorTimeoutMs: 5 * 60_000,
    connectTimeoutMs: 5_000,
    retryBaseMs: 500,
    retryMaxMs: 10_000,
    jobLostMs: 2 * 60_000,
    tickMs: 200,
    doneLingerMs: 5_000,
    membershipTtlMs: 5_000,
    membershipMinRefreshMs: 500,
  };
}

/** Participants across the internet: slower calls, a restarting server waited for longer. */
export function wanDilocoNet(): DilocoNetConfig {
  return { ...lanDilocoNet(), callTimeoutMs: 60_000, tensorTimeoutMs: 30 * 60_000, connectTimeoutMs: 10_000, retryMaxMs: 30_000, jobLostMs: 10 * 60_000 };
}

/** Fast timers for tests in one process or on loopback. */
export function localTestDilocoNet(): DilocoNetConfig {
  return { ...lanDilocoNet(), pollWaitMs: 1_000, callTimeoutMs: 10_000, tensorTimeoutMs: 30_000, retryBaseMs: 100, retryMaxMs: 1_000, jobLostMs: 30_000, tickMs: 50, doneLingerMs: 3_000, membershipTtlMs: 1_000, membershipMinRefreshMs: 100 };
}
