// Weights for a worker's span: from its own copy of the GGUF (same content hash), from its on-disk cache, or
// streamed from the primary tensor by tensor, each checked against the sha256 the primary announced, then
// cached as a span-only GGUF named by hash. Never the whole model: only the span's tensors cross the wire.
//
// Why the cache is keyed by the streaming primary's key (`origin`): the model's content hash is the sha256 of
// the WHOLE file, so a worker that receives only a span cannot check the span against it; the per-tensor
// hashes come from the same primary as the tensors. A stream is therefore exactly as trustworthy as the
// primary that sent it (which must be an alive primary that registered that model hash at the coordinator).
// Caching it under that primary's key means a span streamed by one primary is only ever served back to that
// same key (after a restart, say), never to another primary after failover: a tampered stream can hurt only
// its sender. Spans loaded from the worker's own file (whose hash the worker computed itself) are shared.
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { GgufFile } from '../../gguf/file.ts';
import { openGguf } from '../../gguf/reader.ts';
import type { GgufValue } from '../../gguf/value.ts';
import { writeGguf } from '../../gguf/writer.ts';
import { ModelError } from '../../model/errors.ts';
import type { SpanManifestResponse, SpanRef } from '../protocol-dataplane.ts';
import { call } from '../dataplane.ts';
import type { Peer } from '../transport/rpc.ts';
import { sha256 } from './model-hash.ts';
import { WorkerLimitError } from './worker-limits.ts';

export class SpanSourceError extends ModelError {}

const LAYER = /^blk\.(\d+)\./;

/** Primary side: serve manifests and tensors of spans of one model file. */
export class SpanServer {
  private file: GgufFile | undefined;
  private readonly hashes = new Map<string, string>();

  constructor(readonly path: string, readonly modelHash: string) {}

  private gguf(): GgufFile {
    this.file ??= openGguf(this.path);
    return this.file;
  }

  manifest(span: SpanRef): SpanManifestResponse {
    this.check(span.modelHash);
    const f = this.gguf();
    const arch = f.metadata.getString('general.architecture');
    const metadata: Record<string, unknown> = {};
    for (const [k, v] of f.metadata) if (k.startsWith('general.') || k.startsWith(`${arch}.`)) metadata[k] = toJson(v);
    const tensors = f.tensorInfos
      .filter((t) => {
        const m = LAYER.exec(t.name);
        return m ? Number(m[1]) >= span.first && Number(m[1]) < span.last : t.name === 'rope_freqs.weight';
      })
      .map((t) => ({ name: t.name, type: t.type, dims: [...t.dims], byteSize: t.byteSize, sha256: this.tensorHash(t.name) }));
    return { metadata, tensors };
  }

  tensor(modelHash: string, name: string): Uint8Array {
    this.check(modelHash);
    if (!LAYER.test(name) && name !== 'rope_freqs.weight') {
      throw new SpanSourceError('only layer tensors are served', 'blk.N.* or rope_freqs.weight', name, 'the embeddings and the head stay on the primary');
    }
    return this.gguf().readTensor(name);
  }

  private tensorHash(name: string): string {
    let h = this.hashes.get(name);
    if (!h) {
      h = sha256(this.gguf().readTensor(name));
      this.hashes.set(name, h);
    }
    return h;
  }

  private check(hash: string): void {
    if (hash !== this.modelHash) throw new SpanSourceError('unknown model', this.modelHash, hash, 'the primary serves only the model it runs');
  }

  dispose(): void {
    this.file?.dispose();
    this.file = undefined;
  }
}

/** The cached span streamed by the primary whose key fingerprint is `origin` (see the header comment). */
export function spanCachePath(cacheDir: string, span: SpanRef, origin: string): string {
  if (!/^[0-9a-f]{16}$/.test(origin)) throw new SpanSourceError('bad span origin', 'a 16-hex key fingerprint', origin, 'this is a bug');
  return join(cacheDir, 'spans', `${span.modelHash}-${span.first}-${span.last}-${origin}.gguf`);
}

export interface FetchSpanOptions {
  /** Fingerprint of the streaming primary's key: the cache file is its alone. */
  origin: string;
  /** Refuse a span whose tensors add up to more than this (bytes). */
  maxBytes: number;
  onProgress?: (done: number, total: number) => void;
}

