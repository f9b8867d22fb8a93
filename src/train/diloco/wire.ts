// A delta as it travels and as it is checked on arrival. Anything wrong (another round, a missing, extra or
// reshaped tensor, an unknown dtype, a byte count that does not match, NaN or Inf after decoding) refuses that
// participant's delta for this round with a reason; the round goes on with the others.
import { COMPRESSIONS, type Compression } from './config.ts';
import { decodeTensor, encodeTensor, encodedBytes } from './compress.ts';
import type { Delta } from './delta.ts';

export interface WireTensor {
  name: string;
  dtype: string;
  /** ggml order (ne0 first), as the model's parameter specs. */
  ne: number[];
  data: Uint8Array;
}

export interface WireDelta {
  round: number;
  participant: string;
  tensors: WireTensor[];
}

/** What the receiver expects of a tensor. */
export interface TensorShape {
  name: string;
  ne: readonly number[];
}

export const REFUSALS = ['round', 'missing', 'unknown-tensor', 'duplicate', 'shape', 'dtype', 'size', 'non-finite', 'empty-shard'] as const;
export type RefusalCode = (typeof REFUSALS)[number];

export type DeltaCheck = { ok: true; delta: Delta; bytes: number } | { ok: false; code: RefusalCode; reason: string };

/** Encode every tensor of `shapes` from `delta`, in that order. */
export function encodeDelta(delta: Delta, shapes: readonly TensorShape[], compression: Compression, round: number, participant: string): WireDelta {
  return {
    round,
    participant,
    tensors: shapes.map((s) => {
      const v = delta.get(s.name);
      if (!v) throw new Error(`encodeDelta: no tensor ${s.name} in the delta`);
      return { name: s.name, dtype: compression, ne: [...s.ne], data: encodeTensor(v, compression) };
    }),
  };
}

export function wireBytes(w: WireDelta): number {
  return w.tensors.reduce((a, t) => a + t.data.byteLength, 0);
}

const count = (ne: readonly number[]) => ne.reduce((a, b) => a * b, 1);

/** Check a delta against the round and the model's tensors, and decode it. */
export function checkDelta(w: WireDelta, expect: { round: number; shapes: readonly TensorShape[] }): DeltaCheck {
  const who = `delta from ${w.participant}`;
  const refuse = (code: RefusalCode, reason: string): DeltaCheck => ({ ok: false, code, reason: `${who} refused: ${reason}` });
  if (w.round !== expect.round) {
    return refuse('round', `it is for round ${w.round}, the current round is ${expect.round} (${w.round < expect.round ? 'late: discarded' : 'from the future'})`);
  }
  const want = new Map(expect.shapes.map((s) => [s.name, s]));
  const seen = new Set<string>();
  const delta: Delta = new Map();
  for (const t of w.tensors) {
    const s = want.get(t.name);
    if (!s) return refuse('unknown-tensor', `tensor ${t.name} is not a parameter of this model`);
    if (seen.has(t.name)) return refuse('duplicate', `tensor ${t.name} sent twice`);
    seen.add(t.name);
    if (t.ne.length !== s.ne.length || t.ne.some((x, i) => x !== s.ne[i])) {
      return refuse('shape', `tensor ${t.name} has shape [${t.ne.join(', ')}], the model's is [${s.ne.join(', ')}]`);
    }
    if (!(COMPRESSIONS as readonly string[]).includes(t.dtype)) {
      return refuse('dtype', `tensor ${t.name} has dtype ${t.dtype}, expected one of ${COMPRESSIONS.join(', ')}`);
    }
    const dtype = t.dtype as Compression;
    const n = count(s.ne);
    const bytes = encodedBytes(n, dtype);
    if (t.data.byteLength !== bytes) {
      return refuse('size', `tensor ${t.name} (${dtype}, ${n} values) has ${t.data.byteLength} bytes, expected ${bytes}`);
    }
    const v = decodeTensor(t.data, n, dtype);
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(v[i]!)) return refuse('non-finite', `tensor ${t.name} holds ${v[i]} at index ${i}`);
    }
    delta.set(t.name, v);
  }
  const missing = expect.shapes.filter((s) => !seen.has(s.name)).map((s) => s.name);
  if (missing.length > 0) return refuse('missing', `${missing.length} tensor(s) missing (${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', ...' : ''})`);
  return { ok: true, delta, bytes: wireBytes(w) };
}
