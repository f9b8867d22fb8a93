// Byte-level BPE tokenizer (GPT-2 style): training on a text corpus, and encode/decode of its own that
// match llama.cpp's tokenizer for `tokenizer.ggml.model = "gpt2"`, `tokenizer.ggml.pre = "gpt-2"`.
//
// Vocabulary layout of a trained tokenizer (BpeTokenizer itself accepts any layout, e.g. GPT-2's own):
//   ids 0..255     one token per byte, id = byte value (token text = GPT-2's stand-in char for the byte)
//   ids 256..      merge results, in the order they were learned (merge rank = id - 256, save for the
//                  rare merge whose text already existed)
//   last ids       special tokens (<|endoftext|>, <|im_start|>, <|im_end|>), stored as plain text
import { BYTE_TO_CHAR, CHAR_TO_BYTE } from './bpe-bytes.ts';
import { applyMerges } from './bpe-merge.ts';
import { gpt2Split, splitSpecial } from './bpe-pretokenize.ts';
import { learnMerges, MAX_VOCAB } from './bpe-train.ts';

const utf8 = new TextEncoder();

export const ENDOFTEXT = '<|endoftext|>';
export const IM_START = '<|im_start|>';
export const IM_END = '<|im_end|>';
export const DEFAULT_SPECIAL_TOKENS = [ENDOFTEXT, IM_START, IM_END] as const;

export class BpeError extends Error {
  constructor(
    message: string,
    readonly expected: string,
    readonly actual: string,
    readonly hint: string,
  ) {
    super(`${message}: expected ${expected}, got ${actual}. ${hint}`);
    this.name = 'BpeError';
  }
}

/** Which special token plays which role (token texts; each must be one of the special tokens). */
export interface SpecialRoles {
  bos: string;
  eos: string;
  /** End of turn in chat (llama.cpp's eot): generation stops here too. */
  eot: string;
}

/** Everything needed to rebuild a tokenizer; JSON-serialisable. */
export interface BpeTokenizerData {
  /**
   * Token texts by id: byte-level text for ordinary tokens (all 256 byte stand-ins must be among them),
   * plain text for special tokens.
   */
  tokens: string[];
  /** Merges in rank order, as "left right" in byte-level text (GGUF's tokenizer.ggml.merges form). */
  merges: string[];
  /** Texts of the special tokens (CONTROL tokens in GGUF); each must be in `tokens`. */
  specialTokens: string[];
  roles: SpecialRoles;
}

export interface EncodeOptions {
  /** Turn special-token texts in the input into their ids (llama.cpp's parse_special). Default false. */
  special?: boolean;
}

export interface DecodeOptions {
  /** Emit special tokens' text (llama.cpp's unparse_special). Default false: they decode to nothing. */
  special?: boolean;
  /**
   * Apply llama.cpp's clean_up_tokenization_spaces, which it does for pre-type "gpt-2" on detokenize
   * (" ." -> ".", " 's" -> "'s", ...). Default false: decode is the exact inverse of encode.
   */
  cleanSpaces?: boolean;
}

export class BpeTokenizer {
  /** All token texts by id: byte-level texts for ordinary tokens, plain text for special ones. */
  readonly tokens: readonly string[];
  /** Merges in rank order as [left id, right id]. */
  readonly merges: readonly (readonly [number, number])[];
  readonly specialTokens: readonly string[];
  readonly roles: Readonly<SpecialRoles>;
  readonly bosId: number;
  readonly eosId: number;
  readonly eotId: number;

  private readonly ids = new Map<string, number>();
  private readonly specialIds = new Map<string, number>();
  /** Token id of each byte (the starting symbols of every word). */
  private readonly byteIds: number[] = [];
  /** pair key (left * vocabSize + right) -> [rank, merged id]. */
  private readonly ranks = new Map<number, [number, number]>();
  private readonly tokenBytes: Uint8Array[];
  private readonly cache = new Map<string, number[]>();

