// A compute graph under construction: a ggml context (metadata only) plus typed operations.
//
// Model code builds one `Graph` per step: `g.mulMat(w, x)`, `g.rmsNorm(x, eps)`, ... then `g.expand(out)`.
// The graph owns no tensor data; an `Executor` allocates its intermediate tensors, runs it and is reset.
import { GgmlComputeError } from './errors.ts';
import type { Ptr } from './lib.ts';
import type { Ggml } from './runtime.ts';
import type { Tensor } from './tensor.ts';

/** The few ggml_type ids the ggml layer itself needs (the full table lives in src/gguf/types.ts). */
export const T = { F32: 0, F16: 1, I32: 26 } as const;

export const ROPE = { NORMAL: 0, NEOX: 2 } as const;

export interface RopeParams {
  nDims: number;
  mode: number;
  nCtxOrig: number;
  freqBase: number;
  freqScale: number;
  extFactor: number;
  attnFactor: number;
  betaFast: number;
  betaSlow: number;
}

export class Graph {
  readonly ggml: Ggml;
  readonly ctx: Ptr;
  readonly graph: Ptr;
  private readonly inputs: { t: Tensor; data: ArrayBufferView }[] = [];
  private freed = false;

  constructor(ggml: Ggml, maxNodes = 8192, grads = false) {
    this.ggml = ggml;
    const L = ggml.lib;
    const memSize = L.ggml_tensor_overhead() * maxNodes * 2 + L.ggml_graph_overhead_custom(maxNodes, grads);
    this.ctx = L.ggml_init({ mem_size: memSize, mem_buffer: null, no_alloc: true }) as Ptr;
    if (!this.ctx) throw new GgmlComputeError('ggml_init failed', { expected: `${memSize} bytes of metadata`, actual: 'null' }, 'free memory');
    this.graph = L.ggml_new_graph_custom(this.ctx, maxNodes, grads) as Ptr;
  }

  private get L() {
    return this.ggml.lib;
  }

  // ---- tensors -------------------------------------------------------------------------------------

  /** A new tensor whose data is given now and uploaded once the graph is allocated. */
  input(type: number, ne: readonly number[], data: ArrayBufferView, name?: string): Tensor {
    const t = this.newTensor(type, ne, name);
    this.L.ggml_set_input(t);
    this.inputs.push({ t, data });
    return t;
  }

  newTensor(type: number, ne: readonly number[], name?: string): Tensor {
    const L = this.L;
    let t: Tensor;
    switch (ne.length) {
      case 1: t = L.ggml_new_tensor_1d(this.ctx, type, ne[0]); break;
      case 2: t = L.ggml_new_tensor_2d(this.ctx, type, ne[0], ne[1]); break;
      case 3: t = L.ggml_new_tensor_3d(this.ctx, type, ne[0], ne[1], ne[2]); break;
      default: t = L.ggml_new_tensor_4d(this.ctx, type, ne[0], ne[1], ne[2], ne[3]);
    }
    if (name) L.ggml_set_name(t, name);
    return t;
  }

  /** Data for the inputs, in creation order; the executor uploads them after allocation. */
  pendingInputs(): readonly { t: Tensor; data: ArrayBufferView }[] {
    return this.inputs;
  }

  name(t: Tensor, name: string): Tensor {
    this.L.ggml_set_name(t, name);
    return t;
  }

  output(t: Tensor): Tensor {
    this.L.ggml_set_output(t);
    return t;
  }

  expand(t: Tensor): void {
    this.L.ggml_build_forward_expand(this.graph, t);
  }

  get nNodes(): number {
    return this.L.ggml_graph_n_nodes(this.graph);
  }

  // ---- operations (thin: the same names and argument order as ggml.h) ---------------------------------

