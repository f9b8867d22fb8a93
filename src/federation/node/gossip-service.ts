// The specialist directory on a node (primary or worker): its replica (SQLite under the data dir), the
// data-plane method `directory_exchange` that answers peers, and a loop that runs a push-pull round with a
// few random peers every `roundIntervalMs` (directory/gossip.ts does the anti-entropy itself).
//
// Who is a peer (gossip-peers.ts): the coordinator (over HTTP, /v1/directory/exchange) and the nodes of its
// node list that listen on the data plane, i.e. workers; while the coordinator is down, the last list it gave
// (kept on disk). Primaries have no data-plane listener: rather than give each one a port to open and
// advertise (and a reachability problem behind NAT that workers solve with candidates and relays), a primary
// gossips over the connections it opens. Push-pull is symmetric (one exchange moves entries both ways), so
// a primary that dials workers both spreads what it holds and learns what they hold; and a worker counts the
// open connections from primaries (`inbound`) among its peers, since those serve `directory_exchange` too.
// What a primary publishes therefore reaches other primaries through any worker, coordinator or not.
//
// Trust: every connection is authenticated in HELLO (the worker side admits members only), the responder
// rate-limits per PROVEN node id (not the `from` in the body), and every entry is checked (signature, rules)
// by every node before it is stored or passed on, so no peer can forge or alter one.
import { join } from 'node:path';
import { z } from 'zod';
import type { CoordinatorClient } from '../coordinator/client.ts';
import { call, defineMethods } from '../dataplane.ts';
import { Directory } from '../directory/directory.ts';
import type { DirectoryConfig } from '../directory/config.ts';
import { GossipError, GossipNode, type RoundReport } from '../directory/gossip.ts';
import { MemoryReplica } from '../directory/memory-replica.ts';
import { DIRECTORY_DB_FILE, SqliteReplica } from '../directory/sqlite-replica.ts';
import type { Identity } from '../identity.ts';
import { API_PREFIX } from '../protocol.ts';
import type { NodeView } from '../protocol.ts';
import { GOSSIP_LIMITS, GossipResponseSchema } from '../protocol-directory.ts';
import type { GossipRequest, GossipResponse } from '../protocol-directory.ts';
import { RemoteError } from '../transport/rpc.ts';
import type { ClientTls, MethodSpec, Peer } from '../transport/rpc.ts';
import type { Logger } from '../../util/log.ts';
import { connectBest } from './connect-best.ts';
import { KnownPeers } from './gossip-peers.ts';

const GOSSIP_SESSION_SUFFIX = '-gossip';

/**
 * The HELLO session of a gossip connection: `<nodeId>-gossip`. Never the pipeline's (a worker routes step
 * results by session), and a worker does not count it as a primary's connection that keeps its sequences.
 */
export function gossipSession(nodeId: string): string {
  return `${nodeId}${GOSSIP_SESSION_SUFFIX}`;
}

export function isGossipSession(session: string | undefined): boolean {
  return session !== undefined && session.endsWith(GOSSIP_SESSION_SUFFIX);
}

/** The coordinator's name among a node's gossip peers (and the `source` of entries it sent). */
export const COORDINATOR_PEER = 'coordinator';

export interface GossipServiceOptions {
  nodeId: string;
  identity: Identity;
  joinToken?: string;
  /** Replica in `<dataDir>/directory.db` and known peers in `<dataDir>/gossip-peers.json`; undefined: memory. */
  dataDir?: string;
  client: Pick<CoordinatorClient, 'listNodes' | 'call'>;
  config: DirectoryConfig;
  logger: Logger;
  /** TLS to relays, for peers reachable only through one. */
  relayTls?: ClientTls;
  /** Open connections whose other end serves `directory_exchange` (a worker's connections from primaries). */
  inbound?: () => readonly Peer[];
  /** 'coordinator': exchange with the coordinator only, never node to node (comparisons; default 'all'). */
  peers?: GossipPeers;
  random?: () => number;
}

export const GOSSIP_PEERS = ['all', 'coordinator'] as const;
export type GossipPeers = (typeof GOSSIP_PEERS)[number];