  constructor(data: BpeTokenizerData) {
    this.tokens = [...data.tokens];
    this.specialTokens = [...data.specialTokens];
    this.roles = { ...data.roles };
    if (this.tokens.length > MAX_VOCAB) {
      throw new BpeError('vocabulary too large', `at most ${MAX_VOCAB} tokens`, String(this.tokens.length), 'Use a smaller vocab.');
    }
    this.tokens.forEach((text, id) => {
      if (this.ids.has(text)) {
        throw new BpeError('duplicate token text', 'unique token texts', JSON.stringify(text),
          'llama.cpp requires every token text to be unique (a special token may not equal a learned token).');
      }
      this.ids.set(text, id);
    });
    for (const text of data.specialTokens) {
      const id = this.ids.get(text);
      if (id === undefined) {
        throw new BpeError('special token missing from the vocabulary', 'a token', JSON.stringify(text), 'Add it to tokens.');
      }
      this.specialIds.set(text, id);
    }
    for (let b = 0; b < 256; b++) {
      const id = this.ids.get(BYTE_TO_CHAR[b] as string);
      if (id === undefined || this.specialIds.has(BYTE_TO_CHAR[b] as string)) {
        throw new BpeError(`no token for byte ${b}`, `an ordinary token ${JSON.stringify(BYTE_TO_CHAR[b])}`, 'none',
          'A byte-level vocabulary must hold all 256 byte tokens, so that any text can be encoded.');
      }
      this.byteIds.push(id);
    }
    const roleId = (role: keyof SpecialRoles): number => {
      const id = this.specialIds.get(data.roles[role]);
      if (id === undefined) {
        throw new BpeError(`${role} token is not a special token`, `one of ${data.specialTokens.join(' ')}`,
          data.roles[role], 'Add it to specialTokens.');
      }
      return id;
    };
    this.bosId = roleId('bos');
    this.eosId = roleId('eos');
    this.eotId = roleId('eot');

    this.merges = data.merges.map((merge, rank) => {
      const space = merge.indexOf(' ', 1);
      const left = this.ids.get(merge.slice(0, space));
      const right = this.ids.get(merge.slice(space + 1));
      const merged = this.ids.get(merge.slice(0, space) + merge.slice(space + 1));
      if (space < 0 || left === undefined || right === undefined || merged === undefined) {
        throw new BpeError(`merge ${rank} does not join two tokens into a third`, '"left right" with all three in the vocab',
          JSON.stringify(merge), 'The merges must come from the same training run as the tokens.');
      }
      const key = left * this.tokens.length + right;
      if (!this.ranks.has(key)) this.ranks.set(key, [rank, merged]); // first wins, as in llama.cpp's bpe_ranks
      return [left, right] as const;
    });

    this.tokenBytes = this.tokens.map((text, id) => {
      if (this.specialIds.has(text)) return utf8.encode(text);
      const bytes = new Uint8Array(text.length);
      let n = 0;
      for (const ch of text) {
        const b = CHAR_TO_BYTE.get(ch);
        if (b === undefined) {
          throw new BpeError(`token ${id} is not byte-level text`, 'GPT-2 byte stand-in characters',
            JSON.stringify(text), 'Ordinary tokens must be stored in byte-level form.');
        }
        bytes[n++] = b;
      }
      return bytes.subarray(0, n);
    });
  }

  get vocabSize(): number {
    return this.tokens.length;
  }

  /** Id of a token by its stored text (byte-level form for ordinary tokens), or undefined. */
  tokenId(text: string): number | undefined {
    return this.ids.get(text);
  }

  /** True for special tokens (stored in GGUF as CONTROL tokens). */
  isSpecial(id: number): boolean {
    const text = this.tokens[id];
    return text !== undefined && this.specialIds.get(text) === id;
  }

  /** Text to token ids; never adds BOS/EOS (like llama_tokenize with add_special = false). */
  encode(text: string, options: EncodeOptions = {}): number[] {
    const out: number[] = [];
    const fragments = options.special ? splitSpecial(text, this.specialIds) : [{ kind: 'text' as const, text }];
    for (const fragment of fragments) {
      if (fragment.kind === 'special') out.push(fragment.id);
      else if (fragment.text.length > 0) {
        for (const word of gpt2Split(fragment.text)) for (const id of this.encodeWord(word)) out.push(id);
      }
    }
    return out;
  }

  /** One pre-tokenized word: its bytes, then the merges (see bpe-merge.ts), memoised. */
  private encodeWord(word: string): number[] {
    const cached = this.cache.get(word);
    if (cached) return cached;
    const size = this.tokens.length;
    const ids = applyMerges(
      Array.from(utf8.encode(word), (b) => this.byteIds[b] as number),
      (left, right) => this.ranks.get(left * size + right),
    );
    if (this.cache.size > 100_000) this.cache.clear();
    this.cache.set(word, ids);
    return ids;
  }

  /** Token ids to raw bytes (special tokens included as their text only when asked). */
  decodeBytes(ids: readonly number[], options: Pick<DecodeOptions, 'special'> = {}): Uint8Array {
    const parts: Uint8Array[] = [];
    let length = 0;
    for (const id of ids) {
      const bytes = this.tokenBytes[id];
      if (!bytes) {
        throw new BpeError('token id out of range', `0..${this.tokens.length - 1}`, String(id), 'Was it made by another tokenizer?');
      }
      if (this.isSpecial(id) && !options.special) continue;
      parts.push(bytes);
      length += bytes.length;
    }
    const out = new Uint8Array(length);
    let at = 0;
    for (const part of parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }

  /** Token ids to text; invalid UTF-8 (a token cut mid-character) becomes U+FFFD. */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const text = new TextDecoder().decode(this.decodeBytes(ids, options));
    return options.cleanSpaces ? cleanUpTokenizationSpaces(text) : text;
  }

