// `sharedllm adapter`: per-user adapters on the command line. `train` fits a small adapter (norm gains, or
// LoRA) on a text file over a frozen base GGUF and writes it as an adapter GGUF; `sharedllm generate
// --adapter A.gguf` then generates with it.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { type CommandSpec, FLAG_SHAPES, type Parsed, UsageError } from './args.ts';
import { ProgressBar } from './progress.ts';

export const ACTIONS = ['train'] as const;
type Action = (typeof ACTIONS)[number];

/** Adapter kinds (kept here, not imported: --help must not load the training code). */
export const KINDS = ['norm', 'lora'] as const;

export const spec: CommandSpec = {
  name: 'adapter',
  summary: 'Per-user adapters: train one on your text over a base model (norm gains or LoRA).',
  usage: 'sharedllm adapter train --model F --text FILE --out A.gguf [--kind norm|lora] [--rank R] [--steps N]',
  positionals: ['action'],
  flags: {
    model: { type: 'string', arg: 'F', help: 'the base GGUF (llama family); the adapter works with this exact file only' },
    text: { type: 'string', arg: 'FILE', help: 'UTF-8 text to train on (at least ~2 KB: one batch of tokens)' },
    out: { type: 'string', arg: 'A.gguf', help: 'where to write the adapter (written whole or not at all)' },
    kind: { type: 'string', choices: KINDS, default: 'norm', help: 'norm: the RMSNorm gains only (a few KB); lora: rank-R updates of every attention and FFN matrix' },
    rank: { type: 'number', integer: true, min: 1, max: 256, help: 'LoRA rank (--kind lora; default 4)' },
    steps: { type: 'number', integer: true, min: 1, max: 100_000, default: 60, unit: 'steps', help: 'optimiser steps' },
    seed: { ...FLAG_SHAPES.seed, min: 0, default: 0, help: 'seed of the batch order (and LoRA initialisation)' },
    name: { type: 'string', arg: 'S', help: 'name stored in the adapter (default: the --out file name)' },
    threads: { ...FLAG_SHAPES.threads, help: 'CPU threads (default: physical cores)' },
  },
  examples: [
    'sharedllm adapter train --model models/sharedllm-tiny.gguf --text my-letters.txt --out me.gguf',
    'sharedllm generate --model models/sharedllm-tiny.gguf --adapter me.gguf --prompt "Dear friend," --temp 0',
  ],
};

export async function run({ flags, positionals }: Parsed): Promise<number> {
  const action = positionals[0];
  if (action === undefined || !(ACTIONS as readonly string[]).includes(action)) {
    throw new UsageError(`which action? one of ${ACTIONS.join(', ')}${action === undefined ? '' : ` (got '${action}')`}`, 'adapter');
  }
  const actions: Record<Action, (f: Parsed['flags']) => Promise<number>> = { train };
  return actions[action as Action](flags);
}

async function train(f: Parsed['flags']): Promise<number> {
  const need = (name: string): string => {
    const v = f[name];
    if (typeof v !== 'string' || v.length === 0) throw new UsageError(`adapter train needs --${name} (${spec.flags[name]!.help})`, 'adapter');
    return v;
  };
  const [model, textPath, out] = [need('model'), need('text'), need('out')];
  if (!existsSync(textPath) || statSync(textPath).isDirectory()) throw new UsageError(`--text ${textPath}: no such file`, 'adapter');
  if (f.kind !== 'lora' && f.rank !== undefined) throw new UsageError('--rank applies to --kind lora only', 'adapter');
  const { checkModelFlags } = await import('./engine.ts');
  await checkModelFlags('adapter', model, undefined);
  const [{ decodeText }, { trainAdapter, writeAdapter, adapterBytes }] = await Promise.all([import('../train/corpus.ts'), import('../train/adapter/index.ts')]);
  const text = decodeText(readFileSync(textPath), textPath);
  const kind = f.kind as (typeof KINDS)[number];
  const bar = new ProgressBar(`adapter (${kind})`);
  const adapter = await trainAdapter({
    modelPath: model, text, kind, steps: f.steps as number, seed: f.seed as number,
    name: (f.name as string | undefined) ?? out.split('/').pop()!.replace(/\.gguf$/, ''),
    ...(f.rank !== undefined ? { rank: f.rank as number } : {}),
    ...(f.threads !== undefined ? { threads: f.threads as number } : {}),
    onProgress: (step, total, loss) => bar.update(step, total, `step ${step}/${total} loss ${loss.toFixed(3)}`),
  });
  bar.finish(`${adapter.training?.steps ?? 0} steps`);
  writeAdapter(out, adapter);
  const t = adapter.training;
  process.stdout.write(`wrote ${out}: ${kind} adapter '${adapter.name}', ${(adapterBytes(adapter) / 1024).toFixed(1)} KB, ${t?.tokens ?? 0} tokens of text, loss ${t?.firstLoss.toFixed(3)} -> ${t?.lastLoss.toFixed(3)}; base ${adapter.base.contentHash}\n`);
  return 0;
}
