// A primary's mixture links to other primaries: it may lend its specialists on a data-plane listener
// (`--mixture-listen HOST:PORT`) and drive the specialists of the primaries it is told of
// (`--mixture-peer HOST:PORT`, repeatable). Both ends prove their node identity (and the join token) in
// HELLO, and with `membership` each admits only alive members of the federation (the workers' rule).
// Primaries have no data-plane listener of their own and the directory's serving records carry no
// address yet, so these flags are how one primary finds another's specialists for now.
import { randomBytes } from 'node:crypto';
import type { Specialist } from '../../model/mixture/specialist.ts';
import type { Logger } from '../../util/log.ts';
import { defineMethods } from '../dataplane.ts';
import { Bans } from '../node/bans.ts';
import type { MembershipCheck } from '../node/membership.ts';
import type { DataPlaneConfig } from '../node/dataplane-config.ts';
import { type PeerAuth, type TransportServer, connect, listen } from '../transport/rpc.ts';
import { RemoteMixturePeer, type RemoteSpecialist } from './remote.ts';
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

export interface MixtureLinkOptions {
  auth: Omit<PeerAuth, 'verifyPeer'>;
  /** Who may connect, and whom we connect to: the coordinator's alive members. Absent: any proven identity. */
  membership?: MembershipCheck;
  nodeId: string;
  /** Lend this primary's specialists here (host, port). */
  listen?: { host: string; port: number };
  /** Data-plane addresses of primaries whose specialists this one mixes. */
  peers: readonly string[];
  /** This primary's own specialists (what it lends). */
  local: () => readonly Specialist[];
  /** Ban lengths for remote primaries that misbehave (the data plane's worker bans). */
  bans: Pick<DataPlaneConfig, 'banBaseMs' | 'banFactor' | 'banMaxMs' | 'banForgetMs'>;
  logger: Logger;
}

interface Link {
  addr: string;
  remote?: RemoteMixturePeer;
  specialists: RemoteSpecialist[];
  listedAt: number;
  connecting: boolean;
}

export class MixtureLink {
  readonly bans: Bans;
  private readonly service: MixtureService;
  private server: TransportServer | undefined;
  private readonly links: Link[];
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

  /** Remote specialists usable now (connected, not banned). */
  remote(): Specialist[] {
    return this.links.flatMap((l) => (l.remote?.usable === true ? l.specialists : []));
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
    for (const l of this.links) void this.refresh(l);
    this.timer = setTimeout(() => this.tick(), MIXTURE_LINK_CONFIG.reconnectMs);
    this.timer.unref();
  }

  private async refresh(l: Link): Promise<void> {
    if (l.connecting) return;
    const fresh = l.remote !== undefined && !l.remote.peer.closed && Date.now() - l.listedAt < MIXTURE_LINK_CONFIG.relistMs;
    if (fresh) return;
    l.connecting = true;
    try {
      if (l.remote === undefined || l.remote.peer.closed) {
        const peer = await connect(l.addr, { session: `${this.o.nodeId}-mix-${randomBytes(6).toString('hex')}`, auth: this.auth, timeoutMs: MIXTURE_LINK_CONFIG.connectTimeoutMs, logger: this.o.logger });
        l.remote = new RemoteMixturePeer(peer, peer.identity?.nodeId ?? l.addr, this.bans, this.o.logger);
      }
      l.specialists = await l.remote.specialists();
      l.listedAt = Date.now();
      this.o.logger.info('mixture_peer', { addr: l.addr, nodeId: l.remote.nodeId, specialists: l.specialists.map((s) => s.id) });
    } catch (e) {
      this.o.logger.debug('mixture_peer_unreachable', { addr: l.addr, error: e instanceof Error ? e.message : String(e) });
    } finally {
      l.connecting = false;
    }
  }
}
