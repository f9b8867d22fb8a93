/**
 * Refusing a prompt too long for the context without tokenizing it: a megabyte of text costs llama.cpp's
 * tokenizer hundreds of milliseconds, and a request body may hold several.
 *
 * The floor: every token of a tokenization stands for a piece of the input text, and no token stands for
 * more than `maxBytes` bytes of it (the longest token of the vocabulary), so a text of B UTF-8 bytes is at
 * least ceil(B / maxBytes) tokens. That holds for vocabularies that keep every input byte:
 *   - SentencePiece (llama.cpp's 'spm'): whitespace becomes '▁' one for one, and a character outside the
 *     vocabulary becomes one byte token (or UNK) per byte;
 *   - byte-level BPE ('bpe') whose vocabulary spells all 256 bytes: every byte is in some token.
 * Vocabularies that normalise text (UGM and WPM drop and fold whitespace and accents) get no floor: their
 * prompts are always tokenized. So the floor never refuses a prompt that fits, and a prompt it lets through
 * is counted exactly by tokenBudget afterwards.
 */
import type { Tokenizer } from '../model/tokenizer.ts';
import { ApiError } from './errors.ts';

/** The most input bytes one token of the vocabulary stands for, or undefined when no floor holds. */
const maxBytesCache = new WeakMap<Tokenizer, { maxBytes: number | undefined }>();

const utf8 = new TextEncoder();

/** Computed once per tokenizer (a pass over the vocabulary, tens of milliseconds per 50k tokens). */
export function maxTokenBytes(tokenizer: Tokenizer): number | undefined {
  let cached = maxBytesCache.get(tokenizer);
  if (cached === undefined) {
    cached = { maxBytes: computeMaxTokenBytes(tokenizer) };
    maxBytesCache.set(tokenizer, cached);
  }
  return cached.maxBytes;
}

function computeMaxTokenBytes(tokenizer: Tokenizer): number | undefined {
  if (tokenizer.vocabType !== 'spm' && tokenizer.vocabType !== 'bpe') return undefined;
  let maxBytes = 1;
  const singleBytes = new Set<number>();
  for (let id = 0; id < tokenizer.vocabSize; id++) {
    // A control token (only the template's markup produces one) stands for its written form, e.g. "<|im_end|>".
    const bytes = tokenizer.isControl(id) ? utf8.encode(tokenizer.tokenText(id)) : tokenizer.tokenBytes(id);
    if (bytes.length > maxBytes) maxBytes = bytes.length;
    if (bytes.length === 1) singleBytes.add(bytes[0]!);
  }
  // A BPE vocabulary missing a byte would drop it from the tokens: then the floor is not a floor.
  if (tokenizer.vocabType === 'bpe' && singleBytes.size < 256) return undefined;
  return maxBytes;
}

/** At least how many tokens `text` tokenizes to (0 when the vocabulary gives no floor). */
export function tokenFloor(tokenizer: Tokenizer, text: string): number {
  const maxBytes = maxTokenBytes(tokenizer);
  return maxBytes === undefined ? 0 : Math.ceil(Buffer.byteLength(text, 'utf8') / maxBytes);
}

/**
 * Throws 400 context_length_exceeded when `text` (the whole prompt as it will be tokenized) surely does not
 * leave room for one reply token in `nCtx`. Cheap for short texts: a text of fewer bytes than nCtx cannot be
 * nCtx tokens, so the vocabulary is not even looked at.
 */
export function refuseOverlongPrompt(tokenizer: Tokenizer, text: string, nCtx: number, param: string): void {
  // UTF-16 length <= UTF-8 length <= 3 x UTF-16 length: the first test is free.
  if (text.length * 3 < nCtx) return;
  const floor = tokenFloor(tokenizer, text);
  if (floor < nCtx) return;
  throw new ApiError(400, `this model's context holds ${nCtx} tokens, but the prompt is at least ${floor} tokens (${Buffer.byteLength(text, 'utf8')} bytes of text)`, {
    code: 'context_length_exceeded',
    param,
    hint: `shorten the ${param} to well under ${nCtx} tokens, or start the node with a larger --ctx-size`,
  });
}
