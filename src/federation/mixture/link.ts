// A primary's mixture links to other primaries: it may lend its specialists on a data-plane listener
// (`--mixture-listen HOST:PORT`, advertised in its serving records) and drives the specialists of the
// primaries that lend theirs: those the directory names (`discover`, discovery.ts) and those it is told of
// (`--mixture-peer HOST:PORT`, repeatable: an explicit override, kept whatever the directory says). Both
// ends prove their node identity (and the join token) in HELLO, and with `membership` each admits only alive
// members of the federation (the workers' rule). A lender found in the directory must answer as the node
// that signed its record; one whose address does not answer, answers as another node, or sends a
// malformed distribution is banned (Bans, doubling) and its specialists leave the mixtures until the ban ends.
import { randomBytes } from 'node:crypto';
import type { Specialist } from '../../model/mixture/specialist.ts';
import type { Logger } from '../../util/log.ts';
import { defineMethods } from '../dataplane.ts';
import { Bans } from '../node/bans.ts';
import type { MembershipCheck } from '../node/membership.ts';
import type { DataPlaneConfig } from '../node/dataplane-config.ts';
import { type PeerAuth, type TransportServer, connect, listen } from '../transport/rpc.ts';
import { RemoteMixturePeer, type RemoteSpecialist } from './remote.ts';
import type { Lender } from './discovery.ts';
import { MixtureService } from './serve.ts';

export const MIXTURE_LINK_CONFIG = {
  /** A peer that is not connected is tried again this often. */
  reconnectMs: 2_000,
  /** Its specialists are listed again this often (a primary may load or rename some). */
  relistMs: 30_000,
  connectTimeoutMs: 5_000,
} as const;

/** The other end is not an alive member of the federation (its HELLO is refused). */
export class MixtureLinkAuthError extends Error {
  readonly code = 'not_member';
  readonly hint = 'register with the coordinator first (start the node with --coordinator-url)';
}

/** The node at a lender's address is not the node that signed the serving record naming it. */
export class MixtureLenderMismatchError extends Error {
  readonly code = 'lender_mismatch';
  readonly hint = 'the record is stale (another node now lends at that address) or false; the node is banned and dialled again when the ban ends';
  constructor(
    readonly addr: string,
    readonly expected: string,
    readonly actual: string | undefined,
  ) {
    super(`the lender at ${addr} should be node ${expected} (its serving record), but it proved ${actual ?? 'no identity'}`);
  }
}

export interface MixtureLinkOptions {
  auth: Omit<PeerAuth, 'verifyPeer'>;
  /** Who may connect, and whom we connect to: the coordinator's alive members. Absent: any proven identity. */
  membership?: MembershipCheck;
  nodeId: string;
  /** Lend this primary's specialists here (host, port). */
  listen?: { host: string; port: number };
  /** Data-plane addresses of primaries whose specialists this one mixes (--mixture-peer). */
  peers: readonly string[];
  /** Lending primaries the directory names now (discovery.ts lendersIn); read every tick. */
  discover?: () => readonly Lender[];
  /** This primary's own specialists (what it lends). */
  local: () => readonly Specialist[];
  /** Ban lengths for remote primaries that misbehave (the data plane's worker bans). */
  bans: Pick<DataPlaneConfig, 'banBaseMs' | 'banFactor' | 'banMaxMs' | 'banForgetMs'>;
  logger: Logger;
}

interface Link {
  addr: string;
  /** A lender found in the directory: the node that signed the record (HELLO must prove it). */
  expected?: string;
  remote?: RemoteMixturePeer;
  specialists: RemoteSpecialist[];
  listedAt: number;
  connecting: boolean;
}

export class MixtureLink {
  readonly bans: Bans;
  private readonly service: MixtureService;
  private server: TransportServer | undefined;
  private links: Link[];
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  private readonly auth: PeerAuth;

  private constructor(private readonly o: MixtureLinkOptions) {
    this.bans = new Bans(o.bans, o.logger);
    const membership = o.membership;
    this.auth = membership === undefined ? o.auth : {
      ...o.auth,
      verifyPeer: async (remote) => {
        if ((await membership.member(remote.nodeId, remote.publicKey)) === undefined) throw new MixtureLinkAuthError(`${remote.nodeId} is not a member of this federation`);
      },
    };
    this.service = new MixtureService({ specialists: o.local, logger: o.logger });
    this.links = o.peers.map((addr) => ({ addr, specialists: [], listedAt: 0, connecting: false }));
  }

  static async start(o: MixtureLinkOptions): Promise<MixtureLink> {
    const link = new MixtureLink(o);
    if (o.listen) {
      link.server = await listen({ host: o.listen.host, port: o.listen.port, session: o.nodeId, methods: defineMethods(link.service.methods()), auth: link.auth, logger: o.logger });
      o.logger.info('mixture_listening', { host: o.listen.host, port: link.server.port });
    }
    link.tick();
    return link;
  }

