// Who may use a worker: the federation's members as the coordinator lists them. A worker asks this before it
// serves a connection (any member), a primary-only method (load_span, open_seq, ...), a forwarded step (a
// registered worker), or dials a step's next hop (a registered worker at an address it registered).
//
// Two implementations: CoordinatorMembership asks the coordinator (one node list, cached for a short TTL and
// refreshed in the background, so a step never waits for HTTP; an unknown node waits for the next refresh,
// at most one every `minRefreshMs`, so strangers cannot make the worker hammer the coordinator; while the
// coordinator is unreachable the last list stands), and StaticMembership holds a fixed list (unit tests, simulations).
import type { CoordinatorClient } from '../coordinator/client.ts';
import type { Candidate, NodeRole, NodeView } from '../protocol.ts';
import type { Logger } from '../../util/log.ts';
import { silentLogger } from '../../util/log.ts';
import { candidateAddr } from './connect-best.ts';

/** A member as far as the data plane cares. */
export interface Member {
  nodeId: string;
  publicKey: string;
  role: NodeRole;
  /** Addresses a hop may be reached at: host:port, or relay://relay/nodeId for relay candidates. */
  addrs: string[];
  /** Content hashes of the models it registered, without the 'sha256:' prefix. */
  models: string[];
  /** Its data-plane TLS certificate, when it registered one. */
  dataPlaneCert?: string;
}

export interface MembershipCheck {
  /** The alive (or suspect) member with this nodeId AND this key; undefined when there is none. */
  member(nodeId: string, publicKey: string): Promise<Member | undefined>;
  /** The alive (or suspect) member with this nodeId, whatever its key (a route names hops by nodeId). */
  find(nodeId: string): Promise<Member | undefined>;
}

/** The Member a coordinator's NodeView describes. */
export function memberOf(view: NodeView): Member {
  return {
    nodeId: view.nodeId,
    publicKey: view.publicKey,
    role: view.role,
    addrs: view.candidates.map((c: Candidate) => candidateAddr(view.nodeId, c)),
    models: view.models.map((m) => m.hash.replace(/^sha256:/, '')),
    ...(view.dataPlaneCert === undefined ? {} : { dataPlaneCert: view.dataPlaneCert }),
  };
}

/** A fixed member list: unit tests and in-process simulations. */
export class StaticMembership implements MembershipCheck {
  private readonly members = new Map<string, Member>();

  constructor(members: Member[] = []) {
    for (const m of members) this.add(m);
  }

  add(member: Member): void {
    this.members.set(member.nodeId, member);
  }

  remove(nodeId: string): void {
    this.members.delete(nodeId);
  }

  async member(nodeId: string, publicKey: string): Promise<Member | undefined> {
    const m = this.members.get(nodeId);
    return m !== undefined && m.publicKey === publicKey ? m : undefined;
  }

  async find(nodeId: string): Promise<Member | undefined> {
    return this.members.get(nodeId);
  }
}

export interface CoordinatorMembershipOptions {
  /** Serve the cached list this long before refreshing it in the background. */
  ttlMs: number;
  /** At most one refresh per this interval when a node is not in the list. */
  minRefreshMs: number;
  logger?: Logger;
}

export class CoordinatorMembership implements MembershipCheck {
  private members = new Map<string, Member>();
  private fetchedAt = -Infinity;
  /** Refreshes completed so far. */
  private generation = 0;
  private refreshing: Promise<void> | undefined;
  private readonly logger: Logger;

  constructor(
    private readonly client: Pick<CoordinatorClient, 'listNodes'>,
    private readonly options: CoordinatorMembershipOptions,
  ) {
    this.logger = options.logger ?? silentLogger;
  }

  member(nodeId: string, publicKey: string): Promise<Member | undefined> {
    return this.lookup((members) => {
      const m = members.get(nodeId);
      return m !== undefined && m.publicKey === publicKey ? m : undefined;
    });
  }

  find(nodeId: string): Promise<Member | undefined> {
    return this.lookup((members) => members.get(nodeId));
  }

  private async lookup(pick: (members: ReadonlyMap<string, Member>) => Member | undefined): Promise<Member | undefined> {
    const age = Date.now() - this.fetchedAt;
    if (age > this.options.ttlMs) {
      if (this.fetchedAt === -Infinity) await this.refresh();
      else void this.refresh(); // serve what we have; the next call sees the new list
    }
    let found = pick(this.members);
    if (found === undefined) {
      // Perhaps it registered a moment ago: look once more, but not sooner than minRefreshMs after the last
      // look (callers waiting meanwhile share that one refresh).
      const seen = this.generation;
      const wait = this.options.minRefreshMs - (Date.now() - this.fetchedAt);
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      if (this.generation === seen) await this.refresh();
      else await this.refreshing; // someone refreshed meanwhile (or is refreshing): use that list
      found = pick(this.members);
    }
    return found;
  }

  private refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        const views = await this.client.listNodes();
        this.members = new Map(views.filter((v) => v.state === 'alive' || v.state === 'suspect').map((v) => [v.nodeId, memberOf(v)]));
      } catch (error) {
        // Keep the last list: the data plane does not stop when the coordinator does.
        this.logger.warn('membership refresh failed; using the last list', { error: (error as Error).message, members: this.members.size });
      } finally {
        this.fetchedAt = Date.now();
        this.generation += 1;
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }
}
