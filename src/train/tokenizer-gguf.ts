// The GGUF metadata that stores a trained byte-level BPE tokenizer the way llama.cpp reads it
// (llama_vocab::impl::load in src/llama-vocab.cpp):
//
//   tokenizer.ggml.model          "gpt2"   -> LLAMA_VOCAB_TYPE_BPE, merges required
//   tokenizer.ggml.pre            "gpt-2"  -> LLAMA_VOCAB_PRE_TYPE_GPT2: GPT-2's pre-tokenizer regex, which
//                                             bpe-pretokenize.ts reproduces. llama.cpp also sets
//                                             clean_spaces for it (see BpeTokenizer.decode's cleanSpaces).
//   tokenizer.ggml.tokens         string[] token texts (byte-level form; special tokens as plain text)
//   tokenizer.ggml.token_type     int32[]  NORMAL (1) for ordinary tokens, byte tokens included (BYTE (6)
//                                          is for SentencePiece's <0xXX> tokens and would be decoded as
//                                          such), CONTROL (3) for special tokens
//   tokenizer.ggml.merges         string[] "left right", rank order
//   tokenizer.ggml.{bos,eos,eot}_token_id  uint32
//   tokenizer.ggml.add_bos_token  bool     prepend BOS when llama.cpp tokenizes with add_special
//   tokenizer.ggml.add_eos_token  bool
//   tokenizer.chat_template       string   Jinja; a ChatML template (llama.cpp detects "<|im_start|>")
//
// Values use GGUF's value-type ids and the same shape as src/gguf/value.ts ({ type, value } for scalars,
// { type: ARRAY, itemType, value } for arrays), so the result can be handed to the GGUF writer as is.
import { BpeError, BpeTokenizer } from './bpe.ts';

/** GGUF metadata value type ids (gguf_type in ggml/include/gguf.h). */
export const GGUF_TYPE = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;

