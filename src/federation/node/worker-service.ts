// What a worker does on the data plane: hold layer spans, keep each sequence's KV cache for them, run steps
// and pass the hidden states on: to the next worker, or back to the primary that started the step.
//
// Who may do what (the connection's identity is proven in HELLO, hello-auth.ts; membership.ts says who is a
// member): any member may connect and ask `info`; only alive primaries load spans and open, truncate or close
// sequences; a `step` comes from the primary that owns the session or from a registered worker forwarding it;
// a step's next hop must be a registered worker at an address it registered, or the step fails with a
// step_error to the primary.
//
// Several primaries may use one worker, even the same span of the same model: each primary numbers its
// sequences itself, so a sequence is known here by (primary KEY, span, seq) and mapped to an id of our own. The
// key is the one the primary proved in HELLO, so no other connection can touch its sequences whatever session
// it names. When a primary's last connection closes, its sequences are freed at once, and a span no primary
// uses any more is freed after `spanIdleMs`. Limits (worker-limits.ts) hold whatever a primary asks for.
import { getGgml } from '../../ggml/runtime.ts';
import type { Logger } from '../../util/log.ts';
import { spanText } from '../../util/log.ts';
import { defineMethods, notify } from '../dataplane.ts';
import { fingerprint } from '../identity.ts';
import type { Identity } from '../identity.ts';
import type { Hop, InfoResponse, ParsedRequestOf, SpanRef, StepMessage } from '../protocol-dataplane.ts';
import type { NodeRole } from '../protocol.ts';
import type { MethodSpec, Peer, PeerAuth, PeerIdentity, TransportServer } from '../transport/rpc.ts';
import { type DialOptions, dial } from './dial.ts';
import type { Member, MembershipCheck } from './membership.ts';
import { SpanSourceError } from './span-source.ts';
import { type HeldSpan, SpanStore, spanKey } from './worker-spans.ts';
import { WorkerAuthError, WorkerLimitError, defaultWorkerLimits } from './worker-limits.ts';
import type { WorkerLimits } from './worker-limits.ts';
import { stepFingerprint } from './fingerprint.ts';
import { isGossipSession } from './gossip-service.ts';

export interface WorkerServiceOptions {
  nodeId: string;
  /** Our key: proves this worker in HELLO, incoming and to next hops. */
  identity: Identity;
  /** The federation's join token, proven (never sent) in HELLO. */
  joinToken?: string;
  /** Who the federation's members are (the coordinator, or a fixed list in tests). */
  membership: MembershipCheck;
  cacheDir: string;
  /** Local GGUF files this worker may load spans from (matched by content hash). */
  modelFiles?: readonly string[];
  /** Cap on memory used for spans (bytes); default: all free memory. */
  maxMemoryBytes?: number;
  threads?: number;
  gpu?: 'auto' | 'off';
  logger: Logger;
  /** How this worker dials the next hop (session = its node id; auth = its identity). */
  dialOptions?: Omit<DialOptions, 'session' | 'auth'>;
  /** Free a span this long after the last primary using it disconnected (default 10 minutes). */
  spanIdleMs?: number;
  limits?: Partial<WorkerLimits>;
}

/** A primary's state here, by its key fingerprint. */
interface Owner {
  nodeId: string;
  /** `${span key}/${seq}` -> the held span (its store key) and the span's own sequence id. */
  seqs: Map<string, { span: string; id: number }>;
  /** Store key of each span it loaded -> the nSeqMax it asked for there. */
  reserved: Map<string, number>;
}

const seqKey = (ref: SpanRef, seq: number) => `${spanKey(ref)}/${seq}`;
const ownerOf = (identity: PeerIdentity) => fingerprint(identity.publicKey);

export class WorkerService {
  readonly limits: WorkerLimits;
  private readonly store: SpanStore;
  private readonly nextHops = new Map<string, Promise<Peer>>();
  private readonly owners = new Map<string, Owner>();
  private readonly watched = new WeakSet<Peer>();
  private server: TransportServer | undefined;
  private busyMs = 0;

