// Test models: GGUF files with random weights in the real shapes of known models (fewer layers), carrying a
// real llama.cpp vocabulary, so our engine and llama.cpp can be compared on the same file.
//
// Weights are seeded uniform noise, scaled so that next-token distributions are peaked (greedy choices are
// not near-ties) and quantised with ggml's own quantize_chunk. Written lazily, one tensor at a time.
import { getGgml } from '../../ggml/runtime.ts';
import type { GgufValue } from '../../gguf/value.ts';
import { f32, str, u32 } from '../../gguf/value.ts';
import { openGguf } from '../../gguf/reader.ts';
import { writeGguf } from '../../gguf/writer.ts';
import { GGML_TYPE, ggmlTypeInfo, tensorByteSize } from '../../gguf/types.ts';
import { type VocabName, vocabPath } from './vocab.ts';
import { mulberry32 } from '../../util/random.ts';

export interface Shape {
  arch: 'llama' | 'qwen2' | 'phi3';
  nEmbd: number;
  nFf: number;
  nHead: number;
  nHeadKv: number;
  vocab: VocabName;
  ropeBase: number;
  rmsEps: number;
  nCtxTrain: number;
  tiedEmbeddings: boolean;
}

/** Real models' widths (llama.cpp GGUF conversions of them). */
export const SHAPES = {
  tinyllama: { arch: 'llama', nEmbd: 2048, nFf: 5632, nHead: 32, nHeadKv: 4, vocab: 'llama-spm', ropeBase: 10000, rmsEps: 1e-5, nCtxTrain: 2048, tiedEmbeddings: false },
  llama3: { arch: 'llama', nEmbd: 4096, nFf: 14336, nHead: 32, nHeadKv: 8, vocab: 'llama-bpe', ropeBase: 500000, rmsEps: 1e-5, nCtxTrain: 8192, tiedEmbeddings: false },
  phi3: { arch: 'phi3', nEmbd: 3072, nFf: 8192, nHead: 32, nHeadKv: 32, vocab: 'phi-3', ropeBase: 10000, rmsEps: 1e-5, nCtxTrain: 4096, tiedEmbeddings: false },
  smollm2: { arch: 'llama', nEmbd: 960, nFf: 2560, nHead: 15, nHeadKv: 5, vocab: 'gpt-2', ropeBase: 100000, rmsEps: 1e-5, nCtxTrain: 8192, tiedEmbeddings: true },
  qwen2: { arch: 'qwen2', nEmbd: 896, nFf: 4864, nHead: 14, nHeadKv: 2, vocab: 'qwen2', ropeBase: 1000000, rmsEps: 1e-6, nCtxTrain: 32768, tiedEmbeddings: true },
} as const satisfies Record<string, Shape>;

export type ShapeName = keyof typeof SHAPES;

export interface MakeModelOptions {
  shape: ShapeName | Shape;
  nLayer: number;
  /** Type of the matrices (norms stay F32, as llama.cpp's converters keep them). */
  type: keyof typeof GGML_TYPE;
  /** Type of token_embd (default: same as `type`). */
  embdType?: keyof typeof GGML_TYPE;
  seed?: number;
  /** Logit scale: larger means more peaked distributions. */
  peak?: number;
  name?: string;
}

