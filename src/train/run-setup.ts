// Setting up a training run from its options, before any weight is allocated: where the model comes from
// (a preset from scratch, a checkpoint to resume, a GGUF to fine-tune), the data, the optimiser settings,
// and the checks that turn bad input into one clear error (empty or binary corpus, a corpus smaller than
// one batch, a preset that does not fit in memory, a checkpoint of another model).
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Ggml } from '../ggml/runtime.ts';
import type { BpeTokenizer } from './bpe.ts';
import { type Checkpoint, checkResumable, loadCheckpoint } from './checkpoint.ts';
import { type ModelConfig, type OptimConfig, PRESETS, type PresetName, validateModelConfig } from './config.ts';
import { CorpusError, loadCorpus } from './corpus.ts';
import { BatchCursor, type PreparedData, prepareData } from './data.ts';
import type { OwnedPart } from './partial.ts';
import { TrainError } from './errors.ts';
import type { ExportType } from './export.ts';
import { loadGgufParams } from './gguf-model.ts';
import { checkTrainingMemory } from './memory.ts';
import { type TensorMap, initialParams } from './params.ts';
import { type LooseGgufValue, tokenizerFromGgufMetadata } from './tokenizer-gguf.ts';

export interface TrainRunOptions {
  /** Corpus directories and/or .txt files. */
  corpus: readonly string[];
  /** The GGUF to write. */
  out: string;
  preset: PresetName;
  /** True when the preset was chosen explicitly (then a checkpoint of another preset is refused). */
  presetExplicit?: boolean;
  steps?: number;
  seed: number;
  /** Resume from this checkpoint. */
  resume?: string;
  /** Fine-tune this llama GGUF (its weights and tokenizer) instead of starting from random weights. */
  init?: string;
  vocabSize?: number;
  batch?: number;
  lr?: number;
  /** Training context (tokens per row); default the preset's. */
  ctx?: number;
  type: ExportType;
  /** Checkpoint file (default <out without .gguf>.ckpt). */
  checkpoint?: string;
  checkpointEvery: number;
  evalEvery: number;
  /** Held-out tokens scored at each periodic evaluation (the final one scores all of them). */
  evalTokens: number;
  heldOutFraction: number;
  /** Memory the run may use (default: the device's free memory). */
  maxMemory?: number;
  /** Overwrite an existing checkpoint of another run. */
  force?: boolean;
  /** Also write the held-out text here (to evaluate the exported model with `sharedllm eval`). */
  heldOutText?: string;
  /**
   * With `init`: train only this part (the top layers, and the head), the rest frozen (src/train/partial.ts).
   * Specialists trained so from one base share their trunk byte for byte: a mixture stacks and runs it once.
   */
  own?: OwnedPart;
}

export interface RunSetup {
  model: ModelConfig;
  optim: OptimConfig;
  data: PreparedData;
  cursor: BatchCursor;
  /** Initial parameters (random, fine-tune source, or checkpoint). */
  params: TensorMap;
  resumeFrom?: Checkpoint;
  checkpointPath: string;
  preset?: string;
  /** How the corpus was split (kept in checkpoints: a resumed run splits the same way). */
  heldOutFraction: number;
  splitSeed: number;
}

export function defaultCheckpointPath(out: string): string {
  return `${out.replace(/\.gguf$/i, '')}.ckpt`;
}

