// What a worker does on the data plane: hold layer spans, keep each sequence's KV cache for them, run steps
// and pass the hidden states on: to the next worker, or back to the primary that started the step.
//
// Several primaries may use one worker, even the same span of the same model (the weights are then shared):
// each primary numbers its sequences itself, so a sequence is known here by (primary session, span, seq) and
// mapped to an id of our own. When a primary's last connection closes, its sequences are freed at once (a
// primary that loses a worker bans it and re-plans, it never comes back to those caches), and a span no
// primary uses any more is freed after `spanIdleMs` (a primary restarting within that time finds it loaded).
import { getGgml } from '../../ggml/runtime.ts';
import { loadModelPart } from '../../model/load.ts';
import type { ModelPart } from '../../model/model-part.ts';
import type { Logger } from '../../util/log.ts';
import { defineMethods, notify } from '../dataplane.ts';
import type { InfoResponse, LoadSpanResponse, ParsedRequestOf, SpanRef, StepMessage } from '../protocol-dataplane.ts';
import type { MethodSpec, Peer, TransportServer } from '../transport/rpc.ts';
import { type DialOptions, dial } from './dial.ts';
import { stepFingerprint } from './fingerprint.ts';
import { hashFile } from './model-hash.ts';
import { SpanSourceError, fetchSpan } from './span-source.ts';

export interface WorkerServiceOptions {
  nodeId: string;
  cacheDir: string;
  /** Local GGUF files this worker may load spans from (matched by content hash). */
  modelFiles?: readonly string[];
  /** Cap on memory used for spans (bytes); default: all free memory. */
  maxMemoryBytes?: number;
  threads?: number;
  gpu?: 'auto' | 'off';
  logger: Logger;
  /** How this worker dials the next hop (session = its node id). */
  dialOptions?: Omit<DialOptions, 'session'>;
  /** Free a span this long after the last primary using it disconnected (default 10 minutes). */
  spanIdleMs?: number;
}

interface HeldSpan {
  ref: SpanRef;
  part: ModelPart;
  nCtx: number;
  /** Sessions of the primaries that loaded it. */
  users: Set<string>;
  idleTimer?: NodeJS.Timeout;
}

const key = (s: SpanRef) => `${s.modelHash}:${s.first}:${s.last}`;

export class WorkerService {
  readonly spans = new Map<string, HeldSpan>();
  private readonly localModels = new Map<string, string>();
  private readonly nextHops = new Map<string, Promise<Peer>>();
  private server: TransportServer | undefined;
  private busyMs = 0;
  /** Per primary session: `${span key}/${seq}` -> the span (its key) and the span's own sequence id. */
  private readonly seqIds = new Map<string, Map<string, { span: string; id: number }>>();
  private readonly watched = new WeakSet<Peer>();

  constructor(readonly o: WorkerServiceOptions) {
    for (const f of o.modelFiles ?? []) this.localModels.set(hashFile(f, o.cacheDir), f);
  }

  /** Hashes of the local model files (advertised to the coordinator). */
  get localModelHashes(): string[] {
    return [...this.localModels.keys()];
  }

  attach(server: TransportServer): void {
    this.server = server;
  }