/** Write a random-weight model; returns its path. */
export function makeModel(path: string, o: MakeModelOptions): string {
  const s: Shape = typeof o.shape === 'string' ? SHAPES[o.shape] : o.shape;
  const vocab = openGguf(vocabPath(s.vocab));
  const metadata = new Map<string, GgufValue>();
  const a = s.arch;
  metadata.set('general.architecture', str(a));
  metadata.set('general.name', str(o.name ?? `test-${typeof o.shape === 'string' ? o.shape : a}`));
  metadata.set(`${a}.context_length`, u32(s.nCtxTrain));
  metadata.set(`${a}.embedding_length`, u32(s.nEmbd));
  metadata.set(`${a}.block_count`, u32(o.nLayer));
  metadata.set(`${a}.feed_forward_length`, u32(s.nFf));
  metadata.set(`${a}.attention.head_count`, u32(s.nHead));
  metadata.set(`${a}.attention.head_count_kv`, u32(s.nHeadKv));
  metadata.set(`${a}.rope.freq_base`, f32(s.ropeBase));
  metadata.set(`${a}.rope.dimension_count`, u32(s.nEmbd / s.nHead));
  metadata.set(`${a}.attention.layer_norm_rms_epsilon`, f32(s.rmsEps));
  for (const [k, v] of vocab.metadata) if (k.startsWith('tokenizer.')) metadata.set(k, v);
  const nVocab = vocab.metadata.getStringArray('tokenizer.ggml.tokens').length;
  vocab.dispose();

  const rng = mulberry32(o.seed ?? 1);
  const headDim = s.nEmbd / s.nHead;
  const kv = headDim * s.nHeadKv;
  const peak = o.peak ?? 6;
  const tensors: { name: string; dims: number[]; type: number; scale: number; norm?: boolean }[] = [];
  const mat = (name: string, ne0: number, ne1: number, scale: number) => tensors.push({ name, dims: [ne0, ne1], type: GGML_TYPE[o.type], scale });
  const norm = (name: string, n: number) => tensors.push({ name, dims: [n], type: GGML_TYPE.F32, scale: 0.2, norm: true });
  tensors.push({ name: 'token_embd.weight', dims: [s.nEmbd, nVocab], type: GGML_TYPE[o.embdType ?? o.type], scale: 1 });
  const w = 1 / Math.sqrt(s.nEmbd);
  for (let i = 0; i < o.nLayer; i++) {
    norm(`blk.${i}.attn_norm.weight`, s.nEmbd);
    if (a === 'phi3') mat(`blk.${i}.attn_qkv.weight`, s.nEmbd, s.nEmbd + 2 * kv, 2 * w);
    else {
      mat(`blk.${i}.attn_q.weight`, s.nEmbd, s.nEmbd, 2 * w);
      mat(`blk.${i}.attn_k.weight`, s.nEmbd, kv, 2 * w);
      mat(`blk.${i}.attn_v.weight`, s.nEmbd, kv, 2 * w);
    }
    if (a === 'qwen2') {
      for (const [b, n] of [['q', s.nEmbd], ['k', kv], ['v', kv]] as const) tensors.push({ name: `blk.${i}.attn_${b}.bias`, dims: [n], type: GGML_TYPE.F32, scale: 0.1 });
    }
    mat(`blk.${i}.attn_output.weight`, s.nEmbd, s.nEmbd, w);
    norm(`blk.${i}.ffn_norm.weight`, s.nEmbd);
    if (a === 'phi3') mat(`blk.${i}.ffn_up.weight`, s.nEmbd, 2 * s.nFf, 2 * w);
    else {
      mat(`blk.${i}.ffn_gate.weight`, s.nEmbd, s.nFf, 2 * w);
      mat(`blk.${i}.ffn_up.weight`, s.nEmbd, s.nFf, 2 * w);
    }
    mat(`blk.${i}.ffn_down.weight`, s.nFf, s.nEmbd, 1 / Math.sqrt(s.nFf));
  }
  norm('output_norm.weight', s.nEmbd);
  if (!s.tiedEmbeddings) mat('output.weight', s.nEmbd, nVocab, peak * w * Math.sqrt(3));

  writeGguf(path, {
    metadata,
    tensors: tensors.map((t) => {
      const type = fallbackType(t.type, t.dims[0]!);
      return { name: t.name, type, dims: t.dims, data: () => randomTensor(rng, type, t.dims, t.scale, t.norm ?? false) };
    }),
  });
  return path;
}

/** K-quants need rows of 256; like llama.cpp's quantizer, fall back (to Q8_0) for other widths. */
function fallbackType(type: number, ne0: number): number {
  const info = ggmlTypeInfo(type);
  return ne0 % info.blockSize === 0 ? type : GGML_TYPE.Q8_0;
}

/** Above this many elements, rows are scaled windows of a shared noise pool (fast enough for 8B widths). */
const POOL_THRESHOLD = 1 << 25;
const POOL_SIZE = 1 << 23;
let pool: Float32Array | undefined;

function randomTensor(rng: () => number, type: number, dims: readonly number[], scale: number, isNorm: boolean): Uint8Array {
  const n = dims.reduce((a, b) => a * b, 1);
  const f = new Float32Array(n);
  if (isNorm) for (let i = 0; i < n; i++) f[i] = 1 + scale * (2 * rng() - 1);
  else if (n >= POOL_THRESHOLD) {
    // Each row: a window of the pool at a random offset, times a random per-row factor (no two rows equal).
    if (!pool) {
      pool = new Float32Array(POOL_SIZE);
      for (let i = 0; i < POOL_SIZE; i++) pool[i] = Math.sqrt(3) * (2 * rng() - 1);
    }
    const ne0 = dims[0]!;
    for (let r = 0; r < n / ne0; r++) {
      const off = Math.floor(rng() * (POOL_SIZE - ne0));
      const k = scale * (0.75 + 0.5 * rng()) * (rng() < 0.5 ? -1 : 1);
      const row = f.subarray(r * ne0, (r + 1) * ne0);
      row.set(pool.subarray(off, off + ne0));
      for (let i = 0; i < ne0; i++) row[i]! *= k;
    }
  } else for (let i = 0; i < n; i++) f[i] = scale * Math.sqrt(3) * (2 * rng() - 1);
  if (type === GGML_TYPE.F32) return new Uint8Array(f.buffer);
  return quantize(f, type, dims);
}

/** ggml's own conversion/quantisation (F16, BF16 and every block type) of row-major data. */
export function quantize(f: Float32Array, type: number, dims: readonly number[]): Uint8Array {
  const ggml = getGgml({ gpu: 'off' });
  const ne0 = dims[0]!;
  const nrows = f.length / ne0;
  const out = new Uint8Array(tensorByteSize(type, dims));
  const L = ggml.lib;
  L.ggml_quantize_chunk(type, f, out, 0, nrows, ne0, null);
  return out;
}

export { mulberry32 };
