// The calling thread's CPU affinity (Linux, through libc). ggml pins the thread that creates a pinned
// threadpool (our main thread: it is compute thread 0); going back to unpinned threads must undo that,
// or every thread the process creates later (ggml's per-graph threads included) inherits one core.
import { GgmlLoadError } from './errors.ts';
import { koffi } from './lib.ts';

const MASK_BYTES = 128; // 1024 CPUs, the size glibc's cpu_set_t covers

type Fn = (...args: unknown[]) => number;
let calls: { get: Fn; set: Fn } | undefined;

function libc(): { get: Fn; set: Fn } {
  if (process.platform !== 'linux') {
    throw new GgmlLoadError('pinning threads to cores is supported on Linux only', { expected: 'linux', actual: process.platform }, 'run without --cpus');
  }
  if (!calls) {
    const lib = koffi.load('libc.so.6');
    calls = {
      get: lib.func('int sched_getaffinity(int pid, size_t size, _Out_ uint8_t *mask)') as Fn,
      set: lib.func('int sched_setaffinity(int pid, size_t size, const uint8_t *mask)') as Fn,
    };
  }
  return calls;
}

/** The calling thread's affinity mask (bit i = CPU i). */
export function getThreadAffinity(): Buffer {
  const mask = Buffer.alloc(MASK_BYTES);
  if (libc().get(0, MASK_BYTES, mask) !== 0) throw new GgmlLoadError('sched_getaffinity failed', { expected: '0', actual: '-1' }, 'run without --cpus');
  return mask;
}

/** Set the calling thread's affinity mask. */
export function setThreadAffinity(mask: Buffer): void {
  if (libc().set(0, mask.length, mask) !== 0) throw new GgmlLoadError('sched_setaffinity failed', { expected: '0', actual: '-1' }, 'check the core list');
}
