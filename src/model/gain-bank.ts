// Per-sequence norm gains (per-user adapters) held on the backend for the life of a sequence.
//
// One tensor per norm of the part, (n_norm, capacity) F32: column 0 holds the base gains, each adapted
// sequence gets a slot (a column) of its own, uploaded once when its overrides are set and freed when it
// closes. A step then picks each row's gains with one get_rows over the norm's tensor (graphs/blocks.ts
// rmsNorm) and uploads nothing but one row -> slot index per step. Allocated on the first adapted sequence
// (a part that never serves an adapter holds nothing); capacity doubles when full (everything re-uploaded).
import { T } from '../ggml/graph.ts';
import type { Ptr } from '../ggml/lib.ts';
import type { Ggml } from '../ggml/runtime.ts';
import type { Tensor } from '../ggml/tensor.ts';
import { OutOfMemoryError } from './errors.ts';

export const GAIN_BANK = {
  /** Slots (base included) allocated with the first adapted sequence; doubled each time they run out. */
  initialSlots: 9,
} as const;

export class GainBank {
  private readonly ggml: Ggml;
  private readonly norms: ReadonlyMap<string, Float32Array>;
  /** Per slot: the overrides uploaded there (slot 0: the base, never assigned). */
  private readonly held: (ReadonlyMap<string, Float32Array> | undefined)[] = [];
  private readonly tensors = new Map<string, Tensor>();
  private ctx: Ptr | null = null;
  private buffer: Ptr | null = null;
  private capacity = 0;

  constructor(ggml: Ggml, norms: ReadonlyMap<string, Float32Array>) {
    this.ggml = ggml;
    this.norms = norms;
  }

  /** Upload `overrides` into `slot` (or a new slot when 0); returns the slot. Names the part lacks are ignored. */
  set(slot: number, overrides: ReadonlyMap<string, Float32Array>): number {
    let s = slot;
    if (s === 0) {
      s = this.held.findIndex((h, i) => i > 0 && h === undefined);
      if (s < 0) s = Math.max(1, this.held.length);
      if (s >= this.capacity) this.grow(Math.max(GAIN_BANK.initialSlots, 2 * this.capacity));
    }
    this.held[s] = overrides;
    this.upload(s);
    return s;
  }

  /** Free a slot (its column keeps stale values until reused; no row points at it any more). */
  release(slot: number): void {
    if (slot > 0) this.held[slot] = undefined;
  }

  /** (n_norm, capacity) F32 gains of one norm, or undefined when no adapted sequence was ever opened. */
  tensor(name: string): Tensor | undefined {
    return this.tensors.get(name);
  }

  dispose(): void {
    this.free();
    this.held.length = 0;
    this.capacity = 0;
  }

  private grow(capacity: number): void {
    const L = this.ggml.lib;
    this.free();
    const ctx = L.ggml_init({ mem_size: L.ggml_tensor_overhead() * (this.norms.size + 1), mem_buffer: null, no_alloc: true }) as Ptr;
    for (const [name, base] of this.norms) this.tensors.set(name, L.ggml_new_tensor_2d(ctx, T.F32, base.length, capacity));
    const buft = this.ggml.gpu ? L.ggml_backend_dev_buffer_type(this.ggml.gpu.dev) : this.ggml.cpuBuft;
    const buffer = L.ggml_backend_alloc_ctx_tensors_from_buft(ctx, buft) as Ptr | null;
    if (!buffer) {
      L.ggml_free(ctx);
      this.tensors.clear();
      throw new OutOfMemoryError('cannot allocate the adapters\' norm gains', `${capacity} slots of ${this.slotBytes()} bytes`, 'allocation failed', 'serve fewer adapted sequences at once');
    }
    this.ctx = ctx;
    this.buffer = buffer;
    this.capacity = capacity;
    this.held[0] = undefined;
    this.upload(0);
    for (let s = 1; s < this.held.length; s++) if (this.held[s]) this.upload(s);
  }

  /** Write slot `s`'s column of every norm: its override where it has one, the base gains elsewhere. */
  private upload(s: number): void {
    const L = this.ggml.lib;
    const o = this.held[s];
    for (const [name, base] of this.norms) {
      const v = o?.get(name) ?? base;
      L.ggml_backend_tensor_set(this.tensors.get(name)!, v, s * base.length * 4, base.length * 4);
    }
  }

  private slotBytes(): number {
    let n = 0;
    for (const b of this.norms.values()) n += b.length * 4;
    return n;
  }

  private free(): void {
    const L = this.ggml.lib;
    if (this.buffer) L.ggml_backend_buffer_free(this.buffer);
    if (this.ctx) L.ggml_free(this.ctx);
    this.buffer = null;
    this.ctx = null;
    this.tensors.clear();
  }
}
