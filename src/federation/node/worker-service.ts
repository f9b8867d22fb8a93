// What a worker does on the data plane: hold layer spans, keep each sequence's KV cache for them, run steps
// and pass the hidden states on: to the next worker, or back to the primary that started the step.
import type { z } from 'zod';
import { getGgml } from '../../ggml/runtime.ts';
import { loadModelPart } from '../../model/load.ts';
import type { ModelPart } from '../../model/model-part.ts';
import type { Logger } from '../coordinator/log.ts';
import {
  FreeSpanRequest, InfoRequest, type InfoResponse, LoadSpanRequest, SeqRequest, type SpanRef, StepMessage, TruncateRequest,
} from '../protocol-dataplane.ts';
import type { MethodSpec, Peer, TransportServer } from '../transport/rpc.ts';
import { type DialOptions, dial } from './dial.ts';
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
}

interface HeldSpan {
  ref: SpanRef;
  part: ModelPart;
  nCtx: number;
}

const key = (s: SpanRef) => `${s.modelHash}:${s.first}:${s.last}`;

export class WorkerService {
  readonly spans = new Map<string, HeldSpan>();
  private readonly localModels = new Map<string, string>();
  private readonly nextHops = new Map<string, Promise<Peer>>();
  private server: TransportServer | undefined;
  private busyMs = 0;

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
    const m = <S extends z.ZodType>(schema: S, handler: (h: z.infer<S>, payload: Uint8Array, peer: Peer) => unknown): MethodSpec => ({
      schema,
      handler: async ({ header, payload, peer }) => (await handler(header as z.infer<S>, payload, peer)) as never,
    });
    return {
      info: m(InfoRequest, () => ({ header: this.info() })),
      load_span: m(LoadSpanRequest, async (h, _p, peer) => ({ header: await this.loadSpan(h, peer) })),
      free_span: m(FreeSpanRequest, (h) => {
        this.spans.get(key(h))?.part.dispose();
        this.spans.delete(key(h));
        return { header: { ok: true } };
      }),
      open_seq: m(SeqRequest, (h) => {
        const s = this.span(h);
        if (s.part.hasSequence(h.seq)) s.part.closeSequence(h.seq);
        s.part.openSequence(h.seq);
        return { header: { ok: true } };
      }),
      close_seq: m(SeqRequest, (h) => {
        this.spans.get(key(h))?.part.closeSequence(h.seq);
        return { header: { ok: true } };
      }),
      truncate_seq: m(TruncateRequest, (h) => {
        this.span(h).part.truncate(h.seq, h.n);
        return { header: { ok: true } };
      }),
      step: { schema: StepMessage, maxPayloadBytes: 512 << 20, handler: ({ header, payload }) => void this.step(header as StepMessage, payload) },
    };
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

  private span(ref: SpanRef): HeldSpan {
    const s = this.spans.get(key(ref));
    if (!s) throw new SpanSourceError('span not loaded here', `${ref.first}..${ref.last} of ${ref.modelHash.slice(0, 12)}`, `spans: ${[...this.spans.keys()].join(', ') || 'none'}`, 'send load_span first');
    return s;
  }

  private async loadSpan(h: z.infer<typeof LoadSpanRequest>, peer: Peer): Promise<{ source: 'local' | 'cache' | 'stream'; bytes: number; loadMs: number }> {
    const t0 = Date.now();
    const existing = this.spans.get(key(h));
    if (existing) return { source: 'cache', bytes: existing.part.weights.bytes, loadMs: 0 };
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
    this.spans.set(key(h), { ref: { modelHash: h.modelHash, first: h.first, last: h.last }, part, nCtx: h.nCtx });
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
        return { seq: g.seq, hidden };
      });
      const out = s.part.step(inputs).hidden!;
      this.busyMs += performance.now() - t0;
      const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
      const next = h.route[0];
      if (next) {
        let peer: Peer;
        try {
          peer = await this.hop(next.addr, next.cert);
          peer.notify('step', { ...h, span: next.span, route: h.route.slice(1) }, bytes);
        } catch (e) {
          this.nextHops.delete(next.addr);
          primary?.notify('step_error', { stepId: h.stepId, nodeId: next.nodeId, message: `cannot reach ${next.addr}: ${(e as Error).message}` });
        }
        return;
      }
      if (!primary) throw new Error(`the primary (session ${h.session}) is not connected`);
      primary.notify('step_result', { stepId: h.stepId, nTokens: off / h.nEmbd }, bytes);
    } catch (e) {
      this.o.logger.warn('step failed', { error: (e as Error).message });
      primary?.notify('step_error', { stepId: h.stepId, nodeId: this.o.nodeId, message: (e as Error).message });
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
    for (const s of this.spans.values()) s.part.dispose();
    this.spans.clear();
    for (const p of this.nextHops.values()) p.then((x) => x.close()).catch(() => undefined);
  }
}
