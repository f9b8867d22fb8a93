// One node-llama-cpp `Llama` instance per process, created on first use.
//
// The tokenizer runs llama.cpp's own tokenizer through node-llama-cpp, loading GGUF files vocab-only.
// `getLlama` loads the native binding and initialises the backend, which takes a second or more, so every
// tokenizer in the process shares one instance. It is CPU-only (`gpu: false`): tokenizing needs no GPU,
// and probing for CUDA or Vulkan on a machine without one is slow and noisy. It never builds llama.cpp
// from source (`build: 'never'`); it uses the prebuilt binary that ships with node-llama-cpp.
//
// llama.cpp logs a lot while loading (and a harmless "missing tensor" error for every vocab-only load).
// Those lines are kept in a small ring for error messages and printed only when verbose logging is on:
// `setLlamaVerbose(true)` or the environment variable SHAREDLLM_LLAMA_LOG=1.
import { getLlama, LlamaLogLevel, type Llama } from 'node-llama-cpp';

const RECENT_LOG_LINES = 20;

let llamaPromise: Promise<Llama> | undefined;
let verbose = process.env.SHAREDLLM_LLAMA_LOG === '1';
const recentLog: string[] = [];

/** Prints llama.cpp's log lines to stderr from now on (or stops printing them). */
export function setLlamaVerbose(on: boolean): void {
  verbose = on;
}

/** The last llama.cpp log lines (level and message), newest last; for error messages. */
export function recentLlamaLog(): readonly string[] {
  return recentLog;
}

/** The process-wide CPU `Llama` instance; created on the first call. */
export function sharedLlama(): Promise<Llama> {
  llamaPromise ??= getLlama({
    gpu: false,
    build: 'never',
    skipDownload: true,
    progressLogs: false,
    logLevel: LlamaLogLevel.warn,
    logger: onLog,
  }).catch((error: unknown) => {
    // Let a later call try again instead of caching the failure.
    llamaPromise = undefined;
    throw error;
  });
  return llamaPromise;
}

function onLog(level: LlamaLogLevel, message: string): void {
  const line = `[llama.cpp ${level}] ${message.trimEnd()}`;
  recentLog.push(line);
  if (recentLog.length > RECENT_LOG_LINES) recentLog.shift();
  if (verbose) process.stderr.write(`${line}\n`);
}