  constructor(readonly o: WorkerServiceOptions) {
    this.limits = { ...defaultWorkerLimits(), ...o.limits };
    this.store = new SpanStore({
      cacheDir: o.cacheDir,
      modelFiles: o.modelFiles ?? [],
      gpu: o.gpu ?? 'auto',
      ...(o.threads ? { threads: o.threads } : {}),
      maxSpanBytes: Math.min(this.limits.maxSpanBytes, o.maxMemoryBytes ?? Infinity),
      logger: o.logger,
    });
  }

  /** Spans held now (by store key). */
  get spans(): ReadonlyMap<string, HeldSpan> {
    return this.store.spans;
  }

  /** Hashes of the local model files (advertised to the coordinator). */
  get localModelHashes(): string[] {
    return this.store.localModelHashes;
  }

  /** HELLO authentication for the worker's listener: prove our key, admit members only. */
  auth(): PeerAuth {
    return {
      identity: this.o.identity,
      nodeId: this.o.nodeId,
      ...(this.o.joinToken === undefined ? {} : { token: this.o.joinToken }),
      verifyPeer: async (remote) => {
        if ((await this.o.membership.member(remote.nodeId, remote.publicKey)) === undefined) {
          throw new WorkerAuthError('not_member', `${remote.nodeId} is not a member of this federation`, 'a node the coordinator lists as alive with that key', 'unknown', 'register with the coordinator first (start the node with --coordinator-url)');
        }
      },
    };
  }

  /** Frame limits for the worker's listener. */
  frameLimits(): { maxPayloadBytes: number; maxHeaderBytes: number } {
    return { maxPayloadBytes: this.limits.maxFramePayloadBytes, maxHeaderBytes: this.limits.maxFrameHeaderBytes };
  }

  attach(server: TransportServer): void {
    this.server = server;
  }

  freeMemoryBytes(): number {
    const free = getGgml({ gpu: this.o.gpu ?? 'auto', ...(this.o.threads ? { threads: this.o.threads } : {}) }).memory().free;
    return Math.max(0, Math.min(free, (this.o.maxMemoryBytes ?? Number.MAX_SAFE_INTEGER) - this.store.bytes()));
  }

  /** Compute time spent in steps since the last call, as a fraction of `intervalMs` (heartbeat load). */
  takeLoad(intervalMs: number): number {
    const l = this.busyMs / Math.max(1, intervalMs);
    this.busyMs = 0;
    return l;
  }

  methods(): Record<string, MethodSpec> {
    return defineMethods({
      info: () => ({ header: this.info() }),
      load_span: async (h, { peer }) => {
        const { owner, member } = await this.caller(peer, ['primary'], 'load_span');
        if (!member.models.includes(h.modelHash)) {
          throw new WorkerAuthError('forbidden', 'load_span for a model this primary did not register', `one of ${member.models.join(', ') || 'none'}`, h.modelHash, 'a primary may load spans only of the model it registered at the coordinator');
        }
        const { span, answer } = await this.store.load(h, peer, owner);
        this.use(span, peer, owner, member.nodeId);
        this.owner(owner, member.nodeId).reserved.set(span.key, Math.min(h.nSeqMax, this.limits.maxSequencesPerPrimary));
        return { header: answer };
      },
      free_span: async (h, { peer }) => {
        const { owner } = await this.caller(peer, ['primary'], 'free_span');
        const s = this.store.find(h, owner);
        if (s) this.release(s, owner, 0);
        return { header: { ok: true } };
      },
      open_seq: async (h, { peer }) => {
        const { owner, member } = await this.caller(peer, ['primary'], 'open_seq');
        const s = this.mySpan(owner, h);
        const mine = this.owner(owner, member.nodeId);
        const old = mine.seqs.get(seqKey(h, h.seq));
        if (old) s.part.closeSequence(old.id);
        mine.seqs.delete(seqKey(h, h.seq));
        this.checkSequenceLimits(mine, s);
        mine.seqs.set(seqKey(h, h.seq), { span: s.key, id: s.part.openSequence() });
        return { header: { ok: true } };
      },
      close_seq: async (h, { peer }) => {
        const { owner } = await this.caller(peer, ['primary'], 'close_seq');
        const mine = this.owners.get(owner);
        const e = mine?.seqs.get(seqKey(h, h.seq));
        if (e) this.store.spans.get(e.span)?.part.closeSequence(e.id);
        mine?.seqs.delete(seqKey(h, h.seq));
        return { header: { ok: true } };
      },
      truncate_seq: async (h, { peer }) => {
        const { owner } = await this.caller(peer, ['primary'], 'truncate_seq');
        const { span, id } = this.sequence(owner, h, h.seq);
        span.part.truncate(id, h.n);
        return { header: { ok: true } };
      },
      step: (h, { payload, peer }) => void this.step(h, payload, peer),
    });
  }

