/**
 * Push-pull anti-entropy for the specialist directory, independent of the transport. Each round a node
 * picks `fanout` random peers and, with each: sends its digest, stores what the answer carries (entries it
 * lacked or held older), then pushes the entries the peer said it wants. A node answering (handle) is
 * rate-limited per peer. The transport is injected as `exchange(peer, request) -> response`: an HTTP POST
 * to the coordinator's /v1/directory/exchange, a data-plane request between nodes, or a plain function call
 * in tests and simulations. Entries carry their signatures, so whoever relays them cannot forge or alter one:
 * every node checks each entry (Directory.accept) before storing or passing it on.
 */
import { GossipRequestSchema } from '../protocol-directory.ts';
import type { DigestItem, GossipRequest, GossipResponse } from '../protocol-directory.ts';
import { silentLogger } from '../../util/log.ts';
import type { Logger } from '../../util/log.ts';
import type { Directory } from './directory.ts';
import { PeerRateLimiter } from './rate-limit.ts';

export type Exchange = (peer: string, request: GossipRequest) => Promise<GossipResponse>;

export interface GossipNodeOptions {
  /** This node's id, sent as `from` (the transport authenticates it where it can). */
  id: string;
  directory: Directory;
  exchange: Exchange;
  /** In [0, 1): picks the peers of a round (seeded in simulations). */
  random?: () => number;
  now?: () => number;
  logger?: Logger;
}

export interface RoundReport {
  contacted: string[];
  /** Peers whose exchange failed (down, cut, rate-limited us). */
  failed: string[];
  /** Entries received and stored / refused. */
  stored: number;
  refused: number;
  /** Entries pushed to peers that wanted them. */
  pushed: number;
}

export class GossipError extends Error {
  constructor(
    readonly code: 'rate_limited' | 'bad_request',
    message: string,
    readonly hint: string,
  ) {
    super(message);
    this.name = 'GossipError';
  }
}

export class GossipNode {
  readonly id: string;
  private readonly directory: Directory;
  private readonly exchange: Exchange;
  private readonly random: () => number;
  private readonly logger: Logger;
  private readonly limiter: PeerRateLimiter;

  constructor(options: GossipNodeOptions) {
    this.id = options.id;
    this.directory = options.directory;
    this.exchange = options.exchange;
    this.random = options.random ?? Math.random;
    this.logger = options.logger ?? silentLogger;
    const { peerBurst, peerRatePerSecond } = options.directory.config;
    this.limiter = new PeerRateLimiter(peerBurst, peerRatePerSecond, options.now ?? Date.now);
  }

  /** One round with up to `fanout` peers chosen at random from `peers` (this node excluded). */
  async round(peers: readonly string[]): Promise<RoundReport> {
    const chosen = this.choose(peers.filter((peer) => peer !== this.id), this.directory.config.fanout);
    const report: RoundReport = { contacted: chosen, failed: [], stored: 0, refused: 0, pushed: 0 };
    const digest = this.directory.digest(); // one digest per round: entries stored during it show in the next
    await Promise.all(chosen.map((peer) => this.withPeer(peer, digest, report)));
    return report;
  }

  /** Answers a peer's request. Throws GossipError (rate_limited, bad_request); never stores an unchecked entry. */
  handle(from: string, raw: unknown): GossipResponse {
    this.admit(from);
    return this.answer(from, raw);
  }

  /** Takes one message from `from`'s token bucket, or throws GossipError rate_limited (before any parsing). */
  admit(from: string): void {
    if (!this.limiter.take(from)) {
      throw new GossipError('rate_limited', `too many directory messages from ${from}`, `at most ${this.directory.config.peerRatePerSecond} a second sustained; slow the rounds down`);
    }
  }

  /** handle() for a request already admitted. */
  answer(from: string, raw: unknown): GossipResponse {
    const parsed = GossipRequestSchema.safeParse(raw);
    if (!parsed.success) throw new GossipError('bad_request', 'not a gossip request', 'see GossipRequestSchema in src/federation/protocol.ts');
    const request = parsed.data;
    let refused = 0;
    for (const entry of request.push ?? []) if (this.directory.accept(entry, from).status === 'refused') refused += 1;
    if (refused > 0) this.logger.debug('directory_push_refused', { from, refused });
    return request.digest === undefined ? { entries: [], want: [] } : this.directory.reconcile(request.digest);
  }

  private async withPeer(peer: string, digest: DigestItem[], report: RoundReport): Promise<void> {
    try {
      const answer = await this.exchange(peer, { from: this.id, digest });
      for (const entry of answer.entries) {
        const outcome = this.directory.accept(entry, peer);
        if (outcome.status === 'stored') report.stored += 1;
        if (outcome.status === 'refused') {
          report.refused += 1;
          this.logger.debug('directory_entry_refused', { peer, code: outcome.code, reason: outcome.reason });
        }
      }
      const push = this.directory.entries(answer.want);
      if (push.length > 0) {
        await this.exchange(peer, { from: this.id, push });
        report.pushed += push.length;
      }
    } catch (error) {
      report.failed.push(peer);
      this.logger.debug('directory_exchange_failed', { peer, error: (error as Error).message });
    }
  }

  /** `count` distinct peers (partial Fisher-Yates). */
  private choose(peers: string[], count: number): string[] {
    const pool = [...peers];
    const n = Math.min(count, pool.length);
    for (let i = 0; i < n; i++) {
      const j = i + Math.floor(this.random() * (pool.length - i));
      [pool[i], pool[j]] = [pool[j]!, pool[i]!];
    }
    return pool.slice(0, n);
  }
}
