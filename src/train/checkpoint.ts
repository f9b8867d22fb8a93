// Training checkpoints: everything a run needs to continue exactly where it stopped, in one GGUF file.
//
//   general.type                 "sharedllm-checkpoint"
//   sharedllm.checkpoint.version  1
//   sharedllm.model / .optim     JSON of ModelConfig / OptimConfig (seed and total steps included)
//   sharedllm.step               optimiser steps done = batches consumed (the data position)
//   sharedllm.corpus             JSON: corpus fingerprint, held-out fraction, split seed, preset name
//   tokenizer.*                  the trained BPE tokenizer, as the exported model stores it
//   tensors                      every parameter (F32, GGUF names) and its AdamW moments adam.m.* / adam.v.*
//
// The learning rate is a function of the step, the data order a function of seed and step, so parameters,
// moments and step are the whole state: resuming gives bit-identical weights to an unbroken run.
import { existsSync } from 'node:fs';
import { openGguf } from '../gguf/reader.ts';
import { str, u32, type GgufValue } from '../gguf/value.ts';
import { writeGguf } from '../gguf/writer.ts';
import { GGML_TYPE } from '../gguf/types.ts';
import type { BpeTokenizer } from './bpe.ts';
import type { ModelConfig, OptimConfig } from './config.ts';
import { CheckpointError } from './errors.ts';
import { type TensorMap, elements, momentNames, paramSpecs } from './params.ts';
import { type LooseGgufValue, tokenizerFromGgufMetadata, tokenizerGgufMetadata } from './tokenizer-gguf.ts';

export const CHECKPOINT_TYPE = 'sharedllm-checkpoint';
const VERSION = 1;

export interface CorpusInfo {
  fingerprint: string;
  heldOutFraction: number;
  splitSeed: number;
  preset?: string;
}

export interface Checkpoint {
  model: ModelConfig;
  optim: OptimConfig;
  step: number;
  corpus: CorpusInfo;
  tokenizer: BpeTokenizer;
  params: TensorMap;
  moments: TensorMap;
}

/** Write a checkpoint (to a temp name, renamed when complete: an interrupted save leaves the old one). */
export function saveCheckpoint(path: string, ck: Checkpoint): void {
  const metadata = new Map<string, GgufValue>([
    ['general.type', str(CHECKPOINT_TYPE)],
    ['sharedllm.checkpoint.version', u32(VERSION)],
    ['sharedllm.model', str(JSON.stringify(ck.model))],
    ['sharedllm.optim', str(JSON.stringify(ck.optim))],
    ['sharedllm.step', u32(ck.step)],
    ['sharedllm.corpus', str(JSON.stringify(ck.corpus))],
  ]);
  for (const [k, v] of Object.entries(tokenizerGgufMetadata(ck.tokenizer))) metadata.set(k, v as GgufValue);
  const tensors = [];
  for (const s of paramSpecs(ck.model)) {
    for (const [name, map] of [[s.name, ck.params], [momentNames.m(s.name), ck.moments], [momentNames.v(s.name), ck.moments]] as const) {
      const a = map.get(name);
      if (!a || a.length !== elements(s.ne)) throw new CheckpointError(`cannot save ${name}`, `${elements(s.ne)} floats`, a ? String(a.length) : 'absent', 'this is a bug');
      tensors.push({ name, type: GGML_TYPE.F32, dims: s.ne, data: new Uint8Array(a.buffer, a.byteOffset, a.byteLength) });
    }
  }
  writeGguf(path, { metadata, tensors });
}

export function loadCheckpoint(path: string): Checkpoint {
  if (!existsSync(path)) throw new CheckpointError('checkpoint not found', 'an existing checkpoint file', path, 'check the --resume path');
  let file;
  try {
    file = openGguf(path);
  } catch (e) {
    throw new CheckpointError('not a checkpoint', 'a SharedLLM training checkpoint (GGUF)', `an unreadable file (${(e as Error).message.split('\n')[0]})`, 'give the .ckpt file written by sharedllm train');
  }
  try {
    const md = file.metadata;
    const type = md.has('general.type') ? md.getString('general.type') : md.has('general.architecture') ? `a model (${md.getString('general.architecture')})` : 'another GGUF';
    if (type !== CHECKPOINT_TYPE) {
      throw new CheckpointError('not a training checkpoint', CHECKPOINT_TYPE, type, 'resume from the .ckpt file written by sharedllm train, not from an exported model');
    }
    const version = md.getNumber('sharedllm.checkpoint.version');
    if (version !== VERSION) throw new CheckpointError('unsupported checkpoint version', String(VERSION), String(version), 'it was written by another SharedLLM version');
    const model = JSON.parse(md.getString('sharedllm.model')) as ModelConfig;
    const optim = JSON.parse(md.getString('sharedllm.optim')) as OptimConfig;
    const corpus = JSON.parse(md.getString('sharedllm.corpus')) as CorpusInfo;
    const tokenizer = tokenizerFromGgufMetadata((k) => md.get(k) as LooseGgufValue | undefined);
    const params: TensorMap = new Map();
    const moments: TensorMap = new Map();
    for (const s of paramSpecs(model)) {
      params.set(s.name, readF32Tensor(file, s.name, elements(s.ne)));
      moments.set(momentNames.m(s.name), readF32Tensor(file, momentNames.m(s.name), elements(s.ne)));
      moments.set(momentNames.v(s.name), readF32Tensor(file, momentNames.v(s.name), elements(s.ne)));
    }
    return { model, optim, step: md.getNumber('sharedllm.step'), corpus, tokenizer, params, moments };
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError('damaged checkpoint', 'a complete SharedLLM checkpoint', (e as Error).message.split('\n')[0] ?? 'error', 'resume from another checkpoint or start again');
  } finally {
    file.dispose();
  }
}

function readF32Tensor(file: ReturnType<typeof openGguf>, name: string, n: number): Float32Array {
  const info = file.tensorInfo(name);
  if (info.type !== GGML_TYPE.F32 || info.byteSize !== n * 4) {
    throw new CheckpointError(`tensor ${name} has the wrong shape`, `${n} F32`, `${info.typeName} ${info.dims.join('x')}`, 'the checkpoint does not match its own model config');
  }
  const bytes = file.readTensor(name);
  const out = new Float32Array(n);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

/** Check a checkpoint continues the run asked for: same model shape (and vocabulary), same corpus. */
export function checkResumable(ck: Checkpoint, want: { model?: Partial<ModelConfig>; preset?: string; fingerprint?: string }): void {
  if (want.preset !== undefined && ck.corpus.preset !== undefined && want.preset !== ck.corpus.preset) {
    throw new CheckpointError('checkpoint is of another model', `preset ${want.preset}`, `preset ${ck.corpus.preset}`, 'resume with the preset it was trained with, or start a new run');
  }
  for (const [k, v] of Object.entries(want.model ?? {})) {
    const have = ck.model[k as keyof ModelConfig];
    if (v !== undefined && v !== have) {
      throw new CheckpointError('checkpoint is of another model', `${k} = ${v}`, `${k} = ${have}`, 'resume with the settings it was trained with, or start a new run');
    }
  }
  if (want.fingerprint !== undefined && want.fingerprint !== ck.corpus.fingerprint) {
    throw new CheckpointError('checkpoint was trained on another corpus', `corpus ${ck.corpus.fingerprint.slice(0, 12)}`, `corpus ${want.fingerprint.slice(0, 12)}`, 'resume with the same --corpus, or start a new run');
  }
}