  info(): InfoResponse {
    return {
      nodeId: this.o.nodeId,
      spans: [...this.store.spans.values()].map((s) => ({ ...s.ref, nCtx: s.nCtx, bytes: s.part.weights.bytes })),
      freeMemoryBytes: this.freeMemoryBytes(),
      threads: getGgml().threads,
      backend: getGgml().backendName,
      openSequences: [...this.store.spans.values()].reduce((n, s) => n + s.part.openSequences.length, 0),
    };
  }

  /** The proven caller of a method, as an alive member of one of `roles`; WorkerAuthError otherwise. */
  private async caller(peer: Peer, roles: NodeRole[], method: string): Promise<{ owner: string; member: Member }> {
    const identity = peer.identity;
    if (identity === undefined) {
      throw new WorkerAuthError('forbidden', `'${method}' on a connection without a proven identity`, 'an authenticated HELLO', 'none', 'connect with the node identity (PeerAuth)');
    }
    const member = await this.o.membership.member(identity.nodeId, identity.publicKey);
    if (member === undefined) {
      throw new WorkerAuthError('not_member', `${identity.nodeId} is no longer a member of this federation`, 'an alive member', 'unknown, dead or left', 'register with the coordinator again');
    }
    if (!roles.includes(member.role)) {
      throw new WorkerAuthError('forbidden', `a ${member.role} may not call '${method}'`, roles.join(' or '), member.role, `only ${roles.join(' or ')} nodes may call it`);
    }
    return { owner: ownerOf(identity), member };
  }

  private owner(owner: string, nodeId: string): Owner {
    let o = this.owners.get(owner);
    if (o === undefined) this.owners.set(owner, (o = { nodeId, seqs: new Map(), reserved: new Map() }));
    return o;
  }

  /** The span `owner` loaded for `ref`; a clear error when it did not (load_span reserves its sequences). */
  private mySpan(owner: string, ref: SpanRef): HeldSpan {
    const s = this.store.find(ref, owner);
    if (!s || !this.owners.get(owner)?.reserved.has(s.key)) {
      throw new SpanSourceError('span not loaded here for this primary', `layers ${spanText(ref.first, ref.last)} of ${ref.modelHash.slice(0, 12)}`, `spans: ${[...this.store.spans.keys()].join(', ') || 'none'}`, 'send load_span first');
    }
    return s;
  }

  /** Sequences per primary (its nSeqMax on the span) and KV memory of all sequences together. */
  private checkSequenceLimits(mine: Owner, s: HeldSpan): void {
    const allowed = mine.reserved.get(s.key) ?? 0;
    const open = [...mine.seqs.values()].filter((e) => e.span === s.key).length;
    if (open >= allowed) {
      throw new WorkerLimitError('too many sequences for this primary on this span', `at most ${allowed} (the nSeqMax it loaded the span with)`, `${open + 1}`, 'close sequences you no longer use, or load the span with a larger nSeqMax');
    }
    const kvBytes = [...this.store.spans.values()].reduce((n, x) => n + x.part.openSequences.length * x.kvBytesPerSeq, 0);
    if (kvBytes + s.kvBytesPerSeq > this.limits.maxKvBytes) {
      throw new WorkerLimitError('no room for another KV cache on this worker', `at most ${this.limits.maxKvBytes} bytes of KV caches`, `${kvBytes + s.kvBytesPerSeq}`, 'close sequences, use a smaller context, or add a worker');
    }
  }

