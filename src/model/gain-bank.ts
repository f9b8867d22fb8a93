// Per-sequence norm gains (per-user adapters) held on the backend for the life of a sequence.
//
// One tensor (slot_floats, capacity) F32: a row per slot holding every norm of the part end to end (each
// at its `offset`). Row 0 holds the base gains; each adapted sequence gets a slot of its own, uploaded once
// when its overrides are set and freed when it closes. A step picks each row's gains with get_rows over the
// bank (graphs/blocks.ts rmsNorm) and uploads nothing but one row -> slot index per step. Allocated on the
// first adapted sequence (a part that never serves an adapter holds nothing); capacity doubles when full
// (everything re-uploaded).
import { T } from '../ggml/graph.ts';
import type { Ptr } from '../ggml/lib.ts';
import type { Ggml } from '../ggml/runtime.ts';
import type { Tensor } from '../ggml/tensor.ts';
import { OutOfMemoryError } from './errors.ts';

export const GAIN_BANK = {
  /** Slots (base included) allocated with the first adapted sequence; doubled each time they run out. */
  initialSlots: 9,
  /**
   * Bytes of gains a step may gather at once for all norms (one get_rows, one graph node, for a decode step);
   * above it (long prefills, big models) each norm gathers its own rows.
   */
  gatherAllBytes: 4 << 20,
} as const;

export class GainBank {
  private readonly ggml: Ggml;
  private readonly norms: ReadonlyMap<string, Float32Array>;
  /** Per slot: the overrides uploaded there (slot 0: the base, never assigned). */
  private readonly held: (ReadonlyMap<string, Float32Array> | undefined)[] = [];
  /** Where each norm starts in a slot's row, in floats. */
  private readonly offsets = new Map<string, number>();
  /** Floats in one slot's row: every norm's gains end to end. */
  readonly slotFloats: number;
  /** Bytes of gains a step may gather at once for all norms (GAIN_BANK.gatherAllBytes unless told). */
  readonly gatherAllBytes: number;
  private bank: Tensor | undefined;
  private ctx: Ptr | null = null;
  private buffer: Ptr | null = null;
  private capacity = 0;

  constructor(ggml: Ggml, norms: ReadonlyMap<string, Float32Array>, gatherAllBytes: number = GAIN_BANK.gatherAllBytes) {
    this.ggml = ggml;
    this.gatherAllBytes = gatherAllBytes;
    this.norms = norms;
    let o = 0;
    for (const [name, base] of norms) {
      this.offsets.set(name, o);
      o += base.length;
    }
    this.slotFloats = o;
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

  /** Free a slot, overwriting it with the base gains: an adapter's values do not outlive its sequence. */
  release(slot: number): void {
    if (slot <= 0 || this.held[slot] === undefined) return;
    this.held[slot] = undefined;
    this.upload(slot);
  }

  /** (slot_floats, capacity) F32, or undefined when no adapted sequence was ever opened. */
  tensor(): Tensor | undefined {
    return this.bank;
  }

  /** Where `name`'s gains lie in a slot's row (floats), or undefined for a norm the part lacks. */
  slice(name: string): { off: number; len: number } | undefined {
    const off = this.offsets.get(name);
    return off === undefined ? undefined : { off, len: this.norms.get(name)!.length };
  }

  dispose(): void {
    this.free();
    this.held.length = 0;
    this.capacity = 0;
  }

  private grow(capacity: number): void {
    const L = this.ggml.lib;
    this.free();
    const ctx = L.ggml_init({ mem_size: L.ggml_tensor_overhead() * 2, mem_buffer: null, no_alloc: true }) as Ptr;
    const bank = L.ggml_new_tensor_2d(ctx, T.F32, this.slotFloats, capacity) as Tensor; // (slot_floats, capacity)
    const buft = this.ggml.gpu ? L.ggml_backend_dev_buffer_type(this.ggml.gpu.dev) : this.ggml.cpuBuft;
    const buffer = L.ggml_backend_alloc_ctx_tensors_from_buft(ctx, buft) as Ptr | null;
    if (!buffer) {
      L.ggml_free(ctx);
      throw new OutOfMemoryError('cannot allocate the adapters\' norm gains', `${capacity} slots of ${this.slotFloats * 4} bytes`, 'allocation failed', 'serve fewer adapted sequences at once');
    }
    this.ctx = ctx;
    this.buffer = buffer;
    this.bank = bank;
    this.capacity = capacity;
    this.held[0] = undefined;
    this.upload(0);
    for (let s = 1; s < this.held.length; s++) if (this.held[s]) this.upload(s);
  }

  /** Write slot `s`'s row: its override for each norm where it has one, the base gains elsewhere. */
  private upload(s: number): void {
    const o = this.held[s];
    const row = new Float32Array(this.slotFloats);
    for (const [name, base] of this.norms) row.set(o?.get(name) ?? base, this.offsets.get(name)!);
    this.ggml.lib.ggml_backend_tensor_set(this.bank!, row, s * this.slotFloats * 4, this.slotFloats * 4);
  }

  private free(): void {
    const L = this.ggml.lib;
    if (this.buffer) L.ggml_backend_buffer_free(this.buffer);
    if (this.ctx) L.ggml_free(this.ctx);
    this.buffer = null;
    this.ctx = null;
    this.bank = undefined;
  }
}