  /** The port lent on (when listening). */
  get port(): number | undefined {
    return this.server?.port;
  }

  /** Remote specialists usable now (connected, not banned), one connection's worth per node. */
  remote(): Specialist[] {
    const seen = new Set<string>();
    return this.links.flatMap((l) => {
      if (l.remote?.usable !== true || seen.has(l.remote.nodeId)) return [];
      seen.add(l.remote.nodeId);
      return l.specialists;
    });
  }

  /** Addresses linked now and the node each proved, for logs and tests. */
  linked(): { addr: string; nodeId?: string; discovered: boolean; specialists: string[] }[] {
    return this.links.map((l) => ({ addr: l.addr, ...(l.remote ? { nodeId: l.remote.nodeId } : {}), discovered: l.expected !== undefined, specialists: l.specialists.map((s) => s.id) }));
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    for (const l of this.links) l.remote?.peer.close();
    await this.service.close();
    await this.server?.close();
  }

  private tick(): void {
    if (this.closed) return;
    this.syncDiscovered();
    for (const l of this.links) void this.refresh(l);
    this.timer = setTimeout(() => this.tick(), MIXTURE_LINK_CONFIG.reconnectMs);
    this.timer.unref();
  }

  /** Adds a link per lender the directory names, drops those it no longer names (or names elsewhere). */
  private syncDiscovered(): void {
    if (this.o.discover === undefined) return;
    let lenders: readonly Lender[];
    try {
      lenders = this.o.discover().filter((d) => d.nodeId !== this.o.nodeId && !this.o.peers.includes(d.addr));
    } catch (e) {
      this.o.logger.warn('mixture discovery failed', { error: e instanceof Error ? e.message : String(e) });
      return;
    }
    const wanted = new Map(lenders.map((d) => [`${d.nodeId}@${d.addr}`, d]));
    this.links = this.links.filter((l) => {
      if (l.expected === undefined || wanted.has(`${l.expected}@${l.addr}`)) return true;
      l.remote?.peer.close();
      this.o.logger.info('mixture_lender_gone', { addr: l.addr, nodeId: l.expected });
      return false;
    });
    for (const [key, d] of wanted) {
      if (this.links.some((l) => l.expected !== undefined && `${l.expected}@${l.addr}` === key)) continue;
      this.links.push({ addr: d.addr, expected: d.nodeId, specialists: [], listedAt: 0, connecting: false });
      this.o.logger.info('mixture_lender_found', { addr: d.addr, nodeId: d.nodeId, specialists: d.modelIds });
    }
  }

  private async refresh(l: Link): Promise<void> {
    if (l.connecting) return;
    // A banned lender is not dialled again until its ban ends.
    if (l.expected !== undefined && this.bans.has(l.expected)) return;
    const fresh = l.remote !== undefined && !l.remote.peer.closed && Date.now() - l.listedAt < MIXTURE_LINK_CONFIG.relistMs;
    if (fresh) return;
    l.connecting = true;
    try {
      if (l.remote === undefined || l.remote.peer.closed) {
        l.specialists = [];
        const peer = await connect(l.addr, { session: `${this.o.nodeId}-mix-${randomBytes(6).toString('hex')}`, auth: this.auth, timeoutMs: MIXTURE_LINK_CONFIG.connectTimeoutMs, logger: this.o.logger });
        const proven = peer.identity?.nodeId;
        if (this.closed || !this.links.includes(l)) {
          peer.close(); // closed, or the directory dropped this lender while we dialled
          return;
        }
        if (l.expected !== undefined && proven !== l.expected) {
          peer.close();
          throw new MixtureLenderMismatchError(l.addr, l.expected, proven);
        }
        l.remote = new RemoteMixturePeer(peer, proven ?? l.addr, this.bans, this.o.logger);
      }
      l.specialists = await l.remote.specialists();
      l.listedAt = Date.now();
      this.o.logger.info('mixture_peer', { addr: l.addr, nodeId: l.remote.nodeId, specialists: l.specialists.map((s) => s.id) });
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      // A lender the directory names must answer at its address: else its specialists are dropped and the
      // node banned (retried when the ban ends). An explicit --mixture-peer is retried every tick instead.
      if (l.expected !== undefined) {
        l.specialists = [];
        l.remote?.peer.close();
        this.bans.ban(l.expected, `mixture: the lender at ${l.addr} failed: ${error}`);
      } else {
        this.o.logger.debug('mixture_peer_unreachable', { addr: l.addr, error });
      }
    } finally {
      l.connecting = false;
    }
  }
}
