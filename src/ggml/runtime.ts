// The ggml runtime of this process: libraries loaded once, backends chosen, threads set.
//
// `getGgml()` loads node-llama-cpp's prebuilt ggml (the best CPU variant for this machine through
// `ggml_backend_load_all_from_path`, plus a GPU backend when one is installed, present and allowed) and
// keeps one CPU backend and at most one GPU backend. Everything else in src/ggml/ takes a `Ggml`.
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { GgmlLoadError } from './errors.ts';
import { type GpuMode, chooseBins, installedBins } from './find.ts';
import { getThreadAffinity, setThreadAffinity } from './affinity.ts';
import { type GgmlLib, type Ptr, bindCpuProcs, koffi, loadGgml } from './lib.ts';

export const DEVICE_TYPE = { CPU: 0, GPU: 1, IGPU: 2, ACCEL: 3 } as const;

export interface GgmlOptions {
  /** `auto` uses a GPU when its backend package is installed and a device is present; `off` never. */
  gpu?: GpuMode;
  /** CPU threads for compute; default: physical cores (cores / 2 when SMT, at least 1). */
  threads?: number;
  /** Print ggml's own log lines (backend loading, warnings) to stderr. */
  verbose?: boolean;
  /** Pin compute threads to these cores (see Ggml.setCpus). */
  cpus?: readonly number[];
}

export interface Device {
  dev: Ptr;
  name: string;
  description: string;
  type: number;
}

export class Ggml {
  readonly lib: GgmlLib;
  readonly cpu: Device;
  readonly gpu: Device | undefined;
  /** CPU backend (always present). */
  readonly cpuBackend: Ptr;
  /** GPU backend when a GPU device was chosen. */
  readonly gpuBackend: Ptr | undefined;
  /** The CPU's default buffer type and its extra ones (repacked layouts, AMX), best first. */
  readonly cpuBuft: Ptr;
  readonly cpuExtraBufts: Ptr[];
  threads: number;
  private disposed = false;

  constructor(lib: GgmlLib, opts: Required<Pick<GgmlOptions, 'gpu' | 'threads'>>) {
    this.lib = lib;
    lib.ggml_backend_load_all_from_path(lib.bins.dir);
    const devices: Device[] = [];
    for (let i = 0; i < lib.ggml_backend_dev_count(); i++) {
      const dev = lib.ggml_backend_dev_get(i) as Ptr;
      devices.push({ dev, name: lib.ggml_backend_dev_name(dev), description: lib.ggml_backend_dev_description(dev), type: lib.ggml_backend_dev_type(dev) });
    }
    const cpu = devices.find((d) => d.type === DEVICE_TYPE.CPU);
    if (!cpu) {
      throw new GgmlLoadError('no CPU backend could be loaded', { expected: 'a libggml-cpu-* variant this CPU supports', actual: `devices: ${devices.map((d) => d.name).join(', ') || 'none'}` }, `check ${lib.bins.dir}`);
    }
    this.cpu = cpu;
    bindCpuProcs(lib, lib.ggml_backend_dev_backend_reg(cpu.dev) as Ptr);
    this.cpuBackend = lib.ggml_backend_dev_init(cpu.dev, null) as Ptr;
    this.cpuBuft = lib.ggml_backend_dev_buffer_type(cpu.dev) as Ptr;
    this.cpuExtraBufts = lib.extraBufts ? lib.extraBufts(cpu.dev) : [];
    this.threads = opts.threads;
    lib.setThreads?.(this.cpuBackend, opts.threads);
    if (opts.gpu !== 'off') {
      const gpu = devices.find((d) => d.type === DEVICE_TYPE.GPU || d.type === DEVICE_TYPE.IGPU);
      if (gpu) {
        this.gpu = gpu;
        this.gpuBackend = lib.ggml_backend_dev_init(gpu.dev, null) as Ptr;
      } else if (opts.gpu !== 'auto') {
        throw new GgmlLoadError(`--gpu ${opts.gpu} asked for, but no ${opts.gpu} device was found`, { expected: `a ${opts.gpu} device`, actual: devices.map((d) => d.name).join(', ') }, 'use --gpu auto or --gpu off');
      }
    }
  }

  setThreads(n: number): void {
    this.threads = n;
    this.lib.setThreads?.(this.cpuBackend, n);
    if (this.cpus) this.setCpus(this.cpus);
  }

  /** Cores the compute threads are pinned to, or undefined (ggml's default). */
  cpus: readonly number[] | undefined;
  private threadpool: Ptr | null = null;
  /** This thread's affinity before ggml pinned it (restored when pinning ends). */
  private unpinnedMask: Buffer | undefined;