export class GossipService {
  readonly directory: Directory;
  readonly gossip: GossipNode;
  readonly peers: KnownPeers;
  private readonly dialed = new Map<string, Promise<Peer>>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private lastRefresh = -Infinity;
  private refreshing: Promise<void> | undefined;
  private closed = false;
  private readonly listeners: ((report: RoundReport) => void)[] = [];
  /** Rounds run and their totals, for logs and tests. */
  readonly stats = { rounds: 0, stored: 0, refused: 0, failed: 0 };

  constructor(private readonly o: GossipServiceOptions) {
    const replica = o.dataDir === undefined ? new MemoryReplica() : SqliteReplica.open(join(o.dataDir, DIRECTORY_DB_FILE));
    this.directory = new Directory(replica, o.config);
    this.gossip = new GossipNode({
      id: o.nodeId,
      directory: this.directory,
      exchange: (peer, request) => this.exchange(peer, request),
      logger: o.logger,
      ...(o.random === undefined ? {} : { random: o.random }),
    });
    this.peers = new KnownPeers(o.nodeId, () => o.client.listNodes(), o.logger, o.dataDir === undefined ? undefined : KnownPeers.inDataDir(o.dataDir));
  }

  /** What this node serves on every data-plane connection, incoming and outgoing. */
  methods(): Record<string, MethodSpec> {
    return defineMethods({
      directory_exchange: (_header, { payload, peer }) => {
        const from = peer.identity?.nodeId;
        if (from === undefined) throw new GossipError('bad_request', 'directory_exchange on a connection without a proven node identity', 'connect with the node identity (PeerAuth)');
        this.gossip.admit(from); // before reading the payload: a storm costs a token check, not a JSON parse
        const answer = this.gossip.answer(from, decodeJson(payload));
        return { header: {}, payload: encodeJson(answer) };
      },
    });
  }

  /** Called after every round (e.g. to sign serving records for manifests that just arrived). */
  onRound(listener: (report: RoundReport) => void): void {
    this.listeners.push(listener);
  }

  /** Runs a round now and then every `roundIntervalMs` (rounds never overlap). */
  start(): void {
    const tick = () => {
      if (this.closed) return;
      this.running = this.round()
        .catch((error: unknown) => this.o.logger.warn('gossip round failed', { error: (error as Error).message }))
        .finally(() => {
          if (!this.closed) this.timer = setTimeout(tick, this.o.config.roundIntervalMs).unref();
        });
    };
    tick();
  }

  /** One round: the node list when due, then an exchange with up to `fanout` random peers. */
  async round(): Promise<RoundReport> {
    const now = Date.now();
    if (now - this.lastRefresh >= this.o.config.membershipRefreshMs) {
      // The first list is awaited (a round needs peers); later ones run in the background, so that a
      // coordinator that hangs (not down, just silent) never holds a round up for its HTTP timeout.
      const first = this.lastRefresh === -Infinity;
      this.lastRefresh = now;
      this.refreshing ??= this.peers.refresh().finally(() => (this.refreshing = undefined));
      if (first) await this.refreshing;
    }
    const ids = new Set<string>([COORDINATOR_PEER]);
    if (this.o.peers !== 'coordinator') {
      for (const view of this.peers.dialable()) ids.add(view.nodeId);
      for (const peer of this.o.inbound?.() ?? []) if (peer.identity !== undefined && !peer.closed) ids.add(peer.identity.nodeId);
    }
    ids.delete(this.o.nodeId);
    const report = await this.gossip.round([...ids]);
    this.stats.rounds += 1;
    this.stats.stored += report.stored;
    this.stats.refused += report.refused;
    this.stats.failed += report.failed.length;
    for (const listener of this.listeners) listener(report);
    // Stored entries are news; refusals alone are not (a liar would repeat its forgeries every round).
    if (report.stored > 0 || report.refused > 0) {
      const fields = { stored: report.stored, refused: report.refused, pushed: report.pushed, peers: report.contacted.join(' '), failed: report.failed.join(' ') || undefined };
      if (report.stored > 0) this.o.logger.info('directory_gossip', fields);
      else this.o.logger.debug('directory_gossip', fields);
    }
    return report;
  }

