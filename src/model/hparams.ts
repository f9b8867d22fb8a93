// Hyperparameters of a model, read from GGUF metadata the way llama.cpp reads them.
//
// Keys are prefixed by the architecture (`llama.block_count`, `qwen2.embedding_length`, ...). Defaults follow
// llama.cpp's loader (llama-model.cpp): head_count_kv defaults to head_count, rope dimension to the head
// size, rope base to 10000, key/value length to n_embd / n_head.
import type { GgufMetadata } from '../gguf/metadata.ts';
import { ROPE } from '../ggml/graph.ts';
import { UnsupportedArchitectureError } from './errors.ts';

export const SUPPORTED_ARCHITECTURES = ['llama', 'qwen2', 'phi3'] as const;
export type Architecture = (typeof SUPPORTED_ARCHITECTURES)[number];

export interface HParams {
  arch: Architecture;
  /** Model name from general.name, or the file's. */
  name: string;
  nVocab: number;
  nCtxTrain: number;
  nEmbd: number;
  nLayer: number;
  nFf: number;
  nHead: number;
  nHeadKv: number;
  /** Size of one attention head (key and value). */
  headDim: number;
  /** Dimensions rotated by RoPE. */
  nRot: number;
  ropeType: number;
  ropeFreqBase: number;
  ropeFreqScale: number;
  rmsEps: number;
  /** Phi-3's sliding window (0: none). */
  slidingWindow: number;
}

export function isSupportedArchitecture(a: string): a is Architecture {
  return (SUPPORTED_ARCHITECTURES as readonly string[]).includes(a);
}

export function readHParams(md: GgufMetadata, fallbackName = 'model'): HParams {
  const arch = md.getString('general.architecture', '(none)');
  if (!isSupportedArchitecture(arch)) {
    throw new UnsupportedArchitectureError(
      'unsupported model architecture',
      `one of ${SUPPORTED_ARCHITECTURES.join(', ')}`,
      `'${arch}'`,
      'SharedLLM runs the llama family (TinyLlama, Llama 3, Mistral, SmolLM2), qwen2 and phi3; convert or pick a model of those',
    );
  }
  const k = (key: string) => `${arch}.${key}`;
  const nEmbd = md.getNumber(k('embedding_length'));
  const nHead = md.getNumber(k('attention.head_count'));
  const headDim = md.getNumber(k('attention.key_length'), Math.floor(nEmbd / nHead));
  const tokens = md.get('tokenizer.ggml.tokens');
  const nVocabTokens = tokens && tokens.type === 9 ? (tokens.value as ArrayLike<unknown>).length : 0;
  const scaling = md.get(k('rope.scaling.type'));
  const factor = md.getNumber(k('rope.scaling.factor'), 0);
  const linearScale = scaling && scaling.value === 'linear' && factor > 0 ? 1 / factor : 1;
  return {
    arch,
    name: md.getString('general.name', fallbackName),
    nVocab: md.getNumber(k('vocab_size'), nVocabTokens),
    nCtxTrain: md.getNumber(k('context_length'), 2048),
    nEmbd,
    nLayer: md.getNumber(k('block_count')),
    nFf: md.getNumber(k('feed_forward_length')),
    nHead,
    nHeadKv: md.getNumber(k('attention.head_count_kv'), nHead),
    headDim,
    nRot: md.getNumber(k('rope.dimension_count'), headDim),
    ropeType: arch === 'llama' ? ROPE.NORMAL : ROPE.NEOX,
    ropeFreqBase: md.getNumber(k('rope.freq_base'), 10000),
    ropeFreqScale: linearScale,
    rmsEps: md.getNumber(k('attention.layer_norm_rms_epsilon'), 1e-5),
    slidingWindow: md.getNumber(k('attention.sliding_window'), 0),
  };
}

/** Width of the K (and V) rows in the cache: head size times KV heads. */
export function kvWidth(h: HParams): number {
  return h.headDim * h.nHeadKv;
}