  getRows(a: Tensor, rows: Tensor): Tensor { return this.L.ggml_get_rows(this.ctx, a, rows); }
  setRows(dst: Tensor, src: Tensor, rows: Tensor): Tensor { return this.L.ggml_set_rows(this.ctx, dst, src, rows); }
  rmsNorm(a: Tensor, eps: number): Tensor { return this.L.ggml_rms_norm(this.ctx, a, eps); }
  norm(a: Tensor, eps: number): Tensor { return this.L.ggml_norm(this.ctx, a, eps); }
  mul(a: Tensor, b: Tensor): Tensor { return this.L.ggml_mul(this.ctx, a, b); }
  add(a: Tensor, b: Tensor): Tensor { return this.L.ggml_add(this.ctx, a, b); }
  sub(a: Tensor, b: Tensor): Tensor { return this.L.ggml_sub(this.ctx, a, b); }
  silu(a: Tensor): Tensor { return this.L.ggml_silu(this.ctx, a); }
  gelu(a: Tensor): Tensor { return this.L.ggml_gelu(this.ctx, a); }
  swigluSplit(gate: Tensor, up: Tensor): Tensor { return this.L.ggml_swiglu_split(this.ctx, gate, up); }
  /** silu(first half of rows) * second half (phi3's fused gate+up). */
  swiglu(a: Tensor): Tensor { return this.L.ggml_swiglu(this.ctx, a); }
  /** `a` tiled to the shape of `like` (only its shape is read: `like` may be a tensor with no data). */
  repeat(a: Tensor, like: Tensor): Tensor { return this.L.ggml_repeat(this.ctx, a, like); }
  mulMat(w: Tensor, x: Tensor): Tensor { return this.L.ggml_mul_mat(this.ctx, w, x); }
  scale(a: Tensor, s: number): Tensor { return this.L.ggml_scale(this.ctx, a, s); }
  cont(a: Tensor): Tensor { return this.L.ggml_cont(this.ctx, a); }
  cpy(a: Tensor, b: Tensor): Tensor { return this.L.ggml_cpy(this.ctx, a, b); }
  cast(a: Tensor, type: number): Tensor { return this.L.ggml_cast(this.ctx, a, type); }
  concat(a: Tensor, b: Tensor, dim: number): Tensor { return this.L.ggml_concat(this.ctx, a, b, dim); }
  permute(a: Tensor, a0: number, a1: number, a2: number, a3: number): Tensor { return this.L.ggml_permute(this.ctx, a, a0, a1, a2, a3); }
  transpose(a: Tensor): Tensor { return this.L.ggml_transpose(this.ctx, a); }
  reshape(a: Tensor, ...ne: number[]): Tensor {
    const L = this.L;
    switch (ne.length) {
      case 1: return L.ggml_reshape_1d(this.ctx, a, ne[0]);
      case 2: return L.ggml_reshape_2d(this.ctx, a, ne[0], ne[1]);
      case 3: return L.ggml_reshape_3d(this.ctx, a, ne[0], ne[1], ne[2]);
      default: return L.ggml_reshape_4d(this.ctx, a, ne[0], ne[1], ne[2], ne[3]);
    }
  }
  view1d(a: Tensor, ne0: number, offset: number): Tensor { return this.L.ggml_view_1d(this.ctx, a, ne0, offset); }
  view2d(a: Tensor, ne0: number, ne1: number, nb1: number, offset: number): Tensor { return this.L.ggml_view_2d(this.ctx, a, ne0, ne1, nb1, offset); }
  view3d(a: Tensor, ne0: number, ne1: number, ne2: number, nb1: number, nb2: number, offset: number): Tensor {
    return this.L.ggml_view_3d(this.ctx, a, ne0, ne1, ne2, nb1, nb2, offset);
  }
  view4d(a: Tensor, ne: readonly [number, number, number, number], nb: readonly [number, number, number], offset: number): Tensor {
    return this.L.ggml_view_4d(this.ctx, a, ne[0], ne[1], ne[2], ne[3], nb[0], nb[1], nb[2], offset);
  }
  rope(a: Tensor, pos: Tensor, freqFactors: Tensor | null, p: RopeParams): Tensor {
    return this.L.ggml_rope_ext(this.ctx, a, pos, freqFactors, p.nDims, p.mode, p.nCtxOrig, p.freqBase, p.freqScale, p.extFactor, p.attnFactor, p.betaFast, p.betaSlow);
  }
  softMaxExt(a: Tensor, mask: Tensor | null, scale: number, maxBias = 0): Tensor { return this.L.ggml_soft_max_ext(this.ctx, a, mask, scale, maxBias); }
  flashAttnExt(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null, scale: number): Tensor {
    return this.L.ggml_flash_attn_ext(this.ctx, q, k, v, mask, scale, 0, 0);
  }
  precF32(t: Tensor): void { this.L.ggml_prec_set_acc(t, 10); }
  sum(a: Tensor): Tensor { return this.L.ggml_sum(this.ctx, a); }
  crossEntropyLoss(logits: Tensor, labels: Tensor): Tensor { return this.L.ggml_cross_entropy_loss(this.ctx, logits, labels); }
  sqr(a: Tensor): Tensor { return this.L.ggml_sqr(this.ctx, a); }
  log(a: Tensor): Tensor { return this.L.ggml_log(this.ctx, a); }
  sqrt(a: Tensor): Tensor { return this.L.ggml_sqrt(this.ctx, a); }
  div(a: Tensor, b: Tensor): Tensor { return this.L.ggml_div(this.ctx, a, b); }
  clamp(a: Tensor, min: number, max: number): Tensor { return this.L.ggml_clamp(this.ctx, a, min, max); }
  /** Set elements above the diagonal (column > row + nPast) to -inf: a causal mask without a mask tensor. */
  diagMaskInf(a: Tensor, nPast: number): Tensor { return this.L.ggml_diag_mask_inf(this.ctx, a, nPast); }

  dispose(): void {
    if (this.freed) return;
    this.freed = true;
    this.L.ggml_free(this.ctx);
  }
}

/** Copy a tensor's data out (after compute) into a new typed array. */
export function readF32(ggml: Ggml, t: Tensor, count: number, offsetElems = 0): Float32Array {
  const out = new Float32Array(count);
  ggml.lib.ggml_backend_tensor_get(t, out, offsetElems * 4, count * 4);
  return out;
}
