// Weight placement, the way llama.cpp does it.
//
// On the CPU, matrix weights go into the CPU backend's extra buffer types when the device says that layout
// supports the weight's matmul (CPU_REPACK: Q4_0/Q4_K/IQ4_NL... re-laid out as interleaved blocks for the
// AVX2/NEON kernels; AMX on Sapphire Rapids). The buffer repacks the data as it is uploaded. Everything else
// goes into the plain CPU buffer. With a GPU, weights go to the GPU device (token embeddings stay on the CPU).
import { GgmlComputeError } from './errors.ts';
import { T } from './graph.ts';
import type { Ptr } from './lib.ts';
import type { Ggml } from './runtime.ts';
import { type Tensor, setTensorBuffer } from './tensor.ts';

export interface WeightSpec {
  name: string;
  type: number;
  /** ne0..neN, innermost first (GGUF order). */
  ne: readonly number[];
  /** Used as the first argument of a matmul: may go into a repacked layout. */
  matmul: boolean;
  /** Keep on the CPU even with a GPU (token embeddings, read by get_rows). */
  cpuOnly?: boolean;
}

/** A set of weight tensors allocated in backend buffers. Dispose to free them. */
export class WeightSet {
  readonly tensors = new Map<string, Tensor>();
  /** Buffer type name per weight, e.g. CPU_REPACK or CPU (for reports and tests). */
  readonly placement = new Map<string, string>();
  private readonly ctxs: Ptr[] = [];
  private readonly buffers: Ptr[] = [];
  private readonly ggml: Ggml;
  bytes = 0;
  private disposed = false;

  constructor(ggml: Ggml, specs: readonly WeightSpec[]) {
    this.ggml = ggml;
    const L = ggml.lib;
    const groups = new Map<Ptr, WeightSpec[]>();
    for (const s of specs) {
      const buft = chooseBuft(ggml, s);
      const list = groups.get(buft) ?? [];
      list.push(s);
      groups.set(buft, list);
    }
    for (const [buft, list] of groups) {
      const ctx = L.ggml_init({ mem_size: L.ggml_tensor_overhead() * (list.length + 1), mem_buffer: null, no_alloc: true }) as Ptr;
      this.ctxs.push(ctx);
      const name = L.ggml_backend_buft_name(buft) as string;
      for (const s of list) {
        const t = newTensor(ggml, ctx, s.type, s.ne);
        L.ggml_set_name(t, s.name);
        this.tensors.set(s.name, t);
        this.placement.set(s.name, name);
      }
      const buf = L.ggml_backend_alloc_ctx_tensors_from_buft(ctx, buft) as Ptr | null;
      if (!buf) {
        throw new GgmlComputeError('cannot allocate weight buffer', { expected: `${list.length} tensors in ${name}`, actual: 'allocation failed' }, 'the model does not fit in memory: use a smaller quantisation, fewer layers, or add a worker');
      }
      L.ggml_backend_buffer_set_usage(buf, 1 /* GGML_BACKEND_BUFFER_USAGE_WEIGHTS */);
      this.bytes += Number(L.ggml_backend_buffer_get_size(buf));
      this.buffers.push(buf);
    }
  }

  get(name: string): Tensor {
    const t = this.tensors.get(name);
    if (!t) throw new GgmlComputeError('weight not loaded', { expected: name, actual: 'absent' }, 'this span does not hold that tensor');
    return t;
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  /** Upload a tensor's bytes (exactly ggml_nbytes of it; repacking buffers re-lay it out here). */
  upload(name: string, data: Uint8Array): void {
    const t = this.get(name);
    const n = Number(this.ggml.lib.ggml_nbytes(t));
    if (data.byteLength !== n) {
      throw new GgmlComputeError(`wrong byte size for ${name}`, { expected: String(n), actual: String(data.byteLength) }, 'the file is damaged or its tensor index is wrong');
    }
    this.ggml.lib.ggml_backend_tensor_set(t, data, 0, n);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const b of this.buffers) this.ggml.lib.ggml_backend_buffer_free(b);
    for (const c of this.ctxs) this.ggml.lib.ggml_free(c);
  }
}

function newTensor(ggml: Ggml, ctx: Ptr, type: number, ne: readonly number[]): Tensor {
  const L = ggml.lib;
  switch (ne.length) {
    case 1: return L.ggml_new_tensor_1d(ctx, type, ne[0]);
    case 2: return L.ggml_new_tensor_2d(ctx, type, ne[0], ne[1]);
    case 3: return L.ggml_new_tensor_3d(ctx, type, ne[0], ne[1], ne[2]);
    default: return L.ggml_new_tensor_4d(ctx, type, ne[0], ne[1], ne[2], ne[3]);
  }
}

const supportCache = new Map<string, boolean>();

/** llama.cpp's `weight_buft_supported`: ask the device whether the matmul would run with w in that buft. */
function extraSupports(ggml: Ggml, buft: Ptr, s: WeightSpec): boolean {
  const key = `${String(buft)}:${s.type}:${s.ne.join('x')}`;
  const hit = supportCache.get(key);
  if (hit !== undefined) return hit;
  const L = ggml.lib;
  const ctx = L.ggml_init({ mem_size: L.ggml_tensor_overhead() * 4, mem_buffer: null, no_alloc: true }) as Ptr;
  const dummy = L.ggml_backend_buft_alloc_buffer(buft, 0) as Ptr;
  try {
    const w = newTensor(ggml, ctx, s.type, s.ne);
    const x = L.ggml_new_tensor_4d(ctx, T.F32, s.ne[0], 512, s.ne[2] ?? 1, s.ne[3] ?? 1) as Tensor;
    const op = L.ggml_mul_mat(ctx, w, x) as Tensor;
    setTensorBuffer(w, dummy);
    const ok = Boolean(L.ggml_backend_dev_supports_op(ggml.cpu.dev, op));
    setTensorBuffer(w, null);
    supportCache.set(key, ok);
    return ok;
  } finally {
    if (dummy) L.ggml_backend_buffer_free(dummy);
    L.ggml_free(ctx);
  }
}

function chooseBuft(ggml: Ggml, s: WeightSpec): Ptr {
  const L = ggml.lib;
  if (ggml.gpu && !s.cpuOnly) return L.ggml_backend_dev_buffer_type(ggml.gpu.dev) as Ptr;
  if (s.matmul && s.ne.length >= 2) {
    for (const buft of ggml.cpuExtraBufts) if (extraSupports(ggml, buft, s)) return buft;
  }
  return ggml.cpuBuft;
}
