// `sharedllm train`: train a llama-architecture model on a text corpus with ggml (from scratch with a
// preset, resumed from a checkpoint, or fine-tuned from a GGUF) and export it as a GGUF.
import { statSync } from 'node:fs';
import { GPU_MODES } from '../ggml/find.ts';
import { PRESETS, PRESET_NAMES, type PresetName } from '../train/config.ts';
import type { ExportType } from '../train/export.ts';
import { type CommandSpec, FLAG_SHAPES, type Parsed, UsageError } from './args.ts';
import { ProgressBar, formatBytes } from './progress.ts';

/** train/export.ts's EXPORT_TYPES, listed here because importing that module loads ggml, which
 *  `sharedllm train --help` must not wait for; `satisfies` and the check below keep the two lists equal. */
const EXPORT_CHOICES = ['F32', 'F16', 'Q8_0'] as const satisfies readonly ExportType[];
const everyExportTypeListed: [Exclude<ExportType, (typeof EXPORT_CHOICES)[number]>] extends [never] ? true : false = true;
void everyExportTypeListed;

export const spec: CommandSpec = {
  name: 'train',
  summary: 'Train a small llama-architecture model on a text corpus (ggml, CPU) and export it as GGUF.',
  usage: 'sharedllm train --corpus <dir|files...> --out model.gguf [--preset tiny|small|30m] [--steps N] [--seed S] [--resume ckpt]',
  flags: {
    corpus: { type: 'string', multiple: true, required: true, arg: 'PATH', help: 'corpus folder(s) or .txt files (repeat the flag, or list more paths after the options)' },
    out: { type: 'string', required: true, arg: 'F', help: 'the GGUF to write' },
    preset: { type: 'string', choices: PRESET_NAMES, help: `model size (default tiny; with --resume: the checkpoint's): ${PRESET_NAMES.map((p) => `${p} (${PRESETS[p].model.nEmbd}x${PRESETS[p].model.nLayer})`).join(', ')}` },
    steps: { type: 'number', integer: true, min: 1, help: "optimiser steps in total (default: the preset's; with --resume: the checkpoint's)" },
    seed: { ...FLAG_SHAPES.seed, min: 0, default: 1, help: 'seeds the initial weights, the held-out split and the data order' },
    resume: { type: 'string', arg: 'CKPT', help: 'continue a run from its checkpoint (with the same --steps, bit-identical to an unbroken run)' },
    init: { type: 'string', arg: 'F', help: 'fine-tune this llama GGUF (byte-level BPE tokenizer) instead of starting from random weights' },
    'own-layers': { type: 'number', integer: true, min: 1, max: 1024, help: "with --init: train only the last N layers, the rest frozen (no checkpoints). Specialists of one base trained so share the rest byte for byte: a mixture stacks them and runs it once (decode near one model's cost)" },
    'own-head': { type: 'boolean', help: 'with --own-layers: also train the final norm and output matrix' },
    'vocab-size': { type: 'number', integer: true, min: 256, max: 1 << 20, unit: 'tokens', help: "tokens of the BPE tokenizer trained on the corpus (default: the preset's)" },
    threads: { ...FLAG_SHAPES.threads, help: 'CPU threads (default: physical cores)' },
    batch: { type: 'number', integer: true, min: 1, max: 4096, help: "rows per optimiser step (default: the preset's)" },
    lr: { type: 'number', min: 0, max: 10, help: "peak learning rate (default: the preset's)" },
    ctx: { ...FLAG_SHAPES.tokens, min: 2, help: "training context in tokens (default: the preset's)" },
    type: { type: 'string', choices: EXPORT_CHOICES, default: 'Q8_0', help: 'type of the exported matrices' },
    checkpoint: { type: 'string', arg: 'F', help: 'checkpoint file (default: the --out path with .ckpt)' },
    'checkpoint-every': { type: 'number', integer: true, min: 1, unit: 'steps', default: 100, help: 'save a checkpoint every N steps (and at the end)' },
    'eval-every': { type: 'number', integer: true, min: 0, unit: 'steps', default: 100, help: 'held-out evaluation every N steps; 0: only at the end' },
    'eval-tokens': { ...FLAG_SHAPES.tokens, default: 16384, help: 'held-out tokens scored by the periodic evaluations (the final one scores all)' },
    'held-out': { type: 'number', min: 0, max: 0.5, default: 0.05, help: 'fraction of documents held out for evaluation' },
    'held-out-text': { type: 'string', arg: 'F', help: 'also write the held-out text to this file (for sharedllm eval)' },
    'max-memory': { type: 'bytes', arg: 'SIZE', help: 'memory the run may use, e.g. 2GiB (default: free memory)' },
    'log-every': { type: 'number', integer: true, min: 1, unit: 'steps', default: 25, help: 'when stderr is not a terminal, print a progress line every N steps' },
    gpu: { type: 'string', choices: GPU_MODES, default: 'off', help: 'backend to train on (GPU training is experimental and untested)' },
    force: { type: 'boolean', help: 'overwrite an existing checkpoint of another run' },
  },
  positionals: Array.from({ length: 4096 }, () => 'corpus-path'),
  examples: [
    'node --import tsx scripts/fetch-corpora.ts      (in a checkout of the repository: installs the training corpora)',
    'sharedllm train --corpus data/corpora --out models/sharedllm-tiny.gguf --preset tiny --steps 600',
    'sharedllm train --corpus data/corpora --out models/sharedllm-tiny.gguf --resume models/sharedllm-tiny.ckpt --steps 800',
    'sharedllm train --init models/sharedllm-tiny.gguf --own-layers 1 --corpus data/corpora/go --out go.gguf --steps 200   (a specialist owning its last layer)',
  ],
};

