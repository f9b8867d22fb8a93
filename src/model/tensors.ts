// Tensor names as llama.cpp's converters write them, and which ones each part of a model needs.
//
// A model part holds some of: the token embeddings (first stage), a layer span [first, last), and the head
// (final norm + output projection). Norm weights are small and kept in JS too (for per-sequence overrides).
import type { WeightSpec } from '../ggml/weights.ts';
import type { HParams } from './hparams.ts';

export const TOKEN_EMBD = 'token_embd.weight';
export const OUTPUT_NORM = 'output_norm.weight';
export const OUTPUT = 'output.weight';
export const ROPE_FREQS = 'rope_freqs.weight';

export const blk = (i: number, what: string) => `blk.${i}.${what}`;

/** Layer tensors by architecture: [name suffix, is a matmul weight, required]. */
const LAYER_TENSORS: Record<HParams['arch'], [string, boolean, boolean][]> = {
  llama: [
    ['attn_norm.weight', false, true],
    ['attn_q.weight', true, true],
    ['attn_k.weight', true, true],
    ['attn_v.weight', true, true],
    ['attn_output.weight', true, true],
    ['ffn_norm.weight', false, true],
    ['ffn_gate.weight', true, true],
    ['ffn_up.weight', true, true],
    ['ffn_down.weight', true, true],
  ],
  qwen2: [
    ['attn_norm.weight', false, true],
    ['attn_q.weight', true, true],
    ['attn_q.bias', false, true],
    ['attn_k.weight', true, true],
    ['attn_k.bias', false, true],
    ['attn_v.weight', true, true],
    ['attn_v.bias', false, true],
    ['attn_output.weight', true, true],
    ['ffn_norm.weight', false, true],
    ['ffn_gate.weight', true, true],
    ['ffn_up.weight', true, true],
    ['ffn_down.weight', true, true],
  ],
  phi3: [
    ['attn_norm.weight', false, true],
    ['attn_qkv.weight', true, true],
    ['attn_output.weight', true, true],
    ['ffn_norm.weight', false, true],
    ['ffn_up.weight', true, true],
    ['ffn_down.weight', true, true],
  ],
};

export interface TensorIndexEntry {
  name: string;
  type: number;
  dims: readonly number[];
  byteSize: number;
}

export interface PartLayout {
  embeddings: boolean;
  first: number;
  last: number;
  head: boolean;
}

/** The weights a part needs, in load order, or the names of required ones that are missing. */
export function partWeights(
  h: HParams,
  part: PartLayout,
  index: ReadonlyMap<string, TensorIndexEntry>,
): { specs: WeightSpec[]; missing: string[]; sources: Map<string, string> } {
  const specs: WeightSpec[] = [];
  const missing: string[] = [];
  /** Weight name -> the file tensor its bytes come from, where they differ (tied output). */
  const sources = new Map<string, string>();
  const want = (name: string, matmul: boolean, required: boolean, cpuOnly = false) => {
    const e = index.get(name);
    if (!e) {
      if (required) missing.push(name);
      return;
    }
    specs.push({ name, type: e.type, ne: e.dims, matmul, cpuOnly });
  };
  if (part.embeddings) want(TOKEN_EMBD, false, true, true);
  for (let i = part.first; i < part.last; i++) {
    for (const [suffix, matmul, required] of LAYER_TENSORS[h.arch]) want(blk(i, suffix), matmul, required);
  }
  if (part.last > part.first) want(ROPE_FREQS, false, false);
  if (part.head) {
    want(OUTPUT_NORM, false, true);
    // Tied embeddings (SmolLM2, Qwen2-0.5B): the head reuses token_embd's bytes as its matrix, loaded a
    // second time as `output.weight` so it can take the matmul layout (llama.cpp's TENSOR_DUPLICATED).
    const out = index.get(OUTPUT) ?? index.get(TOKEN_EMBD);
    if (!out) missing.push(OUTPUT);
    else {
      specs.push({ name: OUTPUT, type: out.type, ne: out.dims, matmul: true });
      if (!index.has(OUTPUT)) sources.set(OUTPUT, TOKEN_EMBD);
    }
  }
  return { specs, missing, sources };
}

/** Norm weights of a part: their names (the values the JS side keeps for adapters). */
export function normNames(part: PartLayout): string[] {
  const names: string[] = [];
  for (let i = part.first; i < part.last; i++) names.push(blk(i, 'attn_norm.weight'), blk(i, 'ffn_norm.weight'));
  if (part.head) names.push(OUTPUT_NORM);
  return names;
}
