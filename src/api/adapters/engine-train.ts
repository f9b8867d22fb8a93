/**
 * The real AdapterEngine: src/train/adapter's training (only the adapter's tensors trainable over the
 * frozen base), its adapter file (written through a temp file and renamed), its per-sequence norm gains
 * (GenerateOptions.normOverrides: the batched step applies each sequence's own) and its exports.
 */
import { ADAPTER_DEFAULTS, adapterBaseOf, normOverrides, readAdapter, trainAdapter, writeAdapter } from '../../train/adapter/index.ts';
import type { Tokenizer } from '../../model/tokenizer.ts';
import { ApiError } from '../errors.ts';
import { AdapterBaseMismatch, type AdapterEngine, type AdapterOptions } from './engine.ts';

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
  return {
    baseHash: base.contentHash,
    // One training batch of rows, plus the next-token target of the last one (session.ts encodeTrainingText).
    minTextTokens: ADAPTER_DEFAULTS.batch * ADAPTER_DEFAULTS.ctx + 1,
    countTokens: (text) => options.tokenizer.encode(text).length,
    async train(job, outPath) {
      const adapter = await trainAdapter({
        modelPath: options.modelPath,
        text: job.text,
        kind: job.kind,
        ...(job.rank === undefined ? {} : { rank: job.rank }),
        steps: job.steps,
        seed: job.seed,
        ...(options.threads === undefined ? {} : { threads: options.threads }),
        signal: job.signal,
        onProgress: job.onProgress,
      });
      writeAdapter(outPath, adapter);
      return { loss: adapter.training?.lastLoss ?? null };
    },
    load(path): AdapterOptions | undefined {
      const adapter = readAdapter(path);
      if (adapter.base.contentHash !== base.contentHash) throw new AdapterBaseMismatch(base.contentHash, adapter.base.contentHash);
      if (adapter.kind !== 'norm') return undefined;
      return { normOverrides: normOverrides(adapter) };
    },
    async exportMerged() {
      throw new ApiError(501, 'merged export is not wired yet');
    },
    async exportLora() {
      throw new ApiError(501, 'LoRA export is not wired yet');
    },
  };
}