  /** A primary's sequence on a span: the held span and our id; a clear error when it is not open. */
  private sequence(owner: string, ref: SpanRef, seq: number): { span: HeldSpan; id: number } {
    const e = this.owners.get(owner)?.seqs.get(seqKey(ref, seq));
    const span = e === undefined ? undefined : this.store.spans.get(e.span);
    if (e === undefined || span === undefined) throw new SpanSourceError('unknown sequence', `sequence ${seq} opened by this primary on layers ${spanText(ref.first, ref.last)}`, 'not open', 'send open_seq first');
    return { span, id: e.id };
  }

  /** A primary uses a span: keep it loaded, and clean up after the primary when its last connection closes. */
  private use(s: HeldSpan, peer: Peer, owner: string, nodeId: string): void {
    this.store.use(s, owner);
    if (this.watched.has(peer)) return;
    this.watched.add(peer);
    peer.once('close', () => {
      // A primary's gossip connection (gossip-service.ts) holds no sequences: it does not keep them alive.
      const still = this.server?.peers().some((p) => p.identity !== undefined && ownerOf(p.identity) === owner && !isGossipSession(p.session));
      if (!still) this.ownerGone(owner, nodeId);
    });
  }

  private ownerGone(owner: string, nodeId: string): void {
    const mine = this.owners.get(owner);
    for (const e of mine?.seqs.values() ?? []) this.store.spans.get(e.span)?.part.closeSequence(e.id);
    this.owners.delete(owner);
    for (const s of this.store.spans.values()) if (s.users.has(owner)) this.release(s, owner, this.o.spanIdleMs ?? 10 * 60_000);
    this.o.logger.info('primary_gone', { nodeId, sequences: mine?.seqs.size ?? 0 });
  }

  /** `owner` no longer uses `s`: its sequences there close; the span is freed after `idleMs` if nobody uses it. */
  private release(s: HeldSpan, owner: string, idleMs: number): void {
    const mine = this.owners.get(owner);
    for (const [k, e] of mine?.seqs ?? []) {
      if (e.span !== s.key) continue;
      s.part.closeSequence(e.id);
      mine!.seqs.delete(k);
    }
    mine?.reserved.delete(s.key);
    this.store.release(s, owner, idleMs, () => {
      for (const o of this.owners.values()) for (const [k, e] of o.seqs) if (e.span === s.key) o.seqs.delete(k);
    });
  }

  /** The connection of the primary that started steps of `session`: the first (oldest) that announced it. */
  private primaryConnection(session: string): Peer | undefined {
    return this.server?.peers().find((p) => p.session === session && p.identity !== undefined);
  }

