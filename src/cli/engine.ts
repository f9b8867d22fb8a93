// Loading a model for a CLI command: the model part (with a progress bar), its tokenizer, a generator.
// The flags are declared here for --help; the model code (ggml, node-llama-cpp) is imported only when a
// model is loaded, so that `sharedllm <command> --help` starts as fast as node itself.
import { GPU_MODES } from '../ggml/find.ts';
import type { Generator } from '../model/generator.ts';
import type { ModelPart } from '../model/model-part.ts';
import type { SamplerOptions } from '../model/sampler.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import { FLAG_SHAPES, type FlagSpec, type Parsed, UsageError } from './args.ts';
import { ProgressBar, formatBytes } from './progress.ts';

export const MODEL_FLAGS: Record<string, FlagSpec> = {
  model: { type: 'string', arg: 'F', help: 'GGUF model file', required: true },
  threads: { ...FLAG_SHAPES.threads, help: 'CPU threads (default: physical cores)' },
  gpu: { type: 'string', choices: GPU_MODES, default: 'auto', help: 'use a GPU backend when its package is installed and a device is present' },
  'ctx-size': { ...FLAG_SHAPES.tokens, min: 16, help: 'context length in tokens (default: the model\'s, at most 4096)' },
};

export const SAMPLING_FLAGS: Record<string, FlagSpec> = {
  temp: { type: 'number', min: 0, max: 100, default: 0.8, help: 'temperature; 0 is greedy' },
  'top-k': { type: 'number', integer: true, min: 0, default: 40, help: 'keep the k most likely tokens; 0 disables' },
  'top-p': { type: 'number', min: 0, max: 1, default: 0.95, help: 'nucleus sampling; 1 disables' },
  'min-p': { type: 'number', min: 0, max: 1, default: 0.05, help: 'drop tokens below min-p times the best; 0 disables' },
  'repeat-penalty': { type: 'number', min: 0, max: 10, default: 1, help: 'penalty for recent tokens; 1 disables' },
  'presence-penalty': { type: 'number', min: -2, max: 2, default: 0, help: 'subtracted once for tokens already present' },
  'frequency-penalty': { type: 'number', min: -2, max: 2, default: 0, help: 'subtracted per occurrence of a token' },
  seed: { ...FLAG_SHAPES.seed, help: 'random seed; the same seed gives the same text (default, or -1: random)' },
};

export function samplerOptions(f: Parsed['flags']): SamplerOptions {
  return {
    temperature: f.temp as number,
    topK: f['top-k'] as number,
    topP: f['top-p'] as number,
    minP: f['min-p'] as number,
    repeatPenalty: f['repeat-penalty'] as number,
    presencePenalty: f['presence-penalty'] as number,
    frequencyPenalty: f['frequency-penalty'] as number,
    ...(f.seed !== undefined && f.seed !== -1 ? { seed: f.seed as number } : {}),
  };
}

/**
 * Checks a --model file and a --ctx-size against it before any work (reads the GGUF header only): a missing
 * file gets the same clear line on every command, and a context longer than the model was trained for is
 * refused instead of producing noise after its end.
 */
export async function checkModelFlags(cmd: string, path: string, ctxSize: number | undefined): Promise<void> {
  const [{ openModelFile, ModelFileError }, { readHParams }] = await Promise.all([import('../model/load.ts'), import('../model/hparams.ts')]);
  let nCtxTrain: number;
  try {
    const file = openModelFile(path);
    try {
      nCtxTrain = readHParams(file.metadata, path).nCtxTrain;
    } finally {
      file.dispose();
    }
  } catch (e) {
    if (e instanceof ModelFileError) throw new UsageError(`${e.message.split(':')[0]}: ${path} (--model)`, cmd);
    throw e;
  }
  if (ctxSize !== undefined && nCtxTrain > 0 && ctxSize > nCtxTrain) {
    throw new UsageError(`--ctx-size ${ctxSize} is longer than the model's context (${nCtxTrain} tokens): use at most ${nCtxTrain}`, cmd);
  }
}

/** --n-predict -1 means "until the model stops or the context is full". */
export function maxTokensOf(f: Parsed['flags']): number {
  const n = f['n-predict'] as number;
  return n < 0 ? Number.POSITIVE_INFINITY : n;
}

export interface LoadedEngine {
  part: ModelPart;
  tokenizer: Tokenizer;
  generator: Generator;
  dispose(): Promise<void>;
}

export async function loadEngine(cmd: string, f: Parsed['flags'], quiet = false): Promise<LoadedEngine> {
  const path = f.model as string;
  await checkModelFlags(cmd, path, f['ctx-size'] as number | undefined);
  const [{ loadModelPart }, { Tokenizer }, { Batcher, localForward }, { Generator }] = await Promise.all([
    import('../model/load.ts'),
    import('../model/tokenizer.ts'),
    import('../model/batcher.ts'),
    import('../model/generator.ts'),
  ]);
  const bar = quiet ? undefined : new ProgressBar(`loading ${path.split('/').pop()}`);
  const { part } = await loadModelPart(path, {
    gpu: f.gpu as never,
    ...(f.threads !== undefined ? { threads: f.threads as number } : {}),
    ...(f['ctx-size'] !== undefined ? { nCtx: f['ctx-size'] as number } : {}),
    verbose: Boolean(f.verbose),
    onProgress: (a, b) => bar?.update(a, b, `${formatBytes(a)} / ${formatBytes(b)}`),
  });
  bar?.finish(`${part.h.arch}, ${part.h.nLayer} layers, ${formatBytes(part.weights.bytes)}, ${part.ggml.backendName}`);
  const tokenizer = await Tokenizer.load(path, { verbose: Boolean(f.verbose) });
  const generator = new Generator(new Batcher(localForward(part)), tokenizer);
  return {
    part,
    tokenizer,
    generator,
    async dispose() {
      await tokenizer.dispose();
      part.dispose();
    },
  };
}
