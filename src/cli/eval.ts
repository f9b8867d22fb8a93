// `sharedllm eval`: perplexity of a llama-architecture GGUF on a text file.
import { readFileSync, existsSync, statSync } from 'node:fs';
import { GPU_MODES } from '../ggml/find.ts';
import { type CommandSpec, FLAG_SHAPES, type Parsed, UsageError } from './args.ts';
import { ProgressBar } from './progress.ts';

export const spec: CommandSpec = {
  name: 'eval',
  summary: 'Perplexity of a GGUF model (llama architecture) on a text file.',
  usage: 'sharedllm eval --model F --text F [--ctx N]',
  flags: {
    model: { type: 'string', arg: 'F', required: true, help: 'GGUF model file' },
    text: { type: 'string', arg: 'F', required: true, help: 'UTF-8 text file to score' },
    ctx: { ...FLAG_SHAPES.tokens, min: 2, help: "tokens per scored window (default: the model's context, at most 512)" },
    batch: { type: 'number', integer: true, min: 1, max: 1024, help: 'windows per graph run (default: up to 4, fewer for large vocabularies)' },
    threads: { ...FLAG_SHAPES.threads, help: 'CPU threads (default: physical cores)' },
    gpu: { type: 'string', choices: GPU_MODES, default: 'off', help: 'GPU backend' },
  },
  examples: ['sharedllm eval --model models/sharedllm-tiny.gguf --text heldout.txt'],
};

export async function run({ flags: f }: Parsed): Promise<number> {
  // Imported here, not above: `sharedllm eval --help` must not load ggml or node-llama-cpp.
  const [{ decodeText }, { evaluateFile }] = await Promise.all([import('../train/corpus.ts'), import('../train/evaluate.ts')]);
  const path = f.text as string;
  if (!existsSync(path) || statSync(path).isDirectory()) throw new UsageError(`--text ${path}: no such file`, 'eval');
  const text = decodeText(readFileSync(path), path);
  const bar = new ProgressBar('eval');
  const r = await evaluateFile(f.model as string, text, {
    gpu: f.gpu as never,
    ...(f.threads !== undefined ? { threads: f.threads as number } : {}),
    ...(f.ctx !== undefined ? { nCtx: f.ctx as number } : {}),
    ...(f.batch !== undefined ? { batch: f.batch as number } : {}),
    verbose: Boolean(f.verbose),
    onProgress: (a, b) => bar.update(a, b, `${a} / ${b} tokens`),
  });
  bar.finish(`${r.tokens} tokens`);
  process.stdout.write(`perplexity ${r.perplexity.toFixed(3)} over ${r.tokens} tokens (mean NLL ${r.nll.toFixed(4)} nats/token)\n`);
  return 0;
}