  /** Run a step on our span, then hand the result on. Errors go to the primary as step_error. */
  private async step(h: StepMessage, payload: Uint8Array, from: Peer): Promise<void> {
    const primary = this.primaryConnection(h.session);
    const refuse = (why: string) => this.o.logger.warn('step refused', { from: from.identity?.nodeId, session: h.session.slice(0, 16), why });
    if (primary === undefined) return refuse('no primary with that session is connected here');
    const owner = ownerOf(primary.identity!);
    // The primary itself, or a registered worker forwarding its step; nobody else steps its sequences.
    if (from.identity === undefined) return refuse('unauthenticated sender');
    if (ownerOf(from.identity) !== owner) {
      const sender = await this.o.membership.member(from.identity.nodeId, from.identity.publicKey);
      if (sender?.role !== 'worker') return refuse(`a ${sender?.role ?? 'non-member'} may not step another primary's sequences`);
    }
    try {
      const s = this.mySpan(owner, h.span);
      const nTokens = h.groups.reduce((n, g) => n + g.n, 0);
      if (payload.byteLength !== nTokens * h.nEmbd * 4) {
        throw new SpanSourceError('step payload does not match its groups', `${nTokens} tokens x ${h.nEmbd} f32 = ${nTokens * h.nEmbd * 4} bytes`, `${payload.byteLength} bytes`, 'the sender is faulty');
      }
      const t0 = performance.now();
      const all = new Float32Array(payload.buffer.slice(payload.byteOffset, payload.byteOffset + payload.byteLength));
      let off = 0;
      const inputs = h.groups.map((g) => {
        const hidden = all.subarray(off, off + g.n * h.nEmbd);
        off += g.n * h.nEmbd;
        return { seq: this.sequence(owner, h.span, g.seq).id, hidden };
      });
      const out = s.part.step(inputs).hidden!;
      const computeMs = performance.now() - t0;
      this.busyMs += computeMs;
      // With a salt, a fingerprint of what we computed: the primary may recompute it and compare (verify.ts).
      const fp = h.salt === undefined ? undefined : { fp: stepFingerprint(out, h.nEmbd, h.groups, h.salt), fpIn: stepFingerprint(all, h.nEmbd, h.groups, h.salt) };
      const trace = [...(h.trace ?? []), { nodeId: this.o.nodeId, computeMs, ...fp }];
      const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
      const next = h.route[0];
      if (next) {
        try {
          const peer = await this.hop(next);
          notify(peer, 'step', { ...h, span: next.span, route: h.route.slice(1), trace }, bytes);
        } catch (e) {
          notify(primary, 'step_error', { stepId: h.stepId, nodeId: next.nodeId, message: `cannot reach ${next.addr}: ${(e as Error).message}`.slice(0, 2000) });
        }
        return;
      }
      notify(primary, 'step_result', { stepId: h.stepId, nTokens: off / h.nEmbd, trace }, bytes);
    } catch (e) {
      this.o.logger.warn('step failed', { error: (e as Error).message });
      if (!primary.closed) notify(primary, 'step_error', { stepId: h.stepId, nodeId: this.o.nodeId, message: (e as Error).message.slice(0, 2000) });
    }
  }

  /**
   * The connection to a next hop. The hop must be a registered worker at an address it registered (a route
   * cannot make this worker dial anything else), and it must prove that worker's key in HELLO. TLS is pinned
   * to the certificate the worker registered, not to one the route carries.
   */
  private async hop(next: Hop): Promise<Peer> {
    const m = await this.o.membership.find(next.nodeId);
    if (m === undefined || m.role !== 'worker' || !m.addrs.includes(next.addr)) {
      throw new WorkerAuthError('bad_route', 'the route names a hop that is not a registered worker at that address', `one of ${m?.addrs.join(', ') || 'no address (not a registered worker)'}`, `${next.nodeId} at ${next.addr}`, 'routes may only name workers the coordinator lists, at the addresses they registered');
    }
    const key = `${m.nodeId}|${m.publicKey}|${next.addr}`;
    let p = this.nextHops.get(key);
    if (!p) {
      const auth: PeerAuth = {
        identity: this.o.identity,
        nodeId: this.o.nodeId,
        ...(this.o.joinToken === undefined ? {} : { token: this.o.joinToken }),
        verifyPeer: (remote) => {
          if (remote.nodeId !== m.nodeId || remote.publicKey !== m.publicKey) {
            throw new WorkerAuthError('bad_route', 'the next hop is not the worker the route names', `${m.nodeId} with its registered key`, remote.nodeId, 'someone else answers at that address');
          }
        },
      };
      const direct = !next.addr.startsWith('relay://');
      p = dial(next.addr, { ...this.o.dialOptions, session: this.o.nodeId, auth, ...(direct && m.dataPlaneCert ? { peerCert: m.dataPlaneCert } : {}) });
      p.then((peer) => peer.on('close', () => this.nextHops.delete(key))).catch(() => this.nextHops.delete(key));
      this.nextHops.set(key, p);
    }
    return p;
  }

  dispose(): void {
    this.store.dispose();
    this.owners.clear();
    for (const p of this.nextHops.values()) p.then((x) => x.close()).catch(() => undefined);
  }
}
