// The FFI table: every ggml C function SharedLLM calls, declared once, bound through koffi.
//
// This file and the others in src/ggml/ are the only places that touch native pointers. Pointers are
// opaque handles (`Ptr`); nothing outside src/ggml/ dereferences them.
import koffi from 'koffi';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { GgmlLoadError } from './errors.ts';
import { type BinsDir, ggmlLibPath, libName } from './find.ts';

/** An opaque native pointer (koffi External). */
export type Ptr = { readonly __native: unique symbol };

// Signatures as C text: koffi parses them, and a reader can compare them with ggml.h line by line.
const BASE = {
  // ggml.h: contexts and tensors
  ggml_init: 'void * ggml_init(ggml_init_params params)',
  ggml_free: 'void ggml_free(void * ctx)',
  ggml_tensor_overhead: 'size_t ggml_tensor_overhead()',
  ggml_graph_overhead_custom: 'size_t ggml_graph_overhead_custom(size_t size, bool grads)',
  ggml_new_graph_custom: 'void * ggml_new_graph_custom(void * ctx, size_t size, bool grads)',
  ggml_build_forward_expand: 'void ggml_build_forward_expand(void * graph, void * tensor)',
  ggml_graph_n_nodes: 'int ggml_graph_n_nodes(void * graph)',
  ggml_graph_node: 'void * ggml_graph_node(void * graph, int i)',
  ggml_new_tensor_1d: 'void * ggml_new_tensor_1d(void * ctx, int type, int64_t ne0)',
  ggml_new_tensor_2d: 'void * ggml_new_tensor_2d(void * ctx, int type, int64_t ne0, int64_t ne1)',
  ggml_new_tensor_3d: 'void * ggml_new_tensor_3d(void * ctx, int type, int64_t ne0, int64_t ne1, int64_t ne2)',
  ggml_new_tensor_4d: 'void * ggml_new_tensor_4d(void * ctx, int type, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3)',
  ggml_set_name: 'void * ggml_set_name(void * t, const char * name)',
  ggml_set_input: 'void ggml_set_input(void * t)',
  ggml_set_output: 'void ggml_set_output(void * t)',
  ggml_set_param: 'void ggml_set_param(void * t)',
  ggml_set_loss: 'void ggml_set_loss(void * t)',
  ggml_nbytes: 'size_t ggml_nbytes(void * t)',
  ggml_nelements: 'int64_t ggml_nelements(void * t)',
  ggml_row_size: 'size_t ggml_row_size(int type, int64_t ne)',
  ggml_blck_size: 'int64_t ggml_blck_size(int type)',
  ggml_type_size: 'size_t ggml_type_size(int type)',
  ggml_get_first_tensor: 'void * ggml_get_first_tensor(void * ctx)',
  ggml_get_next_tensor: 'void * ggml_get_next_tensor(void * ctx, void * t)',
  ggml_quantize_chunk: 'size_t ggml_quantize_chunk(int type, const float * src, void * dst, int64_t start, int64_t nrows, int64_t n_per_row, const float * imatrix)',
  ggml_quantize_requires_imatrix: 'bool ggml_quantize_requires_imatrix(int type)',
  ggml_log_set: 'void ggml_log_set(void * cb, void * user)',
  ggml_op_desc: 'const char * ggml_op_desc(void * t)',
  ggml_is_contiguous: 'bool ggml_is_contiguous(void * t)',

  // ggml.h: operations
  ggml_get_rows: 'void * ggml_get_rows(void * ctx, void * a, void * b)',
  ggml_repeat: 'void * ggml_repeat(void * ctx, void * a, void * b)',
  ggml_set_rows: 'void * ggml_set_rows(void * ctx, void * a, void * b, void * c)',
  ggml_rms_norm: 'void * ggml_rms_norm(void * ctx, void * a, float eps)',
  ggml_norm: 'void * ggml_norm(void * ctx, void * a, float eps)',
  ggml_mul: 'void * ggml_mul(void * ctx, void * a, void * b)',
  ggml_add: 'void * ggml_add(void * ctx, void * a, void * b)',
  ggml_sub: 'void * ggml_sub(void * ctx, void * a, void * b)',
  ggml_silu: 'void * ggml_silu(void * ctx, void * a)',
  ggml_gelu: 'void * ggml_gelu(void * ctx, void * a)',
  ggml_swiglu_split: 'void * ggml_swiglu_split(void * ctx, void * a, void * b)',
  ggml_swiglu: 'void * ggml_swiglu(void * ctx, void * a)',
  ggml_mul_mat: 'void * ggml_mul_mat(void * ctx, void * a, void * b)',
  ggml_prec_set_acc: 'bool ggml_prec_set_acc(void * a, int prec)',
  ggml_rope_ext: 'void * ggml_rope_ext(void * ctx, void * a, void * b, void * c, int n_dims, int mode, int n_ctx_orig, float freq_base, float freq_scale, float ext_factor, float attn_factor, float beta_fast, float beta_slow)',
  ggml_log: 'void * ggml_log(void * ctx, void * a)',
  ggml_soft_max_ext: 'void * ggml_soft_max_ext(void * ctx, void * a, void * mask, float scale, float max_bias)',
  ggml_flash_attn_ext: 'void * ggml_flash_attn_ext(void * ctx, void * q, void * k, void * v, void * mask, float scale, float max_bias, float logit_softcap)',
  ggml_permute: 'void * ggml_permute(void * ctx, void * a, int a0, int a1, int a2, int a3)',
  ggml_transpose: 'void * ggml_transpose(void * ctx, void * a)',
  ggml_view_1d: 'void * ggml_view_1d(void * ctx, void * a, int64_t ne0, size_t offset)',
  ggml_view_2d: 'void * ggml_view_2d(void * ctx, void * a, int64_t ne0, int64_t ne1, size_t nb1, size_t offset)',
  ggml_view_3d: 'void * ggml_view_3d(void * ctx, void * a, int64_t ne0, int64_t ne1, int64_t ne2, size_t nb1, size_t nb2, size_t offset)',
  ggml_view_4d: 'void * ggml_view_4d(void * ctx, void * a, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3, size_t nb1, size_t nb2, size_t nb3, size_t offset)',
  ggml_reshape_1d: 'void * ggml_reshape_1d(void * ctx, void * a, int64_t ne0)',
  ggml_reshape_2d: 'void * ggml_reshape_2d(void * ctx, void * a, int64_t ne0, int64_t ne1)',
  ggml_reshape_3d: 'void * ggml_reshape_3d(void * ctx, void * a, int64_t ne0, int64_t ne1, int64_t ne2)',
  ggml_reshape_4d: 'void * ggml_reshape_4d(void * ctx, void * a, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3)',
  ggml_cont: 'void * ggml_cont(void * ctx, void * a)',
  ggml_scale: 'void * ggml_scale(void * ctx, void * a, float s)',
  ggml_cpy: 'void * ggml_cpy(void * ctx, void * a, void * b)',
  ggml_cast: 'void * ggml_cast(void * ctx, void * a, int type)',
  ggml_concat: 'void * ggml_concat(void * ctx, void * a, void * b, int dim)',
  ggml_sum: 'void * ggml_sum(void * ctx, void * a)',
  ggml_mean: 'void * ggml_mean(void * ctx, void * a)',
  ggml_cross_entropy_loss: 'void * ggml_cross_entropy_loss(void * ctx, void * a, void * b)',
  ggml_sqr: 'void * ggml_sqr(void * ctx, void * a)',
  ggml_sqrt: 'void * ggml_sqrt(void * ctx, void * a)',
  ggml_div: 'void * ggml_div(void * ctx, void * a, void * b)',
  ggml_clamp: 'void * ggml_clamp(void * ctx, void * a, float min, float max)',
  ggml_diag_mask_inf: 'void * ggml_diag_mask_inf(void * ctx, void * a, int n_past)',

  // ggml.h: automatic differentiation and optimizer steps (training, src/ggml/opt.ts)
  ggml_build_backward_expand: 'void ggml_build_backward_expand(void * ctx, void * graph, void * grad_accs)',
  ggml_graph_get_grad: 'void * ggml_graph_get_grad(void * graph, void * node)',
  ggml_graph_get_grad_acc: 'void * ggml_graph_get_grad_acc(void * graph, void * node)',
  ggml_opt_step_adamw: 'void * ggml_opt_step_adamw(void * ctx, void * a, void * grad, void * m, void * v, void * adamw_params)',

  // ggml-backend.h
  ggml_backend_load_all_from_path: 'void ggml_backend_load_all_from_path(const char * dir)',
  ggml_backend_reg_count: 'size_t ggml_backend_reg_count()',
  ggml_backend_reg_get: 'void * ggml_backend_reg_get(size_t i)',
  ggml_backend_reg_name: 'const char * ggml_backend_reg_name(void * reg)',
  ggml_backend_reg_get_proc_address: 'void * ggml_backend_reg_get_proc_address(void * reg, const char * name)',
  ggml_threadpool_params_init: 'void ggml_threadpool_params_init(void * p, int n_threads)',
  ggml_backend_dev_count: 'size_t ggml_backend_dev_count()',
  ggml_backend_dev_get: 'void * ggml_backend_dev_get(size_t i)',
  ggml_backend_dev_name: 'const char * ggml_backend_dev_name(void * dev)',
  ggml_backend_dev_description: 'const char * ggml_backend_dev_description(void * dev)',
  ggml_backend_dev_type: 'int ggml_backend_dev_type(void * dev)',
  ggml_backend_dev_memory: 'void ggml_backend_dev_memory(void * dev, _Out_ size_t * free, _Out_ size_t * total)',
  ggml_backend_dev_backend_reg: 'void * ggml_backend_dev_backend_reg(void * dev)',
  ggml_backend_dev_init: 'void * ggml_backend_dev_init(void * dev, const char * params)',
  ggml_backend_dev_buffer_type: 'void * ggml_backend_dev_buffer_type(void * dev)',
  ggml_backend_dev_host_buffer_type: 'void * ggml_backend_dev_host_buffer_type(void * dev)',
  ggml_backend_dev_supports_op: 'bool ggml_backend_dev_supports_op(void * dev, void * op)',
  ggml_backend_dev_by_type: 'void * ggml_backend_dev_by_type(int type)',
  ggml_backend_name: 'const char * ggml_backend_name(void * backend)',
  ggml_backend_free: 'void ggml_backend_free(void * backend)',
  ggml_backend_get_device: 'void * ggml_backend_get_device(void * backend)',
  ggml_backend_buft_name: 'const char * ggml_backend_buft_name(void * buft)',
  ggml_backend_buft_alloc_buffer: 'void * ggml_backend_buft_alloc_buffer(void * buft, size_t size)',
  ggml_backend_buft_is_host: 'bool ggml_backend_buft_is_host(void * buft)',
  ggml_backend_buft_get_alloc_size: 'size_t ggml_backend_buft_get_alloc_size(void * buft, void * t)',
  ggml_backend_buffer_free: 'void ggml_backend_buffer_free(void * buf)',
  ggml_backend_buffer_name: 'const char * ggml_backend_buffer_name(void * buf)',
  ggml_backend_buffer_get_size: 'size_t ggml_backend_buffer_get_size(void * buf)',
  ggml_backend_buffer_clear: 'void ggml_backend_buffer_clear(void * buf, uint8_t value)',
  ggml_backend_buffer_set_usage: 'void ggml_backend_buffer_set_usage(void * buf, int usage)',
  ggml_backend_tensor_set: 'void ggml_backend_tensor_set(void * t, const void * data, size_t offset, size_t size)',
  ggml_backend_tensor_get: 'void ggml_backend_tensor_get(void * t, _Out_ void * data, size_t offset, size_t size)',
  ggml_backend_graph_compute: 'int ggml_backend_graph_compute(void * backend, void * graph)',
  ggml_backend_sched_new: 'void * ggml_backend_sched_new(void ** backends, void ** bufts, int n, size_t graph_size, bool parallel, bool op_offload)',
  ggml_backend_sched_free: 'void ggml_backend_sched_free(void * sched)',
  ggml_backend_sched_reserve: 'bool ggml_backend_sched_reserve(void * sched, void * graph)',
  ggml_backend_sched_alloc_graph: 'bool ggml_backend_sched_alloc_graph(void * sched, void * graph)',
  ggml_backend_sched_graph_compute: 'int ggml_backend_sched_graph_compute(void * sched, void * graph)',
  ggml_backend_sched_reset: 'void ggml_backend_sched_reset(void * sched)',
  ggml_backend_sched_get_buffer_size: 'size_t ggml_backend_sched_get_buffer_size(void * sched, void * backend)',
  ggml_backend_sched_set_tensor_backend: 'void ggml_backend_sched_set_tensor_backend(void * sched, void * node, void * backend)',
  ggml_backend_sched_set_eval_callback: 'void ggml_backend_sched_set_eval_callback(void * sched, void * cb, void * user)',

  // ggml-alloc.h
  ggml_backend_alloc_ctx_tensors_from_buft: 'void * ggml_backend_alloc_ctx_tensors_from_buft(void * ctx, void * buft)',
  ggml_backend_alloc_ctx_tensors_from_buft_size: 'size_t ggml_backend_alloc_ctx_tensors_from_buft_size(void * ctx, void * buft)',
  ggml_gallocr_new: 'void * ggml_gallocr_new(void * buft)',
  ggml_gallocr_free: 'void ggml_gallocr_free(void * galloc)',
  ggml_gallocr_alloc_graph: 'bool ggml_gallocr_alloc_graph(void * galloc, void * graph)',
} as const;

