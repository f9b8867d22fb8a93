// The trainable tensors of a llama-family model, named as llama.cpp's GGUF files name them, and where they
// live while training: one backend buffer holding every parameter and its two AdamW moments (all F32),
// plus the constant 1.0 that seeds the backward pass.
//
// Initial values (seeded): matrices ~ N(0, 0.02), the projections back into the residual stream
// (attn_output, ffn_down) scaled by 1/sqrt(2 nLayer) as in GPT-2, embeddings ~ N(0, 0.02), norm gains 1.
import { T, readF32 } from '../ggml/graph.ts';
import { setParam } from '../ggml/opt.ts';
import type { Ggml } from '../ggml/runtime.ts';
import type { Tensor } from '../ggml/tensor.ts';
import { WeightSet, type WeightSpec } from '../ggml/weights.ts';
import { type ModelConfig, headDim } from './config.ts';
import { TrainError } from './errors.ts';
import { gaussian, seededRandom } from './random.ts';

export interface ParamSpec {
  name: string;
  /** ne0, ne1 (ggml order: ne0 is the row length). */
  ne: readonly number[];
  /** How it starts: a gain of ones, or N(0, std). */
  init: { kind: 'ones' } | { kind: 'normal'; std: number };
  /** Matrices take weight decay; norm gains do not. */
  decay: boolean;
}

export const TOKEN_EMBD = 'token_embd.weight';
export const OUTPUT_NORM = 'output_norm.weight';
export const OUTPUT = 'output.weight';

/** Every parameter of the model, in the order GGUF files list them. */
export function paramSpecs(m: ModelConfig): ParamSpec[] {
  const kv = headDim(m) * m.nHeadKv;
  const std = 0.02;
  const proj = std / Math.sqrt(2 * m.nLayer);
  const mat = (name: string, ne0: number, ne1: number, s = std): ParamSpec => ({ name, ne: [ne0, ne1], init: { kind: 'normal', std: s }, decay: true });
  const norm = (name: string): ParamSpec => ({ name, ne: [m.nEmbd], init: { kind: 'ones' }, decay: false });
  const specs: ParamSpec[] = [mat(TOKEN_EMBD, m.nEmbd, m.nVocab)];
  for (let i = 0; i < m.nLayer; i++) {
    const b = `blk.${i}.`;
    specs.push(
      norm(`${b}attn_norm.weight`),
      mat(`${b}attn_q.weight`, m.nEmbd, m.nEmbd),
      mat(`${b}attn_k.weight`, m.nEmbd, kv),
      mat(`${b}attn_v.weight`, m.nEmbd, kv),
      mat(`${b}attn_output.weight`, m.nEmbd, m.nEmbd, proj),
      norm(`${b}ffn_norm.weight`),
      mat(`${b}ffn_gate.weight`, m.nEmbd, m.nFf),
      mat(`${b}ffn_up.weight`, m.nEmbd, m.nFf),
      mat(`${b}ffn_down.weight`, m.nFf, m.nEmbd, proj),
    );
  }
  specs.push(norm(OUTPUT_NORM), mat(OUTPUT, m.nEmbd, m.nVocab));
  return specs;
}

export function elements(ne: readonly number[]): number {
  return ne.reduce((a, b) => a * b, 1);
}

/** Host copies of tensors by name (checkpoints, export, fine-tuning). */
export type TensorMap = Map<string, Float32Array>;

/** Seeded initial values of every parameter. */
export function initialParams(m: ModelConfig, seed: number): TensorMap {
  const rand = gaussian(seededRandom(seed));
  const out: TensorMap = new Map();
  for (const s of paramSpecs(m)) {
    const a = new Float32Array(elements(s.ne));
    if (s.init.kind === 'ones') a.fill(1);
    else for (let i = 0; i < a.length; i++) a[i] = rand() * s.init.std;
    out.set(s.name, a);
  }
  return out;
}

const M = (name: string) => `adam.m.${name}`;
const V = (name: string) => `adam.v.${name}`;
const LOSS_GRAD = 'loss.grad';

/** Parameters, AdamW moments and the loss-gradient seed, in backend buffers. Dispose to free them. */
export class ParamStore {
  readonly specs: ParamSpec[];
  readonly ggml: Ggml;
  private readonly set: WeightSet;

  /** `specs`: the trainable tensors (default every parameter of the model; an adapter trains a few). */
  constructor(ggml: Ggml, m: ModelConfig, specs: ParamSpec[] = paramSpecs(m)) {
    this.ggml = ggml;
    this.specs = specs;
    const tensors: WeightSpec[] = [];
    for (const s of this.specs) {
      for (const name of [s.name, M(s.name), V(s.name)]) tensors.push({ name, type: T.F32, ne: s.ne, matmul: false });
    }
    tensors.push({ name: LOSS_GRAD, type: T.F32, ne: [1], matmul: false });
    this.set = new WeightSet(ggml, tensors);
    for (const s of this.specs) setParam(ggml, this.set.get(s.name));
    this.upload(LOSS_GRAD, new Float32Array([1]));
    this.zeroMoments();
  }

  /** Bytes of the buffer holding parameters and moments. */
  get bytes(): number {
    return this.set.bytes;
  }

  param(name: string): Tensor {
    return this.set.get(name);
  }
  m(name: string): Tensor {
    return this.set.get(M(name));
  }
  v(name: string): Tensor {
    return this.set.get(V(name));
  }
  /** The constant d loss / d loss = 1 (see buildBackward). */
  get lossGrad(): Tensor {
    return this.set.get(LOSS_GRAD);
  }

  zeroMoments(): void {
    for (const s of this.specs) {
      const zeros = new Float32Array(elements(s.ne));
      this.upload(M(s.name), zeros);
      this.upload(V(s.name), zeros);
    }
  }

  /** Set parameters (every one must be present, of the right size). */
  setParams(values: TensorMap): void {
    for (const s of this.specs) this.upload(s.name, required(values, s));
  }

  getParams(): TensorMap {
    return new Map(this.specs.map((s) => [s.name, readF32(this.ggml, this.param(s.name), elements(s.ne))]));
  }

  /** AdamW moments as `adam.m.<param>` / `adam.v.<param>` (the names checkpoints use). */
  getMoments(): TensorMap {
    const out: TensorMap = new Map();
    for (const s of this.specs) {
      out.set(M(s.name), readF32(this.ggml, this.m(s.name), elements(s.ne)));
      out.set(V(s.name), readF32(this.ggml, this.v(s.name), elements(s.ne)));
    }
    return out;
  }

  setMoments(values: TensorMap): void {
    for (const s of this.specs) {
      this.upload(M(s.name), required(values, { ...s, name: M(s.name) }));
      this.upload(V(s.name), required(values, { ...s, name: V(s.name) }));
    }
  }

  private upload(name: string, a: Float32Array): void {
    this.set.upload(name, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  }

  dispose(): void {
    this.set.dispose();
  }
}

export const momentNames = { m: M, v: V };

function required(values: TensorMap, s: { name: string; ne: readonly number[] }): Float32Array {
  const a = values.get(s.name);
  const n = elements(s.ne);
  if (!a || a.length !== n) {
    throw new TrainError(`tensor ${s.name} missing or of the wrong size`, `${n} floats`, a ? `${a.length}` : 'absent', 'the checkpoint or model was made for another shape');
  }
  return a;
}
