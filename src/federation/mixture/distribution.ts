// A next-token distribution on the wire (protocol-mixture.ts): encoded by the primary that holds the
// sequence, decoded and checked by the one mixing it. This is I/O encoding (f16 packing, a max, for large
// vocabularies a top-k and a normaliser), one pass over the vocabulary per step; the mixing itself stays in
// ggml (src/model/mixture/combine.ts).
import { f16ToF32 } from '../../model/load.ts';
import { f32ToF16 } from '../../train/diloco/compress.ts';
import { type DistributionHeader, MIXTURE_LIMITS, distributionBytes } from '../protocol-mixture.ts';

/** A distribution that breaks the contract: wrong length, NaN, values above 0, ids out of range. */
export class MalformedDistributionError extends Error {
  readonly code = 'bad_distribution';
  constructor(readonly expected: string, readonly actual: string) {
    super(`malformed next-token distribution: expected ${expected}, got ${actual}`);
    this.name = 'MalformedDistributionError';
  }
}

/** Tolerance on Σ p + tailMass = 1 for 'topk' (f32 log-probabilities summed in f64). */
const TOPK_MASS_TOLERANCE = 1e-3;

/** Encode a row of logits (V floats): f16 logits minus their max, or top-k log-probabilities and the tail. */
export function encodeDistribution(logits: Float32Array, fullVocabMax: number = MIXTURE_LIMITS.fullVocabMax, topK: number = MIXTURE_LIMITS.topK): { header: DistributionHeader; bytes: Uint8Array } {
  const V = logits.length;
  let max = -Infinity;
  for (let i = 0; i < V; i++) if (logits[i]! > max) max = logits[i]!;
  if (V <= fullVocabMax) {
    const half = new Uint16Array(V);
    for (let i = 0; i < V; i++) half[i] = f32ToF16(logits[i]! - max);
    return { header: { encoding: 'f16', nVocab: V }, bytes: new Uint8Array(half.buffer) };
  }
  let sum = 0;
  for (let i = 0; i < V; i++) sum += Math.exp(logits[i]! - max);
  const logZ = max + Math.log(sum);
  const k = Math.min(topK, V);
  const top = topIndices(logits, k);
  const buf = new ArrayBuffer(8 * k);
  const ids = new Int32Array(buf, 0, k);
  const lps = new Float32Array(buf, 4 * k, k);
  let mass = 0;
  top.forEach((id, j) => {
    ids[j] = id;
    lps[j] = logits[id]! - logZ;
    mass += Math.exp(lps[j]!);
  });
  return { header: { encoding: 'topk', nVocab: V, k, tailMass: Math.min(1, Math.max(0, 1 - mass)) }, bytes: new Uint8Array(buf) };
}

/**
 * Decode and check one distribution against the vocabulary the receiver expects; returns V log-probabilities
 * (up to a constant: what the combiner's softmax takes). Throws MalformedDistributionError.
 */
export function decodeDistribution(header: DistributionHeader, bytes: Uint8Array, nVocab: number): Float32Array {
  if (header.nVocab !== nVocab) throw new MalformedDistributionError(`${nVocab} tokens (the specialist's vocabulary)`, `${header.nVocab}`);
  const n = distributionBytes(header);
  if (bytes.byteLength !== n) throw new MalformedDistributionError(`${n} bytes for ${header.encoding}`, `${bytes.byteLength}`);
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : new Uint8Array(bytes); // a copy (Buffer.slice would be a view)
  if (header.encoding === 'f16') {
    const half = new Uint16Array(aligned.buffer, aligned.byteOffset, nVocab);
    const out = new Float32Array(nVocab);
    let max = -Infinity;
    for (let i = 0; i < nVocab; i++) {
      const v = f16ToF32(half[i]!);
      if (Number.isNaN(v) || v > 0) throw new MalformedDistributionError('log-probabilities <= 0 (logits minus their max)', `${v} at token ${i}`);
      out[i] = v;
      if (v > max) max = v;
    }
    if (max !== 0) throw new MalformedDistributionError('a largest value of 0', String(max));
    return out;
  }
  const { k, tailMass } = header;
  const ids = new Int32Array(aligned.buffer, aligned.byteOffset, k);
  const lps = new Float32Array(aligned.buffer, aligned.byteOffset + 4 * k, k);
  const rest = nVocab - k;
  if (rest < 0) throw new MalformedDistributionError(`k <= ${nVocab}`, String(k));
  const out = new Float32Array(nVocab).fill(tailMass > 0 && rest > 0 ? Math.log(tailMass / rest) : -Infinity);
  const seen = new Set<number>();
  let mass = tailMass;
  for (let j = 0; j < k; j++) {
    const id = ids[j]!;
    const lp = lps[j]!;
    if (id < 0 || id >= nVocab || seen.has(id)) throw new MalformedDistributionError('distinct token ids inside the vocabulary', `${id} at entry ${j}`);
    if (Number.isNaN(lp) || lp > 0) throw new MalformedDistributionError('log-probabilities <= 0', `${lp} at entry ${j}`);
    seen.add(id);
    out[id] = lp;
    mass += Math.exp(lp);
  }
  if (Math.abs(mass - 1) > TOPK_MASS_TOLERANCE) throw new MalformedDistributionError('top-k probabilities and the tail summing to 1', mass.toFixed(6));
  return out;
}

/** Indices of the k largest values, largest first (a partial selection: k is small next to V). */
function topIndices(values: Float32Array, k: number): number[] {
  const heap: number[] = []; // min-heap of indices by value, size <= k
  const less = (a: number, b: number) => values[a]! < values[b]!;
  const down = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && less(heap[l]!, heap[m]!)) m = l;
      if (r < heap.length && less(heap[r]!, heap[m]!)) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m]!, heap[i]!];
      i = m;
    }
  };
  for (let i = 0; i < values.length; i++) {
    if (heap.length < k) {
      heap.push(i);
      for (let c = heap.length - 1; c > 0; ) {
        const p = (c - 1) >> 1;
        if (!less(heap[c]!, heap[p]!)) break;
        [heap[c], heap[p]] = [heap[p]!, heap[c]!];
        c = p;
      }
    } else if (values[i]! > values[heap[0]!]!) {
      heap[0] = i;
      down(0);
    }
  }
  return heap.sort((a, b) => values[b]! - values[a]! || a - b);
}
