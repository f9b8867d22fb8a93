/**
 * What the adapters' API needs of the engine (src/train/adapter: training, the adapter file format,
 * per-request norm gains, exports). The API deals in files: a job's adapter is written to a path, read
 * back from it to serve, and exported from it. `trainAdapterEngine` (engine-train.ts) is the real one;
 * tests pass an in-memory one (adapters.testing.ts).
 */
import type { GenerateOptions } from '../../model/generator.ts';
import type { AdapterKind } from './store.ts';

export interface TrainJob {
  text: string;
  kind: AdapterKind;
  /** LoRA rank (lora only). */
  rank?: number;
  steps: number;
  seed: number;
  signal: AbortSignal;
  onProgress: (step: number, total: number, loss: number) => void;
}

/** What a served request adds to its generate options to run with an adapter (its norm gains). */
export type AdapterOptions = Pick<GenerateOptions, 'normOverrides'>;

export interface AdapterEngine {
  /** The base model's content hash ('sha256:<hex>'): an adapter of another base is refused. */
  readonly baseHash: string;
  /** Fewest tokens of text a training job can use (one training batch). */
  readonly minTextTokens: number;
  /** Tokens of `text` under the base's tokenizer. */
  countTokens(text: string): number;
  /** Trains on `job.text` and writes the adapter to `outPath` (whole or not at all); the last loss. */
  train(job: TrainJob, outPath: string): Promise<{ loss: number | null }>;
  /**
   * Reads the adapter at `path` for serving: the options that apply it to a request. Throws an
   * AdapterBaseMismatch (naming both hashes) for an adapter of another base; undefined for a kind that
   * cannot be served per request (e.g. LoRA: export it instead).
   */
  load(path: string): AdapterOptions | undefined;
  /** The base with the adapter applied, as a full GGUF at `outPath` (llama.cpp loads it). */
  exportMerged(adapterPath: string, outPath: string): Promise<void>;
  /** A LoRA adapter in llama.cpp's LoRA GGUF format at `outPath`. */
  exportLora(adapterPath: string, outPath: string): Promise<void>;
}

/** An adapter file made for another base model. */
export class AdapterBaseMismatch extends Error {
  constructor(
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`this adapter was trained on the base model ${actual}, but this node serves ${expected}`);
    this.name = 'AdapterBaseMismatch';
  }
}
