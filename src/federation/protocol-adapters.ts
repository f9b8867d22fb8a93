// Per-user norm adapters on the data plane. `open_seq` may carry the RMSNorm gains of the receiving span's
// layers: the header lists the norm tensors (`gains`), the payload holds their gains in that order, f32,
// n_embd each. The worker applies them to that sequence only, keeps them in the sequence's cache and drops
// them when the sequence closes; it never writes them anywhere.
//
// Compatibility without a version bump: a worker that applied gains says how many (`gainsApplied`); an
// older worker ignores the unknown field and answers without it, and the primary then treats that worker as
// failed for this call (it would compute the base model's states) and re-plans the span elsewhere.
import { z } from 'zod';

/** Norm tensor names of one span's layers (the final norm stays on the primary, with the head). */
export const GainNames = z.array(z.string().max(63).regex(/^blk\.\d+\.[a-z_]*norm\.weight$/, 'a layer norm tensor (blk.N.*norm.weight)')).min(1).max(1024);

/** The `open_seq` answer's count of gains applied (absent from workers that know nothing of adapters). */
export const GainsApplied = z.number().int().min(0).max(1024);

/** Largest open_seq payload: 1024 gains of n_embd 8192 (f32). */
export const MAX_GAINS_PAYLOAD_BYTES = 1024 * 8192 * 4;

/** The payload for `names`: their gains, in order, f32. */
export function encodeGains(gains: ReadonlyMap<string, Float32Array>, names: readonly string[]): Uint8Array {
  const total = names.reduce((n, name) => n + gains.get(name)!.length, 0);
  const out = new Float32Array(total);
  let o = 0;
  for (const name of names) {
    const g = gains.get(name)!;
    out.set(g, o);
    o += g.length;
  }
  return new Uint8Array(out.buffer);
}

/** The gains of a payload, n_embd floats per name (copied: the payload's buffer is not kept). */
export function decodeGains(names: readonly string[], payload: Uint8Array, nEmbd: number): Map<string, Float32Array> {
  if (payload.byteLength !== names.length * nEmbd * 4) {
    throw new RangeError(`open_seq gains: expected ${names.length} x ${nEmbd} f32 (${names.length * nEmbd * 4} bytes), got ${payload.byteLength} bytes`);
  }
  const all = new Float32Array(payload.buffer.slice(payload.byteOffset, payload.byteOffset + payload.byteLength));
  return new Map(names.map((name, i) => [name, all.slice(i * nEmbd, (i + 1) * nEmbd)]));
}
