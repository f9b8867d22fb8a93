// Runs graphs: ggml's backend scheduler over the GPU backend (when there is one) and the CPU backend.
//
// One executor per model instance. `run(graph)` allocates the graph's intermediate tensors in the
// scheduler's compute buffers (reused across steps), uploads the graph's inputs, computes, and leaves the
// outputs readable until the next `run`.
import { GgmlComputeError } from './errors.ts';
import type { Graph } from './graph.ts';
import { type Ptr, koffi } from './lib.ts';
import { type Tensor, tensorBuffer } from './tensor.ts';
import { type Ggml, recentGgmlLog } from './runtime.ts';

export class Executor {
  readonly ggml: Ggml;
  private readonly sched: Ptr;
  private dirty = false;
  private disposed = false;
  private evalCb: unknown;

  constructor(ggml: Ggml, maxNodes = 8192) {
    this.ggml = ggml;
    const backends = ggml.gpuBackend ? [ggml.gpuBackend, ggml.cpuBackend] : [ggml.cpuBackend];
    this.sched = ggml.lib.ggml_backend_sched_new(backends, null, backends.length, maxNodes, false, true) as Ptr;
    if (!this.sched) throw new GgmlComputeError('cannot create the ggml scheduler', { expected: 'a scheduler', actual: 'null' }, 'free memory');
  }

  /** Allocate, upload inputs, compute. Outputs stay valid until the next call. */
  run(g: Graph): void {
    const L = this.ggml.lib;
    if (this.dirty) L.ggml_backend_sched_reset(this.sched);
    this.dirty = true;
    if (!L.ggml_backend_sched_alloc_graph(this.sched, g.graph)) {
      throw new GgmlComputeError('cannot allocate the compute graph', { expected: 'compute buffers', actual: 'allocation failed' }, `free memory or use a shorter context; ggml said: ${recentGgmlLog().trim().slice(-300)}`);
    }
    for (const { t, data } of g.pendingInputs()) {
      // An input no operation reads (e.g. rope positions in a head-only part) is never allocated.
      if (!tensorBuffer(t)) continue;
      L.ggml_backend_tensor_set(t, data, 0, data.byteLength);
    }
    const status = L.ggml_backend_sched_graph_compute(this.sched, g.graph);
    if (status !== 0) {
      throw new GgmlComputeError('graph compute failed', { expected: 'GGML_STATUS_SUCCESS (0)', actual: String(status) }, recentGgmlLog().trim().slice(-300) || 'run with --verbose');
    }
  }

  /**
   * ggml's per-node evaluation callback (for profiling and audits, not for serving): `cb(node, true)` asks
   * whether the caller wants to see `node` once computed; every node it answers true for ends a sub-graph,
   * which is computed, and then `cb(node, false)` is called. Answering true for every node computes the graph
   * one node at a time (ggml's CPU fusions, e.g. rms_norm+mul, then do not apply). `undefined` removes it.
   */
  setEvalCallback(cb: ((node: Tensor, ask: boolean) => boolean) | undefined): void {
    const L = this.ggml.lib;
    if (this.evalCb) koffi.unregister(this.evalCb as never);
    this.evalCb = undefined;
    if (cb) this.evalCb = koffi.register((t: Tensor, ask: boolean) => cb(t, ask), koffi.pointer(evalCbProto));
    L.ggml_backend_sched_set_eval_callback(this.sched, this.evalCb ?? null, null);
  }

  /** Bytes held by the compute buffers (for memory planning). */
  computeBufferBytes(): number {
    const L = this.ggml.lib;
    let n = Number(L.ggml_backend_sched_get_buffer_size(this.sched, this.ggml.cpuBackend));
    if (this.ggml.gpuBackend) n += Number(L.ggml_backend_sched_get_buffer_size(this.sched, this.ggml.gpuBackend));
    return n;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.ggml.lib.ggml_backend_sched_free(this.sched);
    if (this.evalCb) koffi.unregister(this.evalCb as never);
    this.evalCb = undefined;
  }
}

const evalCbProto = koffi.proto('bool ggml_backend_sched_eval_callback(void * t, bool ask, void * user)');
