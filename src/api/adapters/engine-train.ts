/**
 * The real AdapterEngine: src/train/adapter's training (only the adapter's tensors trainable over the
 * frozen base), run in a process of its own (train-child.ts: the primary's event loop and memory stay free
 * for serving); its adapter file (written through a temp file and renamed); its per-sequence norm gains
 * (GenerateOptions.normOverrides: the batched step applies each sequence's own); its exports.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ADAPTER_DEFAULTS, adapterBaseOf, exportLora, exportMerged, normOverrides, readAdapter } from '../../train/adapter/index.ts';
import type { Tokenizer } from '../../model/tokenizer.ts';
import { AdapterBaseMismatch, type AdapterEngine, type AdapterOptions, type TrainJob } from './engine.ts';
import { type TrainChildJob, TrainChildLineSchema } from './train-child-protocol.ts';

export interface TrainEngineOptions {
  /** The base GGUF the node serves. */
  modelPath: string;
  /** The node's tokenizer (counts a request's tokens before anything is stored). */
  tokenizer: Tokenizer;
  /** CPU threads of a training job. */
  threads?: number;
}

export function trainAdapterEngine(options: TrainEngineOptions): AdapterEngine {
  const base = adapterBaseOf(options.modelPath);
  /** The adapter at `path`; AdapterBaseMismatch (naming both hashes) when it was made for another base. */
  const readOwn = (path: string) => {
    const adapter = readAdapter(path);
    if (adapter.base.contentHash !== base.contentHash) throw new AdapterBaseMismatch(base.contentHash, adapter.base.contentHash);
    return adapter;
  };
  return {
    baseHash: base.contentHash,
    // One training batch of rows, plus the next-token target of the last one (session.ts encodeTrainingText).
    minTextTokens: ADAPTER_DEFAULTS.batch * ADAPTER_DEFAULTS.ctx + 1,
    countTokens: (text) => options.tokenizer.encode(text).length,
    train: (job, outPath) =>
      trainInChild(
        {
          modelPath: options.modelPath, outPath, kind: job.kind, steps: job.steps, seed: job.seed,
          ...(job.rank === undefined ? {} : { rank: job.rank }), ...(options.threads === undefined ? {} : { threads: options.threads }),
        },
        job,
      ),
    load(path): AdapterOptions | undefined {
      const adapter = readOwn(path);
      if (adapter.kind !== 'norm') return undefined;
      return { normOverrides: normOverrides(adapter) };
    },
    exportMerged: (adapterPath, outPath) => exportMerged(options.modelPath, readOwn(adapterPath), outPath),
    exportLora: (adapterPath, outPath) => exportLora(readOwn(adapterPath), outPath),
  };
}

/** How the child runs: this checkout's TypeScript through tsx, or the built JavaScript beside this file. */
function childCommand(): string[] {
  const self = fileURLToPath(import.meta.url);
  const child = self.replace(/engine-train\.(ts|js)$/, 'train-child.$1');
  return self.endsWith('.ts') ? ['--import', import.meta.resolve('tsx'), child] : [child];
}

/** Runs one job in a child process; SIGTERM on abort. Resolves with the last loss once the adapter is written. */
function trainInChild(spec: TrainChildJob, job: TrainJob): Promise<{ loss: number | null }> {
  return new Promise((resolve, reject) => {
    if (job.signal.aborted) return reject(job.signal.reason);
    const child = spawn(process.execPath, [...childCommand(), JSON.stringify(spec)], { stdio: ['pipe', 'pipe', 'pipe'] });
    let result: { loss: number | null } | undefined;
    let failure: string | undefined;
    let stderr = '';
    const onAbort = () => child.kill('SIGTERM');
    job.signal.addEventListener('abort', onAbort, { once: true });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr = (stderr + d).slice(-4096);
    });
    createInterface({ input: child.stdout }).on('line', (text) => {
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch {
        return; // not ours (a library's print): ignored
      }
      const line = TrainChildLineSchema.safeParse(raw);
      if (!line.success) return;
      if (line.data.event === 'progress') job.onProgress(line.data.step, line.data.total, line.data.loss ?? Number.NaN);
      else if (line.data.event === 'done') result = { loss: line.data.loss };
      else failure = line.data.message;
    });
    child.once('error', reject);
    child.once('close', (code, signal) => {
      job.signal.removeEventListener('abort', onAbort);
      if (job.signal.aborted) return reject(job.signal.reason);
      if (code === 0 && result !== undefined) return resolve(result);
      reject(new Error(failure ?? `the training process exited (${code ?? signal})${stderr === '' ? '' : `: ${stderr.trim().split('\n').at(-1)}`}`));
    });
    child.stdin.on('error', () => {}); // a child that died early: its exit says why
    child.stdin.end(job.text, 'utf8');
  });
}
