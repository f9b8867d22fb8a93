// A per-user adapter and its file: a small GGUF written with the project's GGUF writer.
//
//   kind 'norm'  the RMSNorm gains of every norm tensor (blk.N.attn_norm, blk.N.ffn_norm, output_norm),
//                stored as the gains themselves (they replace the base's; the engine takes them per sequence)
//   kind 'lora'  for each attention and FFN matrix W (n_in -> n_out) of the base, W' = W + (alpha / r) B A,
//                A: `<W>.lora_a` ne (n_in, r), B: `<W>.lora_b` ne (r, n_out), the shapes and names llama.cpp's
//                LoRA adapters use (src/llama-adapter.cpp), so export to llama.cpp only rewrites metadata
//
// Every adapter names its base by content hash (sha256 of the base GGUF, 'sha256:<hex>') and tokenizer hash
// (gguf/tokenizer-hash.ts); loading it for another base is refused with an error naming both.
//
// Metadata: general.type = 'sharedllm-adapter', general.name, sharedllm.adapter.{kind, version,
// base.content_hash, base.tokenizer_hash, lora.rank, lora.alpha, training.*}. Tensors are F32.
import { existsSync } from 'node:fs';
import { GGML_TYPE } from '../../gguf/types.ts';
import { f32, str, u32, type GgufValue } from '../../gguf/value.ts';
import { writeGguf } from '../../gguf/writer.ts';
import { openGguf } from '../../gguf/reader.ts';
import { TrainError } from '../errors.ts';

export const ADAPTER_KINDS = ['norm', 'lora'] as const;
export type AdapterKind = (typeof ADAPTER_KINDS)[number];

/** Adapter files this code writes; it reads this version only. */
export const ADAPTER_FORMAT_VERSION = 1;
export const ADAPTER_GENERAL_TYPE = 'sharedllm-adapter';

/** What an adapter was made for: the base model file, by content. */
export interface AdapterBase {
  /** 'sha256:<64 hex>' of the whole base GGUF file. */
  contentHash: string;
  /** 'sha256:<64 hex>' of the base's tokenizer.ggml.* metadata. */
  tokenizerHash: string;
}

/** How an adapter was trained (kept in the file for reports; never the text). */
export interface AdapterTraining {
  steps: number;
  seed: number;
  /** Tokens of training text. */
  tokens: number;
  /** Mean training loss of the first and last few steps (nats per token). */
  firstLoss: number;
  lastLoss: number;
}

export interface Adapter {
  kind: AdapterKind;
  name: string;
  base: AdapterBase;
  /** LoRA rank r (lora only). */
  rank?: number;
  /** LoRA alpha: the update is scaled by alpha / rank (lora only). */
  alpha?: number;
  /**
   * norm: norm tensor name -> gains (n_embd); lora: `<matrix>.lora_a` -> (n_in * r) and `<matrix>.lora_b`
   * -> (r * n_out), ggml order (ne0 first).
   */
  tensors: Map<string, Float32Array>;
  /** ne of each tensor, ggml order. */
  shapes: Map<string, readonly number[]>;
  training?: AdapterTraining;
}

/** An adapter file that cannot be used: damaged, another format, or made for another base model. */
export class AdapterError extends TrainError {}

/** The adapter was trained on another base model than the one it is being applied to. */
export class AdapterBaseMismatchError extends AdapterError {}

const K = {
  kind: 'sharedllm.adapter.kind',
  version: 'sharedllm.adapter.version',
  contentHash: 'sharedllm.adapter.base.content_hash',
  tokenizerHash: 'sharedllm.adapter.base.tokenizer_hash',
  rank: 'sharedllm.adapter.lora.rank',
  alpha: 'sharedllm.adapter.lora.alpha',
  steps: 'sharedllm.adapter.training.steps',
  seed: 'sharedllm.adapter.training.seed',
  tokens: 'sharedllm.adapter.training.tokens',
  firstLoss: 'sharedllm.adapter.training.first_loss',
  lastLoss: 'sharedllm.adapter.training.last_loss',
} as const;

/** Bytes of the adapter's parameters (F32), what Bet 49 divides by. */
export function adapterBytes(a: Adapter): number {
  let n = 0;
  for (const t of a.tensors.values()) n += t.byteLength;
  return n;
}

/** Write the adapter to `path` (the GGUF writer goes through a temp file renamed at the end: never half-written). */
export function writeAdapter(path: string, a: Adapter): void {
  validateAdapter(a, path);
  const metadata = new Map<string, GgufValue>([
    ['general.type', str(ADAPTER_GENERAL_TYPE)],
    ['general.name', str(a.name)],
    [K.kind, str(a.kind)],
    [K.version, u32(ADAPTER_FORMAT_VERSION)],
    [K.contentHash, str(a.base.contentHash)],
    [K.tokenizerHash, str(a.base.tokenizerHash)],
  ]);
  if (a.kind === 'lora') {
    metadata.set(K.rank, u32(a.rank!));
    metadata.set(K.alpha, f32(a.alpha!));
  }
  if (a.training) {
    metadata.set(K.steps, u32(a.training.steps));
    metadata.set(K.seed, u32(a.training.seed >>> 0));
    metadata.set(K.tokens, u32(a.training.tokens));
    metadata.set(K.firstLoss, f32(a.training.firstLoss));
    metadata.set(K.lastLoss, f32(a.training.lastLoss));
  }
  const tensors = [...a.tensors].map(([name, data]) => ({
    name, type: GGML_TYPE.F32, dims: a.shapes.get(name)!,
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  }));
  writeGguf(path, { metadata, tensors });
}