  toJSON(): BpeTokenizerData {
    return {
      tokens: [...this.tokens],
      merges: this.merges.map(([l, r]) => `${this.tokens[l]} ${this.tokens[r]}`),
      specialTokens: [...this.specialTokens],
      roles: { ...this.roles },
    };
  }

  static fromJSON(data: BpeTokenizerData): BpeTokenizer {
    return new BpeTokenizer(data);
  }
}

/**
 * llama.cpp's clean_spaces pass of llama_detokenize, ported literally (three in-place passes over the
 * text): drop the space before ? ! . ,  then turn " ' " into "'"  then drop the space before 's 'm 're 've.
 * Every character it tests is ASCII, so working on UTF-16 code units gives the same result as on bytes.
 */
export function cleanUpTokenizationSpaces(input: string): string {
  const text = input.split('');
  let total = text.length;
  // first pass: " ?", " !", " .", " ,"
  const total1 = total;
  total = total ? 1 : 0;
  for (let i = 1; i < total1; i++) {
    const x = text[i] as string;
    if (text[i - 1] === ' ' && (x === '?' || x === '!' || x === '.' || x === ',')) total--;
    text[total++] = x;
  }
  // second pass: strip single apostrophe between spaces
  const total2 = total;
  total = total ? 1 : 0;
  for (let i = 1; i < total2; i++) {
    const x = text[i] as string;
    if (x === "'" && i + 1 < total2 && text[i - 1] === ' ' && text[i + 1] === ' ') {
      total--; // remove prev space
      text[++i] = '\0'; // remove next space
    }
    text[total++] = x;
  }
  // third pass: apostrophe contractions " 's", " 'm", " 're", " 've"
  const total3 = total;
  total = total ? 1 : 0;
  for (let i = 1; i < total3; i++) {
    const x = text[i] as string;
    if (text[i - 1] === ' ' && x === "'" && i + 1 < total3) {
      const x1 = text[i + 1];
      if (x1 === 's' || x1 === 'm') total--;
      else if (i + 2 < total3) {
        const x2 = text[i + 2];
        if ((x1 === 'r' && x2 === 'e') || (x1 === 'v' && x2 === 'e')) total--;
      }
    }
    text[total++] = x;
  }
  return text.slice(0, total).join('');
}

export interface TrainBpeOptions {
  /**
   * Total vocabulary size, special tokens included. The result is smaller when the corpus runs out of
   * pairs occurring `minFrequency` times (check `vocabSize` of the result).
   */
  vocabSize: number;
  /** Default [<|endoftext|>, <|im_start|>, <|im_end|>]. */
  specialTokens?: readonly string[];
  /** Default bos = eos = <|endoftext|>, eot = <|im_end|>. */
  roles?: SpecialRoles;
  /** A pair must occur at least this often to be merged. Default 2. */
  minFrequency?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Counts GPT-2 pre-tokenizer words over documents (the input of BPE training). */
export function countWords(documents: Iterable<string>, counts = new Map<string, number>()): Map<string, number> {
  for (const doc of documents) {
    for (const word of gpt2Split(doc)) counts.set(word, (counts.get(word) ?? 0) + 1);
  }
  return counts;
}

/** Trains a byte-level BPE tokenizer on documents (or on word counts from countWords). */
export function trainBpe(corpus: Iterable<string> | ReadonlyMap<string, number>, options: TrainBpeOptions): BpeTokenizer {
  const specialTokens = [...(options.specialTokens ?? DEFAULT_SPECIAL_TOKENS)];
  const roles = options.roles ?? { bos: ENDOFTEXT, eos: ENDOFTEXT, eot: IM_END };
  const newTokens = options.vocabSize - 256 - specialTokens.length;
  if (!Number.isInteger(options.vocabSize) || newTokens < 0 || options.vocabSize > MAX_VOCAB) {
    throw new BpeError('bad vocabSize', `an integer in ${256 + specialTokens.length}..${MAX_VOCAB}`,
      String(options.vocabSize), 'The vocabulary holds 256 byte tokens and the special tokens at least.');
  }
  const counts = corpus instanceof Map ? corpus : countWords(corpus as Iterable<string>);
  // A special token's text must never be learned as an ordinary token (its byte-level form, too).
  const forbidden = new Set<string>();
  for (const special of specialTokens) {
    forbidden.add(special);
    forbidden.add([...utf8.encode(special)].map((b) => BYTE_TO_CHAR[b]).join(''));
  }
  const learned = learnMerges(counts, {
    newTokens,
    minFrequency: options.minFrequency,
    forbidden,
    onProgress: options.onProgress,
  });
  return new BpeTokenizer({
    tokens: [...learned.tokens, ...specialTokens],
    merges: learned.merges.map(([l, r]) => `${learned.tokens[l]} ${learned.tokens[r]}`),
    specialTokens,
    roles,
  });
}
