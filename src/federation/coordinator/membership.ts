/**
 * The node state machine of the coordinator (memberlist's, over leases renewed by HTTP heartbeats):
 *
 *   from        event                                               to
 *   (none)      register                                            alive
 *   alive       no heartbeat for suspectTimeoutMs                   suspect
 *   suspect     heartbeat or registration (refutes the suspicion)   alive
 *   suspect     still silent deadTimeoutMs after becoming suspect   dead
 *   dead, left  registration                                        alive
 *   any         leave                                               left
 *   dead, left  reapTimeoutMs later                                 (forgotten: removed from the store)
 *
 * Incarnations order the updates of one node: anything older than what is held is refused as stale.
 * Time comes from an injected Clock and timers only advance in tick(), so tests drive the machine with
 * a FakeClock and no sleeps. The rules as seen from the wire are documented in protocol.ts.
 */
import type { FederationConfig } from '../config.ts';
import type { HeartbeatBody, LeaveBody, NodeListQuery, NodeRegistration, NodeState } from '../protocol.ts';
import type { Clock } from '../../util/clock.ts';
import type { Logger } from '../../util/log.ts';
import { silentLogger } from '../../util/log.ts';
import type { CoordinatorStore, NodeRecord } from './store.ts';

export type MembershipErrorCode = 'unknown_node' | 'stale_incarnation' | 'identity_mismatch';

/** A refused update. The server maps `code` to an HTTP status (404 / 409 / 409). */
export class MembershipError extends Error {
  constructor(
    readonly code: MembershipErrorCode,
    message: string,
    readonly expected: string,
    readonly actual: string,
    readonly hint: string,
  ) {
    super(message);
    this.name = 'MembershipError';
  }
}

/** A state change made by tick() or by a message; 'reaped' means the node was forgotten. */
export interface Transition {
  nodeId: string;
  from: NodeState | 'unknown';
  to: NodeState | 'reaped';
  incarnation: number;
}

export type MembershipTimers = Pick<FederationConfig, 'suspectTimeoutMs' | 'deadTimeoutMs' | 'reapTimeoutMs'>;

export interface MembershipOptions {
  store: CoordinatorStore;
  clock: Clock;
  config: MembershipTimers;
  logger?: Logger;
}

export class Membership {
  private readonly store: CoordinatorStore;
  private readonly clock: Clock;
  private readonly config: MembershipTimers;
  private readonly logger: Logger;

  constructor(options: MembershipOptions) {
    this.store = options.store;
    this.clock = options.clock;
    this.config = options.config;
    this.logger = options.logger ?? silentLogger;
  }

  /**
   * After a coordinator restart: nodes that were alive or suspect are now suspect, with the dead
   * timer starting now, so each gets deadTimeoutMs to heartbeat before it is declared dead.
   */
  restore(): Transition[] {
    const now = this.clock.now();
    const transitions: Transition[] = [];
    for (const record of this.store.listNodes()) {
      if (record.state !== 'alive' && record.state !== 'suspect') continue;
      transitions.push(this.setState(record, 'suspect', now));
    }
    return transitions;
  }

  /**
   * Accepts a (signature-checked) registration: its known fields, as the server parsed them.
   * Refused when older than the held incarnation, or when a live node holds the id with another key.
   */
  register(body: NodeRegistration): { record: NodeRecord; transition: Transition } {
    const now = this.clock.now();
    const existing = this.store.getNode(body.nodeId);
    if (existing !== undefined) {
      const live = existing.state === 'alive' || existing.state === 'suspect';
      if (live && existing.registration.publicKey !== body.publicKey) {
        throw new MembershipError(
          'identity_mismatch',
          `node id ${body.nodeId} is held by a live node with another public key`,
          existing.registration.publicKey,
          body.publicKey,
          'use a different node id (the identity fingerprint is a good one), or stop the other node first',
        );
      }
      if (body.incarnation < existing.incarnation) throw staleError(body.nodeId, existing.incarnation, body.incarnation);
    }
    const record: NodeRecord = {
      nodeId: body.nodeId,
      incarnation: body.incarnation,
      state: 'alive',
      role: body.role,
      lastSeen: now,
      stateChangedAt: existing?.state === 'alive' ? existing.stateChangedAt : now,
      registeredAt: existing !== undefined && existing.incarnation === body.incarnation ? existing.registeredAt : now,
      freeMemoryBytes: body.freeMemoryBytes,
      load: 0,
      registration: body,
    };
    this.store.putNode(record);
    const transition: Transition = { nodeId: body.nodeId, from: existing?.state ?? 'unknown', to: 'alive', incarnation: body.incarnation };
    this.logger.info('node_registered', { ...transition, role: body.role, name: body.name });
    return { record, transition };
  }