/**
 * Read an adapter file. With `base`, refuse an adapter made for another model (AdapterBaseMismatchError
 * naming both hashes).
 */
export function readAdapter(path: string, base?: AdapterBase): Adapter {
  if (!existsSync(path)) throw new AdapterError('adapter file not found', 'an adapter GGUF', path, 'check the path, or train one with `sharedllm adapter train`');
  const file = openGguf(path);
  try {
    const md = file.metadata;
    const type = md.has('general.type') ? md.getString('general.type') : '(none)';
    if (type !== ADAPTER_GENERAL_TYPE) {
      throw new AdapterError('not a SharedLLM adapter', `general.type '${ADAPTER_GENERAL_TYPE}'`, `'${type}' in ${path}`, 'pass a file written by `sharedllm adapter train` (a full model goes to --model)');
    }
    const version = md.getNumber(K.version);
    if (version !== ADAPTER_FORMAT_VERSION) {
      throw new AdapterError('unsupported adapter version', String(ADAPTER_FORMAT_VERSION), String(version), 'retrain the adapter with this version of sharedllm');
    }
    const kind = md.getString(K.kind);
    if (!isKind(kind)) throw new AdapterError('unknown adapter kind', ADAPTER_KINDS.join(' or '), kind, 'the file is damaged or from a newer version');
    const a: Adapter = {
      kind,
      name: md.getString('general.name', 'adapter'),
      base: { contentHash: md.getString(K.contentHash), tokenizerHash: md.getString(K.tokenizerHash) },
      tensors: new Map(),
      shapes: new Map(),
    };
    if (kind === 'lora') {
      a.rank = md.getNumber(K.rank);
      a.alpha = md.getNumber(K.alpha);
    }
    if (md.has(K.steps)) {
      a.training = {
        steps: md.getNumber(K.steps), seed: md.getNumber(K.seed), tokens: md.getNumber(K.tokens),
        firstLoss: md.getNumber(K.firstLoss), lastLoss: md.getNumber(K.lastLoss),
      };
    }
    for (const info of file.tensorInfos) {
      if (info.type !== GGML_TYPE.F32) throw new AdapterError(`adapter tensor ${info.name} is not F32`, 'F32', info.typeName, 'the file is damaged');
      const bytes = file.readTensor(info.name);
      const data = new Float32Array(bytes.byteLength / 4);
      new Uint8Array(data.buffer).set(bytes);
      a.tensors.set(info.name, data);
      a.shapes.set(info.name, [...info.dims]);
    }
    validateAdapter(a, path);
    if (base) checkAdapterBase(a, base);
    return a;
  } finally {
    file.dispose();
  }
}

/** Refuse an adapter made for another base model; the error names both hashes. */
export function checkAdapterBase(a: Adapter, base: AdapterBase): void {
  if (a.base.contentHash !== base.contentHash || a.base.tokenizerHash !== base.tokenizerHash) {
    throw new AdapterBaseMismatchError(
      `adapter '${a.name}' was trained for another base model`,
      `base ${base.contentHash} (tokenizer ${base.tokenizerHash})`,
      `adapter made for ${a.base.contentHash} (tokenizer ${a.base.tokenizerHash})`,
      'use the adapter with the model it was trained on, or train a new adapter for this model',
    );
  }
}

function isKind(s: string): s is AdapterKind {
  return (ADAPTER_KINDS as readonly string[]).includes(s);
}

const HASH = /^sha256:[0-9a-f]{64}$/;

function validateAdapter(a: Adapter, path: string): void {
  const bad = (what: string, expected: string, actual: string): never => {
    throw new AdapterError(`bad adapter: ${what}`, expected, actual, `${path}: the file is damaged or was not written by sharedllm`);
  };
  if (!HASH.test(a.base.contentHash)) bad('base content hash', "'sha256:<64 hex>'", a.base.contentHash);
  if (!HASH.test(a.base.tokenizerHash)) bad('base tokenizer hash', "'sha256:<64 hex>'", a.base.tokenizerHash);
  if (a.tensors.size === 0) bad('tensors', 'at least one', 'none');
  if (a.kind === 'lora' && !(Number.isInteger(a.rank) && a.rank! >= 1 && Number.isFinite(a.alpha))) bad('LoRA rank and alpha', 'a rank >= 1 and a finite alpha', `${a.rank}, ${a.alpha}`);
  for (const [name, data] of a.tensors) {
    const ne = a.shapes.get(name);
    if (!ne || ne.reduce((x, y) => x * y, 1) !== data.length) bad(`shape of ${name}`, `${data.length} elements`, ne ? ne.join('x') : 'none');
    if (a.kind === 'norm' && !/norm\.weight$/.test(name)) bad(`tensor ${name}`, 'norm gains (*norm.weight)', name);
    if (a.kind === 'lora' && !/\.lora_[ab]$/.test(name)) bad(`tensor ${name}`, '<matrix>.lora_a / .lora_b', name);
    for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i]!)) bad(`values of ${name}`, 'finite numbers', `${data[i]} at ${i}`);
  }
}
