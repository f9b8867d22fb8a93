// Workers the primary will not use for a while, Petals' blacklist: each failure bans the worker for
// `banBaseMs`, then `banFactor` times longer with each further failure, up to `banMaxMs`; a worker that has
// not failed for `banForgetMs` starts again from the base. Every ban is logged with its delay.
import type { Logger } from '../../util/log.ts';
import type { DataPlaneConfig } from './dataplane-config.ts';

interface BanRecord {
  until: number;
  strikes: number;
  lastFailure: number;
}

export interface BanInfo {
  nodeId: string;
  /** When the ban ends (ms since the epoch). */
  until: number;
  /** Failures counted (resets after `banForgetMs` without one). */
  strikes: number;
}

export class Bans {
  private readonly records = new Map<string, BanRecord>();

  constructor(
    private readonly config: Pick<DataPlaneConfig, 'banBaseMs' | 'banFactor' | 'banMaxMs' | 'banForgetMs'>,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Ban `nodeId` after a failure; returns the ban's length in ms. */
  ban(nodeId: string, reason: string): number {
    const now = this.now();
    const old = this.records.get(nodeId);
    const strikes = old && now - old.lastFailure < this.config.banForgetMs ? old.strikes + 1 : 1;
    const ms = Math.min(this.config.banMaxMs, this.config.banBaseMs * this.config.banFactor ** (strikes - 1));
    this.records.set(nodeId, { until: now + ms, strikes, lastFailure: now });
    this.logger.warn('worker banned', { nodeId, banMs: Math.round(ms), strikes, reason: reason.slice(0, 500) });
    return ms;
  }

  has(nodeId: string): boolean {
    const r = this.records.get(nodeId);
    return r !== undefined && r.until > this.now();
  }

  /** Ids banned right now. */
  active(): Set<string> {
    const now = this.now();
    return new Set([...this.records].filter(([, r]) => r.until > now).map(([id]) => id));
  }

  /** Every ban in force, for /v1/federation. */
  list(): BanInfo[] {
    const now = this.now();
    return [...this.records].filter(([, r]) => r.until > now).map(([nodeId, r]) => ({ nodeId, until: r.until, strikes: r.strikes }));
  }

  get size(): number {
    return this.active().size;
  }
}
