// The spans a worker holds, keyed by where their weights came from: spans loaded from the worker's own copy of
// the model (it hashed that file itself) are shared by every primary of that model; a span streamed by a
// primary is held (in memory and in the disk cache) under that primary's key and served back to it alone, so a
// tampered stream never reaches another primary (see span-source.ts). Span memory is capped in all.
import { existsSync } from 'node:fs';
import { openGguf } from '../../gguf/reader.ts';
import { kvWidth } from '../../model/hparams.ts';
import { loadModelPart } from '../../model/load.ts';
import type { ModelPart } from '../../model/model-part.ts';
import type { Logger } from '../../util/log.ts';
import type { LoadSpanResponse, ParsedRequestOf, SpanRef } from '../protocol-dataplane.ts';
import type { Peer } from '../transport/rpc.ts';
import { hashFile } from './model-hash.ts';
import { SpanSourceError, fetchSpan, spanCachePath } from './span-source.ts';
import { WorkerLimitError } from './worker-limits.ts';

export interface HeldSpan {
  /** Store key: span and origin. */
  key: string;
  ref: SpanRef;
  /** 'local' (our own file) or the key fingerprint of the primary that streamed it. */
  origin: string;
  part: ModelPart;
  nCtx: number;
  /** f16 K and V of every layer of the span for one sequence of nCtx positions. */
  kvBytesPerSeq: number;
  /** Key fingerprints of the primaries that use it. */
  users: Set<string>;
  idleTimer?: NodeJS.Timeout;
}

export interface SpanStoreOptions {
  cacheDir: string;
  modelFiles: readonly string[];
  gpu: 'auto' | 'off';
  threads?: number;
  /** Weights of all held spans together, at most (bytes). */
  maxSpanBytes: number;
  logger: Logger;
}

export const spanKey = (s: SpanRef) => `${s.modelHash}:${s.first}:${s.last}`;
const storeKey = (s: SpanRef, origin: string) => `${spanKey(s)}@${origin}`;

export class SpanStore {
  readonly spans = new Map<string, HeldSpan>();
  private readonly localModels = new Map<string, string>();

  constructor(private readonly options: SpanStoreOptions) {
    for (const f of options.modelFiles) this.localModels.set(hashFile(f, options.cacheDir), f);
  }

  get localModelHashes(): string[] {
    return [...this.localModels.keys()];
  }

  /** Bytes of weights held. */
  bytes(): number {
    return [...this.spans.values()].reduce((n, s) => n + s.part.weights.bytes, 0);
  }

  /** The span `owner` may use for `ref`: ours (from our own file), else the one it streamed itself. */
  find(ref: SpanRef, owner: string): HeldSpan | undefined {
    return this.spans.get(storeKey(ref, 'local')) ?? this.spans.get(storeKey(ref, owner));
  }

  use(s: HeldSpan, owner: string): void {
    s.users.add(owner);
    clearTimeout(s.idleTimer);
    s.idleTimer = undefined;
  }

  /** `owner` no longer uses `s`; free it after `idleMs` if nobody else does (`onFree` runs just before). */
  release(s: HeldSpan, owner: string, idleMs: number, onFree: () => void): void {
    s.users.delete(owner);
    if (s.users.size > 0) return;
    clearTimeout(s.idleTimer);
    const free = () => {
      if (s.users.size > 0 || this.spans.get(s.key) !== s) return;
      onFree();
      s.part.dispose();
      this.spans.delete(s.key);
      this.options.logger.info('span freed', { first: s.ref.first, last: s.ref.last, reason: idleMs > 0 ? `no primary used it for ${Math.round(idleMs / 1000)} s` : 'free_span' });
    };
    if (idleMs <= 0) free();
    else (s.idleTimer = setTimeout(free, idleMs)).unref();
  }

  /** Hold a span for `owner` (the streaming primary's key fingerprint, when it must be streamed from `peer`). */
  async load(h: ParsedRequestOf<'load_span'>, peer: Peer, owner: string): Promise<{ span: HeldSpan; answer: LoadSpanResponse }> {
    const t0 = Date.now();
    const existing = this.find(h, owner);
    if (existing) {
      // Another primary loaded it from our own file (or this one, before a restart): share the weights.
      if (existing.nCtx < h.nCtx) {
        throw new SpanSourceError('span already loaded with a smaller context', `n_ctx >= ${h.nCtx}`, String(existing.nCtx), 'use the same --ctx-size on every primary of this model, or a worker of its own');
      }
      return { span: existing, answer: { source: 'cache', bytes: existing.part.weights.bytes, loadMs: 0 } };
    }
    const room = this.options.maxSpanBytes - this.bytes();
    let path = this.localModels.get(h.modelHash);
    let source: 'local' | 'cache' | 'stream' = 'local';
    const origin = path === undefined ? owner : 'local';
    if (path === undefined) {
      source = existsSync(spanCachePath(this.options.cacheDir, h, origin)) ? 'cache' : 'stream';
      path = await fetchSpan(peer, h, this.options.cacheDir, { origin, maxBytes: room });
    } else {
      const file = openGguf(path);
      const bytes = file.tensorsForLayers(h.first, h.last).reduce((n, t) => n + t.byteSize, 0);
      file.dispose();
      if (bytes > room) throw new WorkerLimitError('the span does not fit this worker', `at most ${room} bytes of weights`, `${bytes} bytes`, 'give this worker fewer layers, or more memory (--max-memory)');
    }
    const { part } = await loadModelPart(path, {
      gpu: this.options.gpu,
      ...(this.options.threads ? { threads: this.options.threads } : {}),
      layout: { embeddings: false, first: h.first, last: h.last, head: false },
      nCtx: h.nCtx,
      nSeqMax: h.nSeqMax,
    });
    if (part.weights.bytes > room) {
      part.dispose();
      throw new WorkerLimitError('the span does not fit this worker', `at most ${room} bytes of weights`, `${part.weights.bytes} bytes`, 'give this worker fewer layers, or more memory (--max-memory)');
    }
    const ref = { modelHash: h.modelHash, first: h.first, last: h.last };
    const span: HeldSpan = { key: storeKey(ref, origin), ref, origin, part, nCtx: h.nCtx, kvBytesPerSeq: 2 * (h.last - h.first) * kvWidth(part.h) * h.nCtx * 2, users: new Set() };
    this.spans.set(span.key, span);
    this.options.logger.info('span loaded', { first: h.first, last: h.last, source, origin, bytes: part.weights.bytes });
    return { span, answer: { source, bytes: part.weights.bytes, loadMs: Date.now() - t0 } };
  }

  dispose(): void {
    for (const s of this.spans.values()) {
      clearTimeout(s.idleTimer);
      s.part.dispose();
    }
    this.spans.clear();
  }
}