export async function run({ flags: f, positionals }: Parsed): Promise<number> {
  const num = (k: string) => (f[k] === undefined ? undefined : (f[k] as number));
  for (const k of ['steps', 'batch', 'vocab-size', 'ctx', 'threads']) {
    const v = num(k);
    if (v !== undefined && !(Number.isInteger(v) && v > 0)) throw new UsageError(`--${k} needs a positive integer (got ${v})`, 'train');
  }
  if (f['own-head'] === true && f['own-layers'] === undefined) throw new UsageError('--own-head needs --own-layers N', 'train');
  if (f['own-layers'] !== undefined && f.init === undefined) throw new UsageError('--own-layers needs --init base.gguf: it fine-tunes part of a model', 'train');
  const { runTraining } = await import('../train/run.ts');
  const out = f.out as string;
  const tty = Boolean(process.stderr.isTTY);
  const logEvery = Math.max(1, f['log-every'] as number);
  const bar = new ProgressBar('train');
  const line = (s: string) => process.stderr.write(tty ? `\r\x1b[K${s}\n` : `${s}\n`);
  const r = await runTraining(
    {
      corpus: [...(f.corpus as string[]), ...positionals],
      out,
      preset: (f.preset as PresetName | undefined) ?? 'tiny',
      presetExplicit: f.preset !== undefined,
      steps: num('steps'),
      seed: f.seed as number,
      resume: f.resume as string | undefined,
      init: f.init as string | undefined,
      ...(f['own-layers'] === undefined ? {} : { own: { layers: f['own-layers'] as number, head: f['own-head'] === true } }),
      vocabSize: num('vocab-size'),
      batch: num('batch'),
      lr: num('lr'),
      ctx: num('ctx'),
      type: f.type as ExportType,
      checkpoint: f.checkpoint as string | undefined,
      checkpointEvery: f['checkpoint-every'] as number,
      evalEvery: f['eval-every'] as number,
      evalTokens: f['eval-tokens'] as number,
      heldOutFraction: f['held-out'] as number,
      heldOutText: f['held-out-text'] as string | undefined,
      maxMemory: num('max-memory'),
      force: Boolean(f.force),
      threads: num('threads'),
      gpu: f.gpu as never,
      verbose: Boolean(f.verbose),
    },
    {
      phase: (p) => line(`train: ${p}`),
      step: (s) => {
        const extra = `step ${s.step}/${s.totalSteps} loss ${s.loss.toFixed(3)} | ${s.tokensPerSecond.toFixed(0)} tok/s | ETA ${duration(s.etaSeconds)}`;
        if (tty) bar.update(s.step, s.totalSteps, extra);
        else if (s.step % logEvery === 0 || s.step === s.totalSteps) line(`train: ${extra} | lr ${s.lr.toExponential(2)} | grad norm ${s.gradNorm.toFixed(2)}`);
      },
      eval: (step, loss, ppl) => line(`train: step ${step}: held-out loss ${loss.toFixed(3)}, perplexity ${ppl.toFixed(1)}`),
    },
  );
  bar.finish(`${r.stepsThisRun} steps`);
  const size = statSync(out).size;
  process.stdout.write(
    [
      `steps ${r.steps} (${r.stepsThisRun} in this run): ${r.tokensThisRun.toLocaleString('en-US')} tokens in ${r.trainSeconds.toFixed(1)} s, ${r.tokensPerSecond.toFixed(0)} tokens/s${Number.isFinite(r.flopsPerSecond) ? `, ${(r.flopsPerSecond / 1e9).toFixed(1)} GFLOP/s` : ''}`,
      `loss ${r.firstLoss.toFixed(3)} -> ${r.finalLoss.toFixed(3)}; held-out perplexity ${r.heldOutPerplexity.toFixed(2)} on ${r.heldOutTokens.toLocaleString('en-US')} tokens (unigram baseline ${r.unigramPerplexity.toFixed(2)})`,
      `wrote ${out} (${f.type}, ${r.params.toLocaleString('en-US')} parameters, ${formatBytes(size)}); ${r.checkpoint ? `checkpoint ${r.checkpoint}` : 'no checkpoint (a partial fine-tune)'}`,
    ].join('\n') + '\n',
  );
  return 0;
}

function duration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.round(s)}s`;
}