/** llama_token_type in llama.cpp's include/llama.h. */
export const TOKEN_TYPE = {
  UNDEFINED: 0,
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;

export type TokenizerGgufValue =
  | { type: typeof GGUF_TYPE.STRING; value: string }
  | { type: typeof GGUF_TYPE.UINT32 | typeof GGUF_TYPE.FLOAT32; value: number }
  | { type: typeof GGUF_TYPE.BOOL; value: boolean }
  | { type: typeof GGUF_TYPE.ARRAY; itemType: typeof GGUF_TYPE.STRING; value: string[] }
  | { type: typeof GGUF_TYPE.ARRAY; itemType: typeof GGUF_TYPE.INT32; value: Int32Array };

export type TokenizerGgufMetadata = Record<string, TokenizerGgufValue>;

/**
 * ChatML as a Jinja template (the one Qwen2 and OpenHermes ship). Each message becomes
 * `<|im_start|>{role}\n{content}<|im_end|>\n`; the generation prompt opens an assistant turn.
 */
export const CHATML_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/**
 * Pre-tokenizer names llama.cpp maps to GPT-2's regex (LLAMA_VOCAB_PRE_TYPE_GPT2, with clean_spaces on).
 * "gpt-2" is the one to write; the others are listed for readers of foreign files. "mpt", "olmo", "jais",
 * "trillion" and "granite-docling" use the same regex under other pre-types; the last two also turn
 * clean_spaces off, which would make llama.cpp's detokenize lossless, at the price of an odd name.
 */
export const GPT2_PRE_NAMES = [
  'gpt-2', 'phi-2', 'jina-es', 'jina-de', 'gigachat', 'jina-v2-es', 'jina-v2-de', 'a.x-4.0', 'mellum',
  'modern-bert', 'exaone4',
] as const;

export interface TokenizerGgufOptions {
  /** tokenizer.ggml.pre; default "gpt-2". */
  pre?: string;
  /** Prepend BOS when llama.cpp tokenizes a prompt with add_special. Default true. */
  addBos?: boolean;
  /** Append EOS likewise. Default false. */
  addEos?: boolean;
  /** Jinja chat template; default ChatML. null leaves the key out. */
  chatTemplate?: string | null;
}

/** The tokenizer.* GGUF metadata of `tokenizer`. */
export function tokenizerGgufMetadata(tokenizer: BpeTokenizer, options: TokenizerGgufOptions = {}): TokenizerGgufMetadata {
  const tokenTypes = new Int32Array(tokenizer.vocabSize);
  for (let id = 0; id < tokenizer.vocabSize; id++) {
    tokenTypes[id] = tokenizer.isSpecial(id) ? TOKEN_TYPE.CONTROL : TOKEN_TYPE.NORMAL;
  }
  const meta: TokenizerGgufMetadata = {
    'tokenizer.ggml.model': { type: GGUF_TYPE.STRING, value: 'gpt2' },
    'tokenizer.ggml.pre': { type: GGUF_TYPE.STRING, value: options.pre ?? 'gpt-2' },
    'tokenizer.ggml.tokens': { type: GGUF_TYPE.ARRAY, itemType: GGUF_TYPE.STRING, value: [...tokenizer.tokens] },
    'tokenizer.ggml.token_type': { type: GGUF_TYPE.ARRAY, itemType: GGUF_TYPE.INT32, value: tokenTypes },
    'tokenizer.ggml.merges': {
      type: GGUF_TYPE.ARRAY,
      itemType: GGUF_TYPE.STRING,
      value: tokenizer.merges.map(([l, r]) => `${tokenizer.tokens[l]} ${tokenizer.tokens[r]}`),
    },
    'tokenizer.ggml.bos_token_id': { type: GGUF_TYPE.UINT32, value: tokenizer.bosId },
    'tokenizer.ggml.eos_token_id': { type: GGUF_TYPE.UINT32, value: tokenizer.eosId },
    'tokenizer.ggml.eot_token_id': { type: GGUF_TYPE.UINT32, value: tokenizer.eotId },
    'tokenizer.ggml.add_bos_token': { type: GGUF_TYPE.BOOL, value: options.addBos ?? true },
    'tokenizer.ggml.add_eos_token': { type: GGUF_TYPE.BOOL, value: options.addEos ?? false },
  };
  const template = options.chatTemplate === undefined ? CHATML_TEMPLATE : options.chatTemplate;
  if (template !== null) meta['tokenizer.chat_template'] = { type: GGUF_TYPE.STRING, value: template };
  return meta;
}

/** A metadata value as read back by any GGUF reader: scalars by value, arrays as array-likes. */
export type LooseGgufValue = { type: number; itemType?: number; value: unknown };

/**
 * Rebuilds a tokenizer from tokenizer.* GGUF metadata (ours, or any gpt2-model GGUF whose tokens include
 * the 256 byte stand-ins, e.g. GPT-2's own). CONTROL tokens become special tokens; the roles come from
 * the bos/eos/eot ids (eot falls back to eos).
 */
export function tokenizerFromGgufMetadata(get: (key: string) => LooseGgufValue | undefined): BpeTokenizer {
  const strings = (key: string): string[] => {
    const v = get(key);
    if (!v || v.type !== GGUF_TYPE.ARRAY || !Array.isArray(v.value)) {
      throw new BpeError(`missing or bad ${key}`, 'an array of strings', v ? `type ${v.type}` : 'absent',
        'Is this a GGUF with a gpt2 (byte-level BPE) tokenizer?');
    }
    return v.value as string[];
  };
  const model = get('tokenizer.ggml.model')?.value;
  if (model !== 'gpt2') {
    throw new BpeError('unsupported tokenizer model', '"gpt2"', JSON.stringify(model), 'Only byte-level BPE is supported.');
  }
  const tokens = strings('tokenizer.ggml.tokens');
  const types = get('tokenizer.ggml.token_type')?.value as ArrayLike<number> | undefined;
  const specialTokens = tokens.filter((_, id) => types?.[id] === TOKEN_TYPE.CONTROL);
  const idOf = (key: string, fallback?: number): string => {
    const id = (get(key)?.value as number | undefined) ?? fallback;
    const text = id === undefined ? undefined : tokens[id];
    if (text === undefined) {
      throw new BpeError(`missing ${key}`, 'a token id', String(id), 'Write bos/eos ids into the GGUF.');
    }
    return text;
  };
  const eosId = get('tokenizer.ggml.eos_token_id')?.value as number | undefined;
  return new BpeTokenizer({
    tokens,
    merges: strings('tokenizer.ggml.merges'),
    specialTokens,
    roles: {
      bos: idOf('tokenizer.ggml.bos_token_id'),
      eos: idOf('tokenizer.ggml.eos_token_id'),
      eot: idOf('tokenizer.ggml.eot_token_id', eosId),
    },
  });
}

/**
 * Metadata of a vocab-only GGUF (no tensors) that llama.cpp loads with `vocab_only`: architecture "llama"
 * with the hyperparameters its load_hparams insists on even when no tensor is read, then the tokenizer.
 * Useful to check an exported tokenizer against llama.cpp (node-llama-cpp `loadModel({ vocabOnly: true })`).
 */
export function vocabOnlyGgufMetadata(
  tokenizer: BpeTokenizer,
  options: TokenizerGgufOptions & { name?: string } = {},
): Record<string, TokenizerGgufValue> {
  const u32 = (value: number): TokenizerGgufValue => ({ type: GGUF_TYPE.UINT32, value });
  return {
    'general.architecture': { type: GGUF_TYPE.STRING, value: 'llama' },
    'general.name': { type: GGUF_TYPE.STRING, value: options.name ?? 'sharedllm-vocab' },
    'llama.context_length': u32(2048),
    'llama.embedding_length': u32(64),
    'llama.block_count': u32(1),
    'llama.feed_forward_length': u32(128),
    'llama.attention.head_count': u32(1),
    'llama.attention.head_count_kv': u32(1),
    'llama.attention.layer_norm_rms_epsilon': { type: GGUF_TYPE.FLOAT32, value: 1e-5 },
    'llama.rope.dimension_count': u32(64),
    'llama.vocab_size': u32(tokenizer.vocabSize),
    ...tokenizerGgufMetadata(tokenizer, options),
  };
}