  freeMemoryBytes(): number {
    const used = [...this.spans.values()].reduce((n, s) => n + s.part.weights.bytes, 0);
    const free = getGgml({ gpu: this.o.gpu ?? 'auto', ...(this.o.threads ? { threads: this.o.threads } : {}) }).memory().free;
    return Math.max(0, Math.min(free, (this.o.maxMemoryBytes ?? Number.MAX_SAFE_INTEGER) - used));
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
        const r = await this.loadSpan(h, peer);
        this.use(this.span(h), peer);
        return { header: r };
      },
      free_span: (h, { peer }) => {
        const s = this.spans.get(key(h));
        if (s) this.release(s, sessionOf(peer), 0);
        return { header: { ok: true } };
      },
      open_seq: (h, { peer }) => {
        const s = this.span(h);
        this.use(s, peer);
        const mine = this.seqIds.get(sessionOf(peer)) ?? this.seqIds.set(sessionOf(peer), new Map()).get(sessionOf(peer))!;
        const old = mine.get(seqKey(h, h.seq));
        if (old) s.part.closeSequence(old.id);
        mine.set(seqKey(h, h.seq), { span: key(h), id: s.part.openSequence() });
        return { header: { ok: true } };
      },
      close_seq: (h, { peer }) => {
        const mine = this.seqIds.get(sessionOf(peer));
        const e = mine?.get(seqKey(h, h.seq));
        if (e) this.spans.get(e.span)?.part.closeSequence(e.id);
        mine?.delete(seqKey(h, h.seq));
        return { header: { ok: true } };
      },
      truncate_seq: (h, { peer }) => {
        this.span(h).part.truncate(this.seqId(sessionOf(peer), h, h.seq), h.n);
        return { header: { ok: true } };
      },
      step: (h, { payload }) => void this.step(h, payload),
    });
  }

  info(): InfoResponse {
    return {
      nodeId: this.o.nodeId,
      spans: [...this.spans.values()].map((s) => ({ ...s.ref, nCtx: s.nCtx, bytes: s.part.weights.bytes })),
      freeMemoryBytes: this.freeMemoryBytes(),
      threads: getGgml().threads,
      backend: getGgml().backendName,
      openSequences: [...this.spans.values()].reduce((n, s) => n + s.part.openSequences.length, 0),
    };
  }

  /** Our id for a primary's sequence on a span; a clear error when it was never opened (or was freed). */
  private seqId(session: string, ref: SpanRef, seq: number): number {
    const id = this.seqIds.get(session)?.get(seqKey(ref, seq))?.id;
    if (id === undefined) throw new SpanSourceError('unknown sequence', `sequence ${seq} opened by this primary on ${ref.first}..${ref.last}`, 'not open', 'send open_seq first');
    return id;
  }

  /** A primary uses a span: keep it loaded, and clean up after the primary when its last connection closes. */
  private use(s: HeldSpan, peer: Peer): void {
    const session = sessionOf(peer);
    s.users.add(session);
    clearTimeout(s.idleTimer);
    s.idleTimer = undefined;
    if (this.watched.has(peer)) return;
    this.watched.add(peer);
    peer.once('close', () => {
      if (this.server?.peerBySession(session)) return; // it still has another connection here
      this.sessionGone(session);
    });
  }

  private sessionGone(session: string): void {
    const mine = this.seqIds.get(session) ?? new Map();
    for (const e of mine.values()) this.spans.get(e.span)?.part.closeSequence(e.id);
    this.seqIds.delete(session);
    const n = mine.size;
    for (const s of this.spans.values()) if (s.users.has(session)) this.release(s, session, this.o.spanIdleMs ?? 10 * 60_000);
    this.o.logger.info('primary gone; its sequences freed', { session, sequences: n });
  }

  /** `session` no longer uses `s`; free it after `idleMs` if no other primary does. */
  private release(s: HeldSpan, session: string, idleMs: number): void {
    s.users.delete(session);
    if (s.users.size > 0) return;
    clearTimeout(s.idleTimer);
    const free = () => {
      if (s.users.size > 0 || this.spans.get(key(s.ref)) !== s) return;
      for (const mine of this.seqIds.values()) for (const [k, e] of mine) if (e.span === key(s.ref)) mine.delete(k);
      s.part.dispose();
      this.spans.delete(key(s.ref));
      this.o.logger.info('span freed', { first: s.ref.first, last: s.ref.last, reason: idleMs > 0 ? `no primary used it for ${Math.round(idleMs / 1000)} s` : 'free_span' });
    };
    if (idleMs <= 0) free();
    else (s.idleTimer = setTimeout(free, idleMs)).unref();
  }

  private span(ref: SpanRef): HeldSpan {
    const s = this.spans.get(key(ref));
    if (!s) throw new SpanSourceError('span not loaded here', `${ref.first}..${ref.last} of ${ref.modelHash.slice(0, 12)}`, `spans: ${[...this.spans.keys()].join(', ') || 'none'}`, 'send load_span first');
    return s;
  }

  private async loadSpan(h: ParsedRequestOf<'load_span'>, peer: Peer): Promise<LoadSpanResponse> {
    const t0 = Date.now();
    const existing = this.spans.get(key(h));
    if (existing) {
      // Another primary loaded it (or this one, before a restart): share the weights; caches are per sequence.
      if (existing.nCtx < h.nCtx) {
        throw new SpanSourceError('span already loaded with a smaller context', `n_ctx >= ${h.nCtx}`, String(existing.nCtx), 'use the same --ctx-size on every primary of this model, or a worker of its own');
      }
      return { source: 'cache', bytes: existing.part.weights.bytes, loadMs: 0 };
    }
    let path = this.localModels.get(h.modelHash);
    let source: 'local' | 'cache' | 'stream' = 'local';
    if (!path) {
      const { spanCachePath } = await import('./span-source.ts');
      const cached = spanCachePath(this.o.cacheDir, h);
      const { existsSync } = await import('node:fs');
      source = existsSync(cached) ? 'cache' : 'stream';
      path = await fetchSpan(peer, h, this.o.cacheDir);
    }
    const { part } = await loadModelPart(path, {
      gpu: this.o.gpu ?? 'auto',
      ...(this.o.threads ? { threads: this.o.threads } : {}),
      layout: { embeddings: false, first: h.first, last: h.last, head: false },
      nCtx: h.nCtx,
      nSeqMax: h.nSeqMax,
    });
    this.spans.set(key(h), { ref: { modelHash: h.modelHash, first: h.first, last: h.last }, part, nCtx: h.nCtx, users: new Set() });
    this.o.logger.info('span loaded', { first: h.first, last: h.last, source, bytes: part.weights.bytes });
    return { source, bytes: part.weights.bytes, loadMs: Date.now() - t0 };
  }

  /** Run a step on our span, then hand the result on. Errors go to the primary as step_error. */
  private async step(h: StepMessage, payload: Uint8Array): Promise<void> {
    const primary = this.server?.peerBySession(h.session);
    try {
      const s = this.span(h.span);
      const t0 = performance.now();
      const all = new Float32Array(payload.buffer.slice(payload.byteOffset, payload.byteOffset + payload.byteLength));
      let off = 0;
      const inputs = h.groups.map((g) => {
        const hidden = all.subarray(off, off + g.n * h.nEmbd);
        off += g.n * h.nEmbd;
        return { seq: this.seqId(h.session, h.span, g.seq), hidden };
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
        let peer: Peer;
        try {
          peer = await this.hop(next.addr, next.cert);
          notify(peer, 'step', { ...h, span: next.span, route: h.route.slice(1), trace }, bytes);
        } catch (e) {
          this.nextHops.delete(next.addr);
          if (primary) notify(primary, 'step_error', { stepId: h.stepId, nodeId: next.nodeId, message: `cannot reach ${next.addr}: ${(e as Error).message}`.slice(0, 2000) });
        }
        return;
      }
      if (!primary) throw new Error(`the primary (session ${h.session}) is not connected`);
      notify(primary, 'step_result', { stepId: h.stepId, nTokens: off / h.nEmbd, trace }, bytes);
    } catch (e) {
      this.o.logger.warn('step failed', { error: (e as Error).message });
      if (primary) notify(primary, 'step_error', { stepId: h.stepId, nodeId: this.o.nodeId, message: (e as Error).message.slice(0, 2000) });
    }
  }

  /** The connection to a next hop, kept per address; TLS pinned to the hop's certificate when it has one. */
  private hop(addr: string, cert: string | undefined): Promise<Peer> {
    let p = this.nextHops.get(addr);
    if (!p) {
      p = dial(addr, { ...this.o.dialOptions, session: this.o.nodeId, ...(cert ? { peerCert: cert } : {}) });
      p.then((peer) => peer.on('close', () => this.nextHops.delete(addr))).catch(() => this.nextHops.delete(addr));
      this.nextHops.set(addr, p);
    }
    return p;
  }

  dispose(): void {
    for (const s of this.spans.values()) {
      clearTimeout(s.idleTimer);
      s.part.dispose();
    }
    this.seqIds.clear();
    this.spans.clear();
    for (const p of this.nextHops.values()) p.then((x) => x.close()).catch(() => undefined);
  }
}

const seqKey = (ref: SpanRef, seq: number) => `${key(ref)}/${seq}`;

function sessionOf(peer: Peer): string {
  if (!peer.session) throw new SpanSourceError('no session', 'a peer that said HELLO', 'none', 'reconnect');
  return peer.session;
}