type Fn = (...args: any[]) => any;
export type GgmlLib = { [K in keyof typeof BASE]: Fn } & {
  /** Functions found through a backend registry's proc-address table (CPU threads, extra buffer types). */
  setThreads: ((backend: Ptr, n: number) => void) | undefined;
  extraBufts: ((dev: Ptr) => Ptr[]) | undefined;
  /** The CPU backend's persistent threadpool (ggml-cpu.h), when the loaded variant exports it. */
  threadpool: { create(params: Buffer): Ptr | null; free(tp: Ptr): void; attach(backend: Ptr, tp: Ptr | null): void } | undefined;
  bins: BinsDir;
};

koffi.struct('ggml_init_params', { mem_size: 'size_t', mem_buffer: 'void *', no_alloc: 'bool' });
const setThreadsProto = koffi.proto('void ggml_backend_set_n_threads_t(void * backend, int n)');
const extraBuftsProto = koffi.proto('void ** ggml_backend_dev_get_extra_bufts_t(void * dev)');
const tpNewProto = koffi.proto('void * ggml_threadpool_new_t(void * params)');
const tpFreeProto = koffi.proto('void ggml_threadpool_free_t(void * tp)');
const tpAttachProto = koffi.proto('void ggml_backend_cpu_set_threadpool_t(void * backend, void * tp)');

