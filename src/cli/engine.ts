// Loading a model for a CLI command: the model part (with a progress bar), its tokenizer, a generator.
// The flags are declared here for --help; the model code (ggml, node-llama-cpp) is imported only when a
// model is loaded, so that `sharedllm <command> --help` starts as fast as node itself.
import { GPU_MODES } from '../ggml/find.ts';
import type { Generator } from '../model/generator.ts';
import type { ModelPart } from '../model/model-part.ts';
import type { SamplerOptions } from '../model/sampler.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import type { FlagSpec, Parsed } from './args.ts';
import { ProgressBar, formatBytes } from './progress.ts';

export const MODEL_FLAGS: Record<string, FlagSpec> = {
  model: { type: 'string', arg: 'F', help: 'GGUF model file', required: true },
  threads: { type: 'number', help: 'CPU threads (default: physical cores)' },
  gpu: { type: 'string', choices: GPU_MODES, default: 'auto', help: 'use a GPU backend when its package is installed and a device is present' },
  'ctx-size': { type: 'number', help: 'context length in tokens (default: the model\'s, at most 4096)' },
};

export const SAMPLING_FLAGS: Record<string, FlagSpec> = {
  temp: { type: 'number', default: 0.8, help: 'temperature; 0 is greedy' },
  'top-k': { type: 'number', default: 40, help: 'keep the k most likely tokens; 0 disables' },
  'top-p': { type: 'number', default: 0.95, help: 'nucleus sampling; 1 disables' },
  'min-p': { type: 'number', default: 0.05, help: 'drop tokens below min-p times the best; 0 disables' },
  'repeat-penalty': { type: 'number', default: 1, help: 'penalty for recent tokens; 1 disables' },
  'presence-penalty': { type: 'number', default: 0, help: 'subtracted once for tokens already present' },
  'frequency-penalty': { type: 'number', default: 0, help: 'subtracted per occurrence of a token' },
  seed: { type: 'number', help: 'random seed; the same seed gives the same text (default: random)' },
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
    ...(f.seed !== undefined ? { seed: f.seed as number } : {}),
  };
}

export interface LoadedEngine {
  part: ModelPart;
  tokenizer: Tokenizer;
  generator: Generator;
  dispose(): Promise<void>;
}

export async function loadEngine(f: Parsed['flags'], quiet = false): Promise<LoadedEngine> {
  const path = f.model as string;
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