  /** Renews the lease; a suspect node becomes alive again (refutation). */
  heartbeat(beat: HeartbeatBody): NodeRecord {
    const now = this.clock.now();
    const record = this.store.getNode(beat.nodeId);
    if (record === undefined) throw unknownError(beat.nodeId, 'not registered');
    if (beat.incarnation < record.incarnation) throw staleError(beat.nodeId, record.incarnation, beat.incarnation);
    if (beat.incarnation > record.incarnation) {
      throw unknownError(beat.nodeId, `incarnation ${beat.incarnation} was never registered (held: ${record.incarnation})`);
    }
    if (record.state === 'dead' || record.state === 'left') throw unknownError(beat.nodeId, `it is ${record.state}`);
    const updated: NodeRecord = { ...record, lastSeen: now, freeMemoryBytes: beat.freeMemoryBytes, load: beat.load };
    if (record.state === 'suspect') {
      this.setState(updated, 'alive', now); // refuted
      return { ...updated, state: 'alive', stateChangedAt: now };
    }
    this.store.putNode(updated);
    return updated;
  }

  /** Marks the node left (idempotent). A leave from an older incarnation is stale. */
  leave(message: LeaveBody): NodeRecord {
    const now = this.clock.now();
    const record = this.store.getNode(message.nodeId);
    if (record === undefined) throw unknownError(message.nodeId, 'not registered');
    if (message.incarnation < record.incarnation) throw staleError(message.nodeId, record.incarnation, message.incarnation);
    if (record.state === 'left') return record;
    const updated = { ...record, incarnation: message.incarnation };
    this.setState(updated, 'left', now);
    return { ...updated, state: 'left', stateChangedAt: now };
  }

  /** Applies the timers at the clock's current time; returns what changed. */
  tick(): Transition[] {
    const now = this.clock.now();
    const transitions: Transition[] = [];
    for (const record of this.store.listNodes()) {
      switch (record.state) {
        case 'alive':
          if (now - record.lastSeen >= this.config.suspectTimeoutMs) transitions.push(this.setState(record, 'suspect', now));
          break;
        case 'suspect':
          if (now - record.stateChangedAt >= this.config.deadTimeoutMs) transitions.push(this.setState(record, 'dead', now));
          break;
        case 'dead':
        case 'left':
          if (now - record.stateChangedAt >= this.config.reapTimeoutMs) {
            this.store.deleteNode(record.nodeId);
            const transition: Transition = { nodeId: record.nodeId, from: record.state, to: 'reaped', incarnation: record.incarnation };
            this.logger.info('node_reaped', { ...transition });
            transitions.push(transition);
          }
          break;
      }
    }
    return transitions;
  }

  get(nodeId: string): NodeRecord | undefined {
    return this.store.getNode(nodeId);
  }

  list(query: NodeListQuery = {}): NodeRecord[] {
    return this.store
      .listNodes()
      .filter((record) => (query.role === undefined || record.role === query.role) && (query.state === undefined || record.state === query.state));
  }

  /** Node counts by state. */
  counts(): Record<NodeState | 'total', number> {
    const counts = { total: 0, alive: 0, suspect: 0, dead: 0, left: 0 };
    for (const record of this.store.listNodes()) {
      counts.total += 1;
      counts[record.state] += 1;
    }
    return counts;
  }

  private setState(record: NodeRecord, to: NodeState, now: number): Transition {
    const transition: Transition = { nodeId: record.nodeId, from: record.state, to, incarnation: record.incarnation };
    this.store.putNode({ ...record, state: to, stateChangedAt: now });
    const level = to === 'suspect' || to === 'dead' ? 'warn' : 'info';
    this.logger[level]('node_state', { ...transition, lastSeen: record.lastSeen });
    return transition;
  }
}

function staleError(nodeId: string, held: number, got: number): MembershipError {
  return new MembershipError(
    'stale_incarnation',
    `node ${nodeId}: incarnation ${got} is older than the registered ${held}`,
    `>= ${held}`,
    String(got),
    'a newer process of this node has registered; stop this one (or restart it to get a new incarnation)',
  );
}

function unknownError(nodeId: string, why: string): MembershipError {
  return new MembershipError(
    'unknown_node',
    `node ${nodeId} has no live registration: ${why}`,
    'a registered, live node',
    why,
    'register again (POST /v1/nodes/register with incarnation + 1); CoordinatorClient does this by itself',
  );
}