/** Load libggml-base + libggml from a bins folder and every backend next to them. */
export function loadGgml(bins: BinsDir): GgmlLib {
  const base = join(bins.dir, libName('ggml-base'));
  if (!existsSync(base)) {
    throw new GgmlLoadError('libggml-base missing', { expected: base, actual: 'no such file' }, 'reinstall node-llama-cpp');
  }
  let libBase: ReturnType<typeof koffi.load>;
  let libGgml: ReturnType<typeof koffi.load>;
  try {
    libBase = koffi.load(base);
    libGgml = koffi.load(ggmlLibPath(bins.dir));
  } catch (e) {
    throw new GgmlLoadError('cannot load the ggml shared libraries', { expected: `loadable ${bins.dir}`, actual: String(e) }, 'check that node-llama-cpp installed for this platform');
  }
  const out: Record<string, unknown> = {};
  for (const [name, sig] of Object.entries(BASE)) {
    // Tensor ops and backend basics live in libggml-base, the backend registry in libggml.
    try {
      out[name] = libBase.func(sig);
    } catch {
      out[name] = libGgml.func(sig);
    }
  }
  const lib = out as GgmlLib;
  lib.bins = bins;
  return lib;
}

/** After backends are loaded: bind the CPU registry's optional functions. */
export function bindCpuProcs(lib: GgmlLib, cpuReg: Ptr): void {
  const st = lib.ggml_backend_reg_get_proc_address(cpuReg, 'ggml_backend_set_n_threads');
  if (st) lib.setThreads = (backend, n) => koffi.call(st, setThreadsProto, backend, n) as void;
  const tpNew = lib.ggml_backend_reg_get_proc_address(cpuReg, 'ggml_threadpool_new');
  const tpFree = lib.ggml_backend_reg_get_proc_address(cpuReg, 'ggml_threadpool_free');
  const tpAttach = lib.ggml_backend_reg_get_proc_address(cpuReg, 'ggml_backend_cpu_set_threadpool');
  if (tpNew && tpFree && tpAttach) {
    lib.threadpool = {
      create: (params) => koffi.call(tpNew, tpNewProto, params) as Ptr | null,
      free: (tp) => koffi.call(tpFree, tpFreeProto, tp) as void,
      attach: (backend, tp) => koffi.call(tpAttach, tpAttachProto, backend, tp) as void,
    };
  }
  const eb = lib.ggml_backend_reg_get_proc_address(cpuReg, 'ggml_backend_dev_get_extra_bufts');
  if (eb) {
    lib.extraBufts = (dev) => {
      const arr = koffi.call(eb, extraBuftsProto, dev) as unknown;
      const result: Ptr[] = [];
      if (!arr) return result;
      for (let i = 0; i < 16; i++) {
        const p = koffi.decode(arr, i * 8, 'void *') as Ptr | null;
        if (!p) break;
        result.push(p);
      }
      return result;
    };
  }
}

export { koffi };