  /** One exchange with a peer: HTTP to the coordinator, the data plane to a node. */
  private async exchange(peerId: string, request: GossipRequest): Promise<GossipResponse> {
    if (peerId === COORDINATOR_PEER) return this.o.client.call('POST', `${API_PREFIX}/directory/exchange`, request, GossipResponseSchema);
    const peer = await this.connection(peerId);
    let answer: { payload: Uint8Array };
    try {
      answer = await call(peer, 'directory_exchange', {}, { payload: encodeJson(request), timeoutMs: this.o.config.exchangeTimeoutMs });
    } catch (error) {
      // A peer that answered with an error (rate_limited) keeps its connection; a silent one loses the one we
      // opened, so that the next round dials afresh instead of waiting on a dead connection.
      if (!(error instanceof RemoteError) && this.dialed.has(peerId)) {
        this.dialed.delete(peerId);
        peer.close();
      }
      throw error;
    }
    if (answer.payload.byteLength > GOSSIP_LIMITS.maxPayloadBytes) {
      throw new GossipError('bad_request', `${peerId} answered directory_exchange with ${answer.payload.byteLength} bytes`, `at most GOSSIP_LIMITS.maxPayloadBytes (${GOSSIP_LIMITS.maxPayloadBytes})`);
    }
    const parsed = GossipResponseSchema.safeParse(decodeJson(answer.payload));
    if (!parsed.success) throw new GossipError('bad_request', `${peerId} answered directory_exchange with a body that is not a GossipResponse: ${z.prettifyError(parsed.error).slice(0, 300)}`, 'the peer runs an incompatible SharedLLM');
    return parsed.data;
  }

  /**
   * An open connection to `peerId`: to a node that listens, the one we opened before or a new one; to a
   * primary (no listener), the connection it opened to us. Inbound connections from listening nodes are not
   * used: a worker forwarding steps dials without serving `directory_exchange`.
   */
  private async connection(peerId: string): Promise<Peer> {
    const view = this.peers.get(peerId);
    if (view === undefined || view.candidates.length === 0) {
      const inbound = (this.o.inbound?.() ?? []).find((peer) => !peer.closed && peer.identity?.nodeId === peerId);
      if (inbound !== undefined) return inbound;
      throw new GossipError('bad_request', `no address known for ${peerId}`, 'it is not in the coordinator\'s node list and has no connection open to this node');
    }
    const cached = this.dialed.get(peerId);
    if (cached !== undefined) {
      const peer = await cached.catch(() => undefined);
      if (peer !== undefined && !peer.closed) return peer;
      this.dialed.delete(peerId);
    }
    const opening = this.dial(view);
    this.dialed.set(peerId, opening);
    opening.catch(() => this.dialed.delete(peerId));
    return opening;
  }

  private async dial(view: NodeView): Promise<Peer> {
    const { peer } = await connectBest(view, {
      session: gossipSession(this.o.nodeId),
      methods: this.methods(),
      logger: this.o.logger,
      timeoutMs: this.o.config.exchangeTimeoutMs,
      auth: { identity: this.o.identity, nodeId: this.o.nodeId, ...(this.o.joinToken === undefined ? {} : { token: this.o.joinToken }) },
      ...(this.o.joinToken === undefined ? {} : { joinToken: this.o.joinToken }),
      ...(this.o.relayTls === undefined ? {} : { relayTls: this.o.relayTls }),
    });
    return peer;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
    await this.refreshing;
    for (const opening of this.dialed.values()) void opening.then((peer) => peer.close()).catch(() => undefined);
    this.dialed.clear();
    this.directory.replica.close();
  }
}

function encodeJson(value: unknown): Uint8Array {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

/** The payload's JSON, or a bad_request GossipError (never a crash). */
function decodeJson(payload: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8'));
  } catch {
    throw new GossipError('bad_request', 'directory_exchange payload is not JSON', 'send the GossipRequest as UTF-8 JSON in the payload');
  }
}