export function setupRun(ggml: Ggml, o: TrainRunOptions, onPhase: (p: string) => void): RunSetup {
  const checkpointPath = o.checkpoint ?? defaultCheckpointPath(o.out);
  checkPaths(o, checkpointPath);
  const preset = PRESETS[o.preset];

  // Where the model comes from.
  let ck: Checkpoint | undefined;
  let tokenizer: BpeTokenizer | undefined;
  let base: { model: ModelConfig; params: TensorMap } | undefined;
  if (o.resume) {
    onPhase(`reading checkpoint ${o.resume}`);
    ck = loadCheckpoint(o.resume);
    checkResumable(ck, { preset: o.presetExplicit ? o.preset : undefined, model: { nVocab: o.vocabSize, nCtx: o.ctx } });
    tokenizer = ck.tokenizer;
  } else if (o.init) {
    onPhase(`reading ${o.init}`);
    const { model, params, file } = loadGgufParams(ggml, o.init);
    try {
      tokenizer = tokenizerFromGgufMetadata((k) => file.metadata.get(k) as LooseGgufValue | undefined);
    } finally {
      file.dispose();
    }
    base = { model: { ...model, nCtx: o.ctx ?? model.nCtx }, params };
  }

  onPhase('reading the corpus');
  let docs;
  try {
    docs = loadCorpus(o.corpus);
  } catch (e) {
    if (e instanceof CorpusError) throw new TrainError(e.message.split(' (')[0] ?? 'bad corpus', e.expected, `${e.actual} in ${e.path}`, e.hint);
    throw e;
  }
  const heldOutFraction = ck?.corpus.heldOutFraction ?? o.heldOutFraction;
  const splitSeed = ck?.corpus.splitSeed ?? o.seed;
  const data = prepareData(docs, { vocabSize: o.vocabSize ?? preset.vocabSize, heldOutFraction, splitSeed, tokenizer, onPhase });
  if (ck) checkResumable(ck, { fingerprint: data.fingerprint });

  const model: ModelConfig = ck?.model ?? base?.model ?? { ...preset.model, nCtx: o.ctx ?? preset.model.nCtx, nVocab: data.tokenizer.vocabSize };
  validateModelConfig(model);
  const optim: OptimConfig = ck
    ? { ...ck.optim, steps: o.steps ?? ck.optim.steps }
    : { ...preset.optim, steps: o.steps ?? preset.steps, seed: o.seed, batch: o.batch ?? preset.optim.batch, lr: o.lr ?? preset.optim.lr };
  if (!(Number.isInteger(optim.steps) && optim.steps > 0) || !(Number.isInteger(optim.batch) && optim.batch > 0)) {
    throw new TrainError('bad --steps or --batch', 'positive integers', `steps ${optim.steps}, batch ${optim.batch}`, 'pass e.g. --steps 1000');
  }
  if (ck && ck.step >= optim.steps) {
    throw new TrainError('nothing to resume', `a checkpoint before step ${optim.steps}`, `a checkpoint at step ${ck.step}`, 'pass a larger --steps to train further');
  }

  let cursor: BatchCursor;
  try {
    cursor = new BatchCursor(data.train, optim.batch, model.nCtx, optim.seed, ck?.step ?? 0);
  } catch (e) {
    if (e instanceof CorpusError) {
      throw new TrainError('corpus smaller than one batch', `at least ${optim.batch * model.nCtx + 1} training tokens (${optim.batch} rows of ${model.nCtx})`, `${data.train.length} tokens`, 'add text, or lower --batch or --ctx');
    }
    throw e;
  }
  if (data.heldOut.length < 2) throw new TrainError('no held-out text', 'some held-out tokens', `${data.heldOut.length}`, 'add documents or raise the held-out fraction');

  const available = o.maxMemory ?? ggml.memory().free;
  checkTrainingMemory(model, optim.batch, available, o.init ? `fine-tuning ${o.init}` : `the ${ck?.corpus.preset ?? o.preset} preset with batch ${optim.batch}`);

  const params = ck?.params ?? base?.params ?? initialParams(model, optim.seed);
  return { model, optim, data, cursor, params, resumeFrom: ck, checkpointPath, preset: ck?.corpus.preset ?? (o.init ? undefined : o.preset), heldOutFraction, splitSeed };
}

/** Outputs go into existing folders; a fresh run never overwrites a checkpoint it did not write. */
function checkPaths(o: TrainRunOptions, checkpointPath: string): void {
  for (const [flag, p] of [['--out', o.out], ['--checkpoint', checkpointPath]] as const) {
    const dir = dirname(resolve(p));
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new TrainError(`no folder for ${flag}`, 'an existing folder', dir, 'create it first');
    if (existsSync(p) && statSync(p).isDirectory()) throw new TrainError(`${flag} is a folder`, 'a file path', p, 'give a file name');
  }
  if (resolve(o.out) === resolve(checkpointPath)) throw new TrainError('--out and --checkpoint are the same file', 'two paths', o.out, 'name the model .gguf and the checkpoint .ckpt');
  if (o.resume && o.init) throw new TrainError('both --resume and --init', 'one of them', 'both', 'resume a run, or start a fine-tune');
  if (o.own && !o.init) throw new TrainError('--own-layers without --init', 'a base model to fine-tune part of', 'no --init', 'add --init base.gguf');
  const resumingIt = o.resume !== undefined && resolve(o.resume) === resolve(checkpointPath);
  if (existsSync(checkpointPath) && !resumingIt && !o.force) {
    throw new TrainError('checkpoint file exists', 'a new checkpoint path', checkpointPath, `continue it with --resume ${checkpointPath}, or pass --force to overwrite it`);
  }
}
