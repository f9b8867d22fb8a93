// What an adapter of each kind trains, how it starts, and how the training graph reads it over the frozen
// base (a TrainTarget for the Trainer):
//
//   norm  every RMSNorm gain (n_embd each), starting at the base's gains; the graph reads them in place of
//         the base's norm tensors
//   lora  for each attention and FFN matrix W (n_in -> n_out): A (n_in, r) ~ N(0, 1/n_in), B (r, n_out) = 0,
//         so training starts exactly at the base; the graph computes W x + (alpha / r) B (A x)
import type { Tensor } from '../../ggml/tensor.ts';
import type { WeightSet } from '../../ggml/weights.ts';
import type { ModelConfig } from '../config.ts';
import { OUTPUT_NORM, type ParamSpec, type TensorMap, elements, paramSpecs } from '../params.ts';
import { gaussian, seededRandom } from '../random.ts';
import type { TrainTarget } from '../trainer.ts';
import type { AdapterKind } from './format.ts';

/** The matrices a LoRA adapter updates, per layer (the names after `blk.N.`). */
export const LORA_MATRICES = ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down'] as const;

export const LORA_A = '.lora_a';
export const LORA_B = '.lora_b';

/** Every norm gain of the model: blk.N.attn_norm, blk.N.ffn_norm, output_norm. */
export function normTensorNames(m: ModelConfig): string[] {
  const names: string[] = [];
  for (let i = 0; i < m.nLayer; i++) names.push(`blk.${i}.attn_norm.weight`, `blk.${i}.ffn_norm.weight`);
  names.push(OUTPUT_NORM);
  return names;
}

/** The trainable tensors of an adapter (no weight decay: they are few, and start at the base). */
export function adapterSpecs(m: ModelConfig, kind: AdapterKind, rank: number): ParamSpec[] {
  const all = paramSpecs(m);
  if (kind === 'norm') {
    const norms = new Set(normTensorNames(m));
    return all.filter((s) => norms.has(s.name)).map((s) => ({ ...s, decay: false }));
  }
  const specs: ParamSpec[] = [];
  for (const s of all) {
    if (!isLoraMatrix(s.name)) continue;
    const [nIn, nOut] = [s.ne[0]!, s.ne[1]!];
    specs.push(
      { name: s.name + LORA_A, ne: [nIn, rank], init: { kind: 'normal', std: 1 / Math.sqrt(nIn) }, decay: false },
      { name: s.name + LORA_B, ne: [rank, nOut], init: { kind: 'normal', std: 0 }, decay: false },
    );
  }
  return specs;
}

export function isLoraMatrix(name: string): boolean {
  const m = /^blk\.\d+\.([a-z_]+)\.weight$/.exec(name);
  return m !== null && (LORA_MATRICES as readonly string[]).includes(m[1]!);
}

/** Starting values: norm gains copied from the base; LoRA A seeded gaussian, B zero. */
export function initialAdapterTensors(specs: readonly ParamSpec[], base: TensorMap, seed: number): TensorMap {
  const rand = gaussian(seededRandom(seed));
  const out: TensorMap = new Map();
  for (const s of specs) {
    const from = base.get(s.name);
    if (from) {
      out.set(s.name, Float32Array.from(from));
      continue;
    }
    const a = new Float32Array(elements(s.ne));
    if (s.init.kind === 'normal' && s.init.std > 0) for (let i = 0; i < a.length; i++) a[i] = rand() * s.init.std;
    out.set(s.name, a);
  }
  return out;
}

/** How the Trainer's graph reads an adapter of this kind over the frozen base weights. */
export function adapterTarget(kind: AdapterKind, specs: ParamSpec[], frozen: WeightSet, loraScale: number): TrainTarget {
  const trainable = new Set(specs.map((s) => s.name));
  if (kind === 'norm') {
    return { specs, weights: (param) => (name) => (trainable.has(name) ? param(name) : frozen.get(name)) };
  }
  return {
    specs,
    weights: () => (name) => frozen.get(name),
    matmul: (param) => (g, name, w, x): Tensor | undefined => {
      if (!trainable.has(name + LORA_A)) return undefined;
      const ax = g.mulMat(param(name + LORA_A), x); // (r, N)
      const bax = g.mulMat(param(name + LORA_B), ax); // (n_out, N)
      return g.add(g.mulMat(w, x), g.scale(bax, loraScale)); // (n_out, N)
    },
  };
}
