/**
 * Timers and limits of the federation's control plane, as named presets (memberlist's DefaultLANConfig
 * style). Start from a preset and override single fields:
 *
 *   const config = { ...lanConfig(), heartbeatIntervalMs: 1_000 };
 *   validateConfig(config);
 *
 * How the membership timers combine: a node heartbeats every `heartbeatIntervalMs`; after
 * `suspectTimeoutMs` without one it becomes suspect; after a further `deadTimeoutMs` still suspect it is
 * dead; `reapTimeoutMs` after it became dead or left, the coordinator forgets it.
 */

export interface FederationConfig {
  /** How often a node renews its lease with a heartbeat. The coordinator's value wins: it is sent
   *  back in the registration response. */
  heartbeatIntervalMs: number;
  /** Silence after the last heartbeat before an alive node is marked suspect. Should cover a few
   *  missed heartbeats (3x the interval or more) so one lost packet does not flap the node. */
  suspectTimeoutMs: number;
  /** How long a node stays suspect (a window to refute with a heartbeat) before it is declared dead.
   *  After a coordinator restart every known node starts suspect and gets this long to check in. */
  deadTimeoutMs: number;
  /** How long dead and left nodes stay listed (for the dashboard and for debugging) before they are
   *  removed from the store. A node id held by a dead or left node can be taken by another key. */
  reapTimeoutMs: number;
  /** How often the coordinator sweeps its node table to apply the timers above. */
  sweepIntervalMs: number;
  /** Client side: give up on one HTTP request to the coordinator after this long. */
  requestTimeoutMs: number;
  /** Client side: first delay before retrying a failed registration or heartbeat; doubles each
   *  consecutive failure. */
  retryBaseDelayMs: number;
  /** Client side: cap on the retry delay. */
  retryMaxDelayMs: number;
  /** Largest request body the coordinator accepts (413 above it). */
  maxBodyBytes: number;
  /** Largest node registration the coordinator accepts (413 naming this setting above it). The schema's
   *  own bounds (256 models, 16 candidates, an 8 KiB certificate) come to about 100 KiB of ASCII. */
  maxRegistrationBytes: number;
  /** Largest manifest the coordinator accepts (413 naming this setting above it). Manifests are stored
   *  and served to everyone; a real one is well under 1 KiB. */
  maxManifestBytes: number;
}

/** Defaults for machines on one local network: fast failure detection, short timeouts. */
export function lanConfig(): FederationConfig {
  return {
    heartbeatIntervalMs: 2_000,
    suspectTimeoutMs: 6_000, // three missed heartbeats
    deadTimeoutMs: 10_000,
    reapTimeoutMs: 60 * 60_000, // one hour
    sweepIntervalMs: 500,
    requestTimeoutMs: 5_000,
    retryBaseDelayMs: 250,
    retryMaxDelayMs: 10_000,
    maxBodyBytes: 1024 * 1024,
    maxRegistrationBytes: 128 * 1024,
    maxManifestBytes: 16 * 1024,
  };
}

/** Defaults for nodes across the internet: tolerate latency spikes and short outages. */
export function wanConfig(): FederationConfig {
  return {
    heartbeatIntervalMs: 5_000,
    suspectTimeoutMs: 20_000, // four missed heartbeats
    deadTimeoutMs: 40_000,
    reapTimeoutMs: 24 * 60 * 60_000, // one day
    sweepIntervalMs: 1_000,
    requestTimeoutMs: 15_000,
    retryBaseDelayMs: 500,
    retryMaxDelayMs: 30_000,
    maxBodyBytes: 1024 * 1024,
    maxRegistrationBytes: 128 * 1024,
    maxManifestBytes: 16 * 1024,
  };
}

/** Fast timers for tests on loopback: a silent node is dead within about half a second. */
export function localTestConfig(): FederationConfig {
  return {
    heartbeatIntervalMs: 50,
    suspectTimeoutMs: 200,
    deadTimeoutMs: 200,
    reapTimeoutMs: 1_000,
    sweepIntervalMs: 25,
    requestTimeoutMs: 2_000,
    retryBaseDelayMs: 20,
    retryMaxDelayMs: 200,
    maxBodyBytes: 1024 * 1024,
    maxRegistrationBytes: 128 * 1024,
    maxManifestBytes: 16 * 1024,
  };
}

export class ConfigError extends Error {
  constructor(
    readonly setting: keyof FederationConfig,
    readonly expected: string,
    readonly actual: number,
    readonly hint: string,
  ) {
    super(`config: ${setting} must be ${expected}, got ${actual}. ${hint}`);
    this.name = 'ConfigError';
  }
}

/** Throws ConfigError on a setting that cannot work; returns the config for chaining. */
export function validateConfig(config: FederationConfig): FederationConfig {
  for (const [key, value] of Object.entries(config) as [keyof FederationConfig, number][]) {
    if (!Number.isFinite(value) || value <= 0) {
      throw new ConfigError(key, 'a positive number of ms (or bytes)', value, 'start from lanConfig() and override');
    }
  }
  if (config.suspectTimeoutMs < 2 * config.heartbeatIntervalMs) {
    throw new ConfigError(
      'suspectTimeoutMs',
      `at least 2x heartbeatIntervalMs (${2 * config.heartbeatIntervalMs})`,
      config.suspectTimeoutMs,
      'otherwise one late heartbeat marks a healthy node suspect',
    );
  }
  for (const cap of ['maxRegistrationBytes', 'maxManifestBytes'] as const) {
    if (config[cap] > config.maxBodyBytes) {
      throw new ConfigError(cap, `at most maxBodyBytes (${config.maxBodyBytes})`, config[cap], 'a larger body is refused before this cap applies');
    }
  }
  if (config.retryMaxDelayMs < config.retryBaseDelayMs) {
    throw new ConfigError(
      'retryMaxDelayMs',
      `at least retryBaseDelayMs (${config.retryBaseDelayMs})`,
      config.retryMaxDelayMs,
      'the cap must not be below the first delay',
    );
  }
  return config;
}
