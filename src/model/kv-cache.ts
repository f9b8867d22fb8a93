// The KV cache of one sequence over the layers a model part holds.
//
// Per layer: K and V as F16 matrices of shape (headDim * nHeadKv, nCtx), a row per position, the layout
// llama.cpp uses with flash attention. A sequence appends rows; `truncate` rolls back (replay after a
// failover, or a client that edits its prompt).
import type { Ggml } from '../ggml/runtime.ts';
import type { Ptr } from '../ggml/lib.ts';
import { T } from '../ggml/graph.ts';
import type { Tensor } from '../ggml/tensor.ts';
import { OutOfMemoryError, SequenceError } from './errors.ts';

export class SequenceCache {
  readonly id: number;
  readonly nCtx: number;
  readonly width: number;
  readonly first: number;
  /** K and V per layer, indexed by layer - first. */
  readonly k: Tensor[] = [];
  readonly v: Tensor[] = [];
  /** Positions filled so far. */
  nPast = 0;
  /** Per-sequence norm weight overrides (adapters), by tensor name. */
  normOverrides: ReadonlyMap<string, Float32Array> | undefined;
  /** Its slot (row) in the part's GainBank (its gains on the backend), or 0 for the base gains. */
  gainSlot = 0;
  private readonly ggml: Ggml;
  private readonly ctx: Ptr;
  private readonly buffer: Ptr | null;
  private disposed = false;

  constructor(ggml: Ggml, id: number, first: number, last: number, width: number, nCtx: number) {
    this.ggml = ggml;
    this.id = id;
    this.first = first;
    this.width = width;
    this.nCtx = nCtx;
    const L = ggml.lib;
    const nLayers = last - first;
    this.ctx = L.ggml_init({ mem_size: L.ggml_tensor_overhead() * (2 * nLayers + 1), mem_buffer: null, no_alloc: true }) as Ptr;
    for (let i = 0; i < nLayers; i++) {
      // (width, nCtx) F16: one row per position
      this.k.push(L.ggml_new_tensor_2d(this.ctx, T.F16, width, nCtx));
      this.v.push(L.ggml_new_tensor_2d(this.ctx, T.F16, width, nCtx));
    }
    if (nLayers === 0) {
      this.buffer = null;
      return;
    }
    const buft = ggml.gpu ? L.ggml_backend_dev_buffer_type(ggml.gpu.dev) : ggml.cpuBuft;
    this.buffer = L.ggml_backend_alloc_ctx_tensors_from_buft(this.ctx, buft) as Ptr | null;
    if (!this.buffer) {
      L.ggml_free(this.ctx);
      throw new OutOfMemoryError('cannot allocate the KV cache', `${cacheBytes(width, nCtx, nLayers)} bytes`, 'allocation failed', 'use a smaller --ctx-size or close other sequences');
    }
    L.ggml_backend_buffer_clear(this.buffer, 0);
  }

  layer(il: number): { k: Tensor; v: Tensor } {
    const i = il - this.first;
    const k = this.k[i];
    const v = this.v[i];
    if (!k || !v) throw new SequenceError('layer not in this part', `a layer in [${this.first}, ${this.first + this.k.length})`, String(il), 'route the step to the part that holds the layer');
    return { k, v };
  }

  truncate(n: number): void {
    if (n < 0 || n > this.nPast) throw new SequenceError('bad truncate length', `0..${this.nPast}`, String(n), 'truncate to a length the sequence has');
    this.nPast = n;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.buffer) this.ggml.lib.ggml_backend_buffer_free(this.buffer);
    this.ggml.lib.ggml_free(this.ctx);
  }
}

export function cacheBytes(width: number, nCtx: number, nLayers: number): number {
  return 2 * nLayers * width * nCtx * 2;
}
