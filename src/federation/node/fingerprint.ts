// A compact fingerprint of the hidden states a worker produced for one step (TOPLOC-style): the primary
// keeps it with the step's input and, for a sampled fraction of sequences, recomputes the span itself and
// compares (verify.ts). Floats differ slightly between CPUs (AVX2 vs AVX-512/AMX) and between incremental
// decode and batched prefill, so the comparison is within a tolerance, in units of the token's RMS.
//
// One row per block of tokens of a group (a sequence's tokens in the step), 4 numbers:
//   [ sum of L2 norms, sum of a salted +-1 projection / sqrt(n_embd), sum of the value at salted index a,
//     sum of the value at salted index b ]
// Blocks are single tokens unless a step is large (a long prefill): then tokens are summed in blocks so that a
// step carries about FP_MAX_ROWS rows (the fingerprints ride in the JSON header, capped at 64 KiB). The salt is
// chosen by the primary per step, so a worker cannot precompute which coordinates are looked at.
// The norm and the projection depend on every coordinate; the two values pin single coordinates.
//
// Encoding: rows as f32, little-endian, base64. The fingerprint is computed in JS doubles in a fixed order,
// so the same hidden states give the same bytes on every machine (the last hop's claim is checked exactly).

export const FP_WIDTH = 4;
/**
 * Rows per step at most, before the per-group remainders (a step has at most 64 groups, MAX_GROUPS): so 128
 * rows at worst = 2 KiB, 2.7 KiB in base64, twice per hop (in and out). A route of 8 hops then adds ~43 KiB to the step's
 * 64 KiB JSON header at worst; a decode step of 8 sequences adds ~0.4 KiB per hop.
 */
export const FP_MAX_ROWS = 64;

/** Tokens summed into one row for a step of `nTokens` tokens. */
export function blockSize(nTokens: number): number {
  return Math.max(1, Math.ceil(nTokens / FP_MAX_ROWS));
}

/** Rows of a group of `n` tokens with block size `block`. */
export function rowsOf(n: number, block: number): number {
  return Math.ceil(n / block);
}

/** A 32-bit mix (splitmix32 finaliser): salted, deterministic coordinate choices. */
function mix(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * The +-1/sqrt(n) signs of the projection: one fixed pseudo-random vector per width, rotated by a salted
 * offset per step. Making a fresh vector per salt cost ~0.1 ms per step at n_embd 2048 (bench/verify.ts).
 */
const signTables = new Map<number, Float64Array>();
function signTable(nEmbd: number): Float64Array {
  let s = signTables.get(nEmbd);
  if (!s) {
    s = new Float64Array(nEmbd);
    const scale = 1 / Math.sqrt(nEmbd);
    for (let i = 0; i < nEmbd; i++) s[i] = mix(Math.imul(i + 1, 0x9e3779b9) >>> 0) & 1 ? scale : -scale;
    signTables.set(nEmbd, s);
  }
  return s;
}

/**
 * Fingerprint rows of hidden states (token-major, n_embd per token) laid out as `groups` (tokens per group, in
 * order), summing `block` tokens per row within a group. Token `i` of a group (0-based) picks its coordinates
 * from (salt, i), so the primary can recompute the rows of one sequence alone.
 */
export function fingerprintRows(hidden: Float32Array, nEmbd: number, groups: readonly number[], salt: number, block: number): Float32Array {
  const out = new Float32Array(groups.reduce((n, g) => n + rowsOf(g, block), 0) * FP_WIDTH);
  const sg = signTable(nEmbd);
  const rot = mix(salt ^ 0x5bd1e995) % nEmbd;
  const split = nEmbd - rot;
  let tok = 0;
  let row = 0;
  for (const n of groups) {
    for (let b0 = 0; b0 < n; b0 += block, row++) {
      let norm = 0;
      let proj = 0;
      let va = 0;
      let vb = 0;
      for (let i = b0; i < Math.min(n, b0 + block); i++) {
        const base = (tok + i) * nEmbd;
        let ss = 0;
        let p = 0;
        // coordinate c pairs with sign (c + rot) mod n: two loops, no modulo per coordinate
        for (let c = 0; c < split; c++) {
          const v = hidden[base + c]!;
          ss += v * v;
          p += v * sg[c + rot]!;
        }
        for (let c = split; c < nEmbd; c++) {
          const v = hidden[base + c]!;
          ss += v * v;
          p += v * sg[c - split]!;
        }
        norm += Math.sqrt(ss);
        proj += p;
        const h = mix((salt ^ Math.imul(i + 1, 0x85ebca6b)) >>> 0);
        va += hidden[base + (h % nEmbd)]!;
        vb += hidden[base + (mix(h) % nEmbd)]!;
      }
      out.set([norm, proj, va, vb], row * FP_WIDTH);
    }
    tok += n;
  }
  return out;
}

/** The wire form of a step's fingerprint (StageTime.fp). */
export function encodeFingerprint(rows: Float32Array): string {
  return Buffer.from(rows.buffer, rows.byteOffset, rows.byteLength).toString('base64');
}

/** Decode StageTime.fp; undefined when it is not a whole number of rows. */
export function decodeFingerprint(fp: string): Float32Array | undefined {
  const b = Buffer.from(fp, 'base64');
  if (b.byteLength % (4 * FP_WIDTH) !== 0) return undefined;
  const out = new Float32Array(b.byteLength / 4);
  new Uint8Array(out.buffer).set(b);
  return out;
}

/** What a worker appends to its trace entry for a step that carries a salt. */
export function stepFingerprint(hidden: Float32Array, nEmbd: number, groups: readonly { n: number }[], salt: number): string {
  const ns = groups.map((g) => g.n);
  return encodeFingerprint(fingerprintRows(hidden, nEmbd, ns, salt, blockSize(ns.reduce((a, b) => a + b, 0))));
}

/**
 * Largest difference between two fingerprint rows sets, each row's difference in units of the reference
 * block's RMS (sum of norms / sqrt(n_embd)): 0.01 means "1% of a typical coordinate". Rows are compared
 * pairwise; a length mismatch or a NaN is Infinity.
 */
export function fingerprintError(claimed: Float32Array, reference: Float32Array, nEmbd: number): number {
  if (claimed.length !== reference.length) return Number.POSITIVE_INFINITY;
  let worst = 0;
  for (let r = 0; r < reference.length; r += FP_WIDTH) {
    const scale = Math.max(reference[r]! / Math.sqrt(nEmbd), 1e-30);
    for (let k = 0; k < FP_WIDTH; k++) {
      const d = Math.abs(claimed[r + k]! - reference[r + k]!) / scale;
      if (Number.isNaN(d)) return Number.POSITIVE_INFINITY;
      if (d > worst) worst = d;
    }
  }
  return worst;
}

/** Largest per-token difference between two hidden-state buffers, in units of each reference token's RMS. */
export function hiddenError(claimed: Float32Array, reference: Float32Array, nEmbd: number): number {
  if (claimed.length !== reference.length) return Number.POSITIVE_INFINITY;
  let worst = 0;
  for (let base = 0; base < reference.length; base += nEmbd) {
    let ss = 0;
    for (let c = 0; c < nEmbd; c++) ss += reference[base + c]! ** 2;
    const scale = Math.max(Math.sqrt(ss / nEmbd), 1e-30);
    for (let c = 0; c < nEmbd; c++) {
      const d = Math.abs(claimed[base + c]! - reference[base + c]!) / scale;
      if (Number.isNaN(d)) return Number.POSITIVE_INFINITY;
      if (d > worst) worst = d;
    }
  }
  return worst;
}