/** Worker side: fetch a span from the primary over `peer`, check every tensor, write the span file. */
export async function fetchSpan(peer: Peer, span: SpanRef, cacheDir: string, opts: FetchSpanOptions): Promise<string> {
  const out = spanCachePath(cacheDir, span, opts.origin);
  if (existsSync(out)) return out;
  const { header: manifest } = await call(peer, 'span_manifest', span, { timeoutMs: 120_000 });
  const total = manifest.tensors.reduce((n, t) => n + t.byteSize, 0);
  if (total > opts.maxBytes) {
    throw new WorkerLimitError('the span does not fit this worker', `at most ${opts.maxBytes} bytes of weights`, `${total} bytes`, 'give this worker fewer layers, or more memory (--max-memory)');
  }
  for (const t of manifest.tensors) {
    const m = LAYER.exec(t.name);
    const inSpan = m ? Number(m[1]) >= span.first && Number(m[1]) < span.last : t.name === 'rope_freqs.weight';
    if (!inSpan) throw new SpanSourceError('the manifest names a tensor outside the span', `blk.${span.first}..${span.last - 1}.* or rope_freqs.weight`, t.name, 'the primary is faulty');
  }
  const data = new Map<string, Uint8Array>();
  let done = 0;
  for (const t of manifest.tensors) {
    const { payload } = await call(peer, 'span_tensor', { modelHash: span.modelHash, name: t.name }, { timeoutMs: 300_000 });
    if (payload.byteLength !== t.byteSize) throw new SpanSourceError(`tensor ${t.name} has the wrong size`, String(t.byteSize), String(payload.byteLength), 'the transfer was cut; retry');
    const got = sha256(payload);
    if (got !== t.sha256) throw new SpanSourceError(`tensor ${t.name} failed its hash check`, t.sha256, got, 'the data was corrupted in transit or the primary changed its file; retry');
    data.set(t.name, payload);
    done += t.byteSize;
    opts.onProgress?.(done, total);
  }
  const metadata = new Map<string, GgufValue>(Object.entries(manifest.metadata).map(([k, v]) => [k, fromJson(v as JsonValue)]));
  mkdirSync(join(cacheDir, 'spans'), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  try {
    writeGguf(tmp, { metadata, tensors: manifest.tensors.map((t) => ({ name: t.name, type: t.type, dims: t.dims, data: data.get(t.name)! })) });
    renameSync(tmp, out);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  return out;
}

// GGUF values as JSON: bigints and typed arrays become tagged plain values.
type JsonValue = { type: number; value: unknown; itemType?: number; big?: boolean };

function toJson(v: GgufValue): JsonValue {
  if (typeof v.value === 'bigint') return { type: v.type, value: v.value.toString(), big: true };
  if (v.type === 9) {
    const arr = v.value as ArrayLike<unknown>;
    const plain = Array.from(arr, (x) => (typeof x === 'bigint' ? x.toString() : x));
    return { type: 9, itemType: (v as { itemType: number }).itemType, value: plain, big: typeof arr[0] === 'bigint' };
  }
  return { type: v.type, value: v.value };
}

const TYPED: Record<number, (xs: number[]) => ArrayLike<number>> = {
  0: (x) => Uint8Array.from(x), 1: (x) => Int8Array.from(x), 2: (x) => Uint16Array.from(x), 3: (x) => Int16Array.from(x),
  4: (x) => Uint32Array.from(x), 5: (x) => Int32Array.from(x), 6: (x) => Float32Array.from(x), 12: (x) => Float64Array.from(x),
};

function fromJson(j: JsonValue): GgufValue {
  if (j.type === 9) {
    const it = j.itemType!;
    const xs = j.value as unknown[];
    let value: unknown = xs;
    if (it === 10) value = BigUint64Array.from(xs as string[], (s) => BigInt(s));
    else if (it === 11) value = BigInt64Array.from(xs as string[], (s) => BigInt(s));
    else if (TYPED[it]) value = TYPED[it]!(xs as number[]);
    return { type: 9, itemType: it, value } as GgufValue;
  }
  if (j.big) return { type: j.type, value: BigInt(j.value as string) } as GgufValue;
  return { type: j.type, value: j.value } as GgufValue;
}
