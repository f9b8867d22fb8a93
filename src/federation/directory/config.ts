/**
 * Limits and timers of the specialist directory and its gossip, as named presets (like federation/config.ts).
 * Start from a preset and override single fields: `{ ...lanDirectoryConfig(), fanout: 3 }`.
 */
export interface DirectoryConfig {
  /** Entries one replica holds at most (manifests, tombstones and serving records together). */
  maxEntries: number;
  /** Manifests and tombstones one publisher key may hold; its next new model id is refused. */
  maxPerPublisher: number;
  /** Serving records one model may list; beyond it new nodes are refused until others withdraw. */
  maxServingPerModel: number;
  /** Peers contacted per gossip round. */
  fanout: number;
  /** Entries sent in one gossip answer or push (the rest follow in the next rounds). */
  maxEntriesPerMessage: number;
  /** Token bucket per peer against a digest storm: burst size ... */
  peerBurst: number;
  /** ... and sustained messages per second from one peer. */
  peerRatePerSecond: number;
  /** How often a node runs a gossip round. */
  roundIntervalMs: number;
  /** Deadline of one exchange with a peer (connect, HELLO, answer); a peer that misses it fails this round. */
  exchangeTimeoutMs: number;
  /** How often a node re-reads the coordinator's node list (its gossip peers); kept while it is down. */
  membershipRefreshMs: number;
}

/** Nodes on one network: a round a second, three peers each. */
export function lanDirectoryConfig(): DirectoryConfig {
  return {
    maxEntries: 10_000,
    maxPerPublisher: 64,
    maxServingPerModel: 256,
    fanout: 3,
    maxEntriesPerMessage: 128,
    peerBurst: 10, // a few rounds' worth of exchange and push from one peer
    peerRatePerSecond: 4, // fanout 3 peers choosing us at most every round, plus their pushes
    roundIntervalMs: 1_000,
    exchangeTimeoutMs: 5_000,
    membershipRefreshMs: 5_000, // a new node is gossiped with within seconds of registering
  };
}

/** Nodes across the internet: slower rounds, the same caps. */
export function wanDirectoryConfig(): DirectoryConfig {
  return { ...lanDirectoryConfig(), fanout: 2, roundIntervalMs: 5_000, peerRatePerSecond: 1, peerBurst: 5, exchangeTimeoutMs: 15_000, membershipRefreshMs: 30_000 };
}

/** Tests: rounds are driven by hand, rate limits out of the way unless a test sets them. */
export function testDirectoryConfig(): DirectoryConfig {
  return { ...lanDirectoryConfig(), roundIntervalMs: 20, peerBurst: 1_000, peerRatePerSecond: 1_000 };
}

/**
 * `base` with rounds every `roundIntervalMs` (`sharedllm node --gossip-interval`): the per-peer rate limit
 * scales with the rounds (a peer choosing us every round must not be refused), the node list is re-read at
 * least every 5 rounds, an exchange gets at most 5 rounds.
 */
export function withRoundInterval(base: DirectoryConfig, roundIntervalMs: number): DirectoryConfig {
  const scale = base.roundIntervalMs / roundIntervalMs;
  return {
    ...base,
    roundIntervalMs,
    peerRatePerSecond: Math.max(base.peerRatePerSecond, base.peerRatePerSecond * scale),
    membershipRefreshMs: Math.min(base.membershipRefreshMs, 5 * roundIntervalMs),
    exchangeTimeoutMs: Math.min(base.exchangeTimeoutMs, Math.max(1_000, 5 * roundIntervalMs)),
  };
}