  /**
   * Pin the compute threads one per core, in this order, in a persistent threadpool whose threads sleep
   * between graphs (ggml's default makes threads per graph and lets the OS place them). For several
   * processes taking turns on the same cores (a pipeline on one machine): ggml's threads meet at spinning
   * barriers, and without pinning two of one process's threads can land on one core for a while. Measured
   * on a 2-core VM, primary + 1 or 2 workers, 2 threads each: 0.84x / 0.72x of a single node unpinned,
   * 0.96x / 0.94x pinned; a single node alone was about 3% slower pinned (72.4 vs 70.0 ms per token), so
   * it is off unless asked for (`--cpus`). Linux only. `undefined` goes back to the default.
   */
  setCpus(cpus: readonly number[] | undefined): void {
    const tp = this.lib.threadpool;
    if (cpus && !tp) throw new GgmlLoadError('this ggml build cannot pin threads', { expected: 'ggml_threadpool_new in the CPU backend', actual: 'missing' }, 'run without --cpus');
    if (cpus) {
      const max = availableParallelism();
      const bad = cpus.find((c) => !Number.isInteger(c) || c < 0 || c >= 512);
      if (bad !== undefined) throw new GgmlLoadError('bad core number', { expected: `cores 0..${max - 1}`, actual: String(bad) }, 'list cores like 0-3 or 0,2,4');
      if (new Set(cpus).size < this.threads) {
        throw new GgmlLoadError('fewer cores than threads', { expected: `at least ${this.threads} distinct cores`, actual: cpus.join(',') }, 'list one core per thread, or lower --threads');
      }
    }
    if (cpus) this.unpinnedMask ??= getThreadAffinity();
    const old = this.threadpool;
    this.threadpool = null;
    this.cpus = cpus;
    if (cpus && tp) {
      // struct ggml_threadpool_params: bool cpumask[512]; int n_threads; int prio; uint32 poll; bool strict_cpu; bool paused.
      const params = Buffer.alloc(528);
      this.lib.ggml_threadpool_params_init(params, this.threads);
      for (const c of cpus) params[c] = 1;
      params.writeUInt32LE(0, 520); // poll 0: sleep between graphs, never spin on cores another process needs
      params[524] = 1; // strict: thread i on the i-th listed core
      this.threadpool = tp.create(params);
      if (!this.threadpool) throw new GgmlLoadError('ggml_threadpool_new failed', { expected: 'a threadpool', actual: 'null' }, 'run without --cpus');
    }
    tp?.attach(this.cpuBackend, this.threadpool);
    if (old) tp?.free(old);
    if (!cpus && this.unpinnedMask) {
      setThreadAffinity(this.unpinnedMask); // ggml pinned this thread when it made the pool
      this.unpinnedMask = undefined;
    }
  }

  /** Free and total memory of the device weights would go to, in bytes. */
  memory(): { free: number; total: number } {
    const dev = this.gpu?.dev ?? this.cpu.dev;
    const free = [0];
    const total = [0];
    this.lib.ggml_backend_dev_memory(dev, free, total);
    return { free: Number(free[0]), total: Number(total[0]) };
  }

  get backendName(): 'cpu' | 'cuda' | 'vulkan' | 'metal' {
    if (!this.gpu) return 'cpu';
    const n = this.gpu.name.toLowerCase();
    return n.includes('cuda') ? 'cuda' : n.includes('vulkan') ? 'vulkan' : n.includes('metal') || n.includes('mtl') ? 'metal' : 'cuda';
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.gpuBackend) this.lib.ggml_backend_free(this.gpuBackend);
    this.lib.ggml_backend_free(this.cpuBackend);
    if (this.threadpool) this.lib.threadpool?.free(this.threadpool);
    this.threadpool = null;
  }
}

let instance: Ggml | undefined;
let instanceKey = '';

/** The process-wide ggml runtime; the first call decides GPU mode (later calls may change threads). */
export function getGgml(opts: GgmlOptions = {}): Ggml {
  const gpu = resolveGpuMode(opts.gpu ?? 'auto');
  const threads = opts.threads ?? defaultThreads();
  if (instance) {
    if (gpu !== instanceKey && opts.gpu !== undefined && opts.gpu !== 'auto') {
      throw new GgmlLoadError('ggml already loaded with another GPU mode', { expected: instanceKey, actual: gpu }, 'use one GPU mode per process');
    }
    if (opts.threads !== undefined && opts.threads !== instance.threads) instance.setThreads(threads);
    if (opts.cpus !== undefined) instance.setCpus(opts.cpus);
    return instance;
  }
  setLogging(opts.verbose ?? false);
  const bins = chooseBins(gpu);
  const lib = loadGgml(bins);
  installLogger(lib);
  instance = new Ggml(lib, { gpu, threads });
  instanceKey = gpu;
  if (opts.cpus !== undefined) instance.setCpus(opts.cpus);
  return instance;
}

/** `auto` becomes a concrete choice: a GPU package only when the hardware is evidently there. */
export function resolveGpuMode(mode: GpuMode): GpuMode {
  if (mode !== 'auto') return mode;
  const bins = installedBins();
  if (process.platform === 'darwin' && bins.some((b) => b.gpu === 'metal')) return 'metal';
  const nvidia = existsSync('/dev/nvidiactl') || existsSync('/proc/driver/nvidia/version');
  if (nvidia && bins.some((b) => b.gpu === 'cuda')) return 'cuda';
  return 'off';
}

export function defaultThreads(): number {
  // ggml runs best on physical cores; with 2 or fewer logical cores use them all.
  const n = availableParallelism();
  return n <= 2 ? n : Math.max(1, Math.floor(n / 2));
}

// ggml logs through a callback; by default we keep quiet and keep the last lines for error messages.
let verboseLog = false;
const recent: string[] = [];
let logCallback: unknown;
function setLogging(verbose: boolean): void {
  verboseLog = verbose;
}
export function setGgmlVerbose(verbose: boolean): void {
  verboseLog = verbose;
}
export function recentGgmlLog(): string {
  return recent.join('');
}
function installLogger(lib: GgmlLib): void {
  const proto = koffi.proto('void ggml_log_cb(int level, const char * text, void * user)');
  logCallback = koffi.register((level: number, text: string) => {
    recent.push(text);
    if (recent.length > 50) recent.shift();
    if (verboseLog || level >= 4) process.stderr.write(text);
  }, koffi.pointer(proto));
  lib.ggml_log_set(logCallback, null);
}
