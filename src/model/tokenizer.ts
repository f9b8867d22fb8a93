// Tokenizer: text to token ids and back, exactly as llama.cpp does it.
//
// It runs llama.cpp's own tokenizer (through node-llama-cpp, with the GGUF loaded vocab-only), so every
// vocabulary llama.cpp supports (SPM, BPE with its pre-tokenizers, UGM, WPM) tokenizes identically; the
// test checks llama.cpp's golden files for llama-spm, llama-bpe, qwen2, phi-3 and gpt-2.
//
// Two entry points for text, on purpose:
//   encode(text)            user text: special-token strings such as "<|eot_id|>" or "</s>" stay text
//   encodeWithSpecial(text) trusted template text: special-token strings become their ids
// Only the chat template's own markup may go through encodeWithSpecial, never user content.
import { existsSync } from 'node:fs';
import type { LlamaModel, Token } from 'node-llama-cpp';
import { type PieceStyle, pieceBytes } from './tokenizer-pieces.ts';
import { recentLlamaLog, setLlamaVerbose, sharedLlama } from './tokenizer-llama.ts';
import { TokenStreamDecoder } from './tokenizer-stream.ts';
import { ModelError } from './errors.ts';

export { TokenStreamDecoder } from './tokenizer-stream.ts';

/** A tokenizer failure, with what was expected, what was found and what to do about it. */
export class TokenizerError extends ModelError {}

export interface TokenizerLoadOptions {
  /** Print llama.cpp's log lines to stderr (default: quiet, or SHAREDLLM_LLAMA_LOG=1). */
  readonly verbose?: boolean;
  /** Use this chat template (a family name or a Jinja source) instead of the GGUF's, e.g. when it is mis-detected. */
  readonly chatTemplate?: string;
}

export interface EncodeOptions {
  /** Put the BOS token first. Default false; pass `tokenizer.addBosDefault` to follow the model. */
  readonly addBos?: boolean;
}

const pieceDecoder = new TextDecoder('utf-8', { ignoreBOM: true });

/** Vocabulary types whose token pieces we can compute (see tokenizer-pieces.ts). */
const PIECE_STYLES: Readonly<Record<string, PieceStyle>> = {
  spm: 'sentencepiece',
  ugm: 'sentencepiece',
  wpm: 'sentencepiece',
  bpe: 'byte-level',
};

/** BPE pre-tokenizers for which llama.cpp escapes whitespace as `▁` (llama-vocab.cpp, `escape_whitespaces`). */
const BPE_ESCAPING_WHITESPACE = new Set(['gemma4', 'granite-embed-multi-311m', 'sarvam-moe']);

export class Tokenizer {
  /** Number of tokens in the vocabulary; valid ids are 0 .. vocabSize - 1. */
  readonly vocabSize: number;
  /** Begin-of-sequence token, if the vocabulary has one. */
  readonly bos: number | undefined;
  /** End-of-sequence token, if any. */
  readonly eos: number | undefined;
  /** End-of-turn token (e.g. `<|eot_id|>`, `<|im_end|>`, `<|end|>`), if any. */
  readonly eot: number | undefined;
  /** Whether the model wants BOS in front of a prompt (`tokenizer.ggml.add_bos_token`, as llama.cpp resolves it). */
  readonly addBosDefault: boolean;
  /** llama.cpp's vocabulary type: 'spm', 'bpe', 'ugm' or 'wpm'. */
  readonly vocabType: string;
  /** The Jinja chat template stored in the GGUF (`tokenizer.chat_template`), if any. */
  readonly chatTemplate: string | undefined;

  readonly #model: LlamaModel;
  readonly #path: string;
  readonly #tokenTexts: readonly string[];
  readonly #pieceStyle: PieceStyle;
  readonly #pieces: (Uint8Array | undefined)[];
  #disposed = false;

  private constructor(model: LlamaModel, path: string, pieceStyle: PieceStyle, chatTemplate?: string) {
    this.#model = model;
    this.#path = path;
    this.#pieceStyle = pieceStyle;
    const metadata = model.fileInfo.metadata.tokenizer;
    this.#tokenTexts = metadata?.ggml?.tokens ?? [];
    this.vocabSize = this.#tokenTexts.length;
    this.#pieces = new Array<Uint8Array | undefined>(this.vocabSize);
    this.bos = model.tokens.bos ?? undefined;
    this.eos = model.tokens.eos ?? undefined;
    this.eot = model.tokens.eot ?? undefined;
    this.addBosDefault = model.tokens.shouldPrependBosToken;
    this.vocabType = String(model.vocabularyType);
    this.chatTemplate = chatTemplate ?? metadata?.chat_template;
  }

  /** Loads the vocabulary of a GGUF file (no weights are read). */
  static async load(ggufPath: string, options: TokenizerLoadOptions = {}): Promise<Tokenizer> {
    if (!existsSync(ggufPath)) {
      throw new TokenizerError('GGUF file not found', 'an existing .gguf file', ggufPath, 'Check the model path.');
    }
    if (options.verbose) setLlamaVerbose(true);
    const llama = await sharedLlama();
    let model: LlamaModel;
    try {
      model = await llama.loadModel({ modelPath: ggufPath, vocabOnly: true });
    } catch (error) {
      const log = recentLlamaLog().slice(-5).join('\n  ');
      throw new TokenizerError(
        `llama.cpp could not load the vocabulary of ${ggufPath}: ${String(error)}`,
        'a GGUF file with a tokenizer',
        log ? `llama.cpp said:\n  ${log}` : 'no llama.cpp log',
        'Check that the file is a complete GGUF model; run with SHAREDLLM_LLAMA_LOG=1 for the full log.',
      );
    }
    const type = String(model.vocabularyType);
    let style = PIECE_STYLES[type];
    if (style === undefined) {
      await model.dispose();
      throw new TokenizerError(
        `unsupported vocabulary type in ${ggufPath}`,
        Object.keys(PIECE_STYLES).join(', '),
        type,
        'SharedLLM supports SentencePiece and BPE tokenizers.',
      );
    }
    const pre = model.fileInfo.metadata.tokenizer?.ggml?.pre;
    if (type === 'bpe' && pre !== undefined && BPE_ESCAPING_WHITESPACE.has(pre)) style = 'sentencepiece';
    return new Tokenizer(model, ggufPath, style, options.chatTemplate);
  }

  /** Tokenizes user text. Special-token strings in it are never turned into special tokens. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    return this.#encode(text, false, options);
  }

  /** Tokenizes trusted template text: strings of special tokens (`<|im_start|>`, `</s>`) become their ids. */
  encodeWithSpecial(text: string, options: EncodeOptions = {}): number[] {
    return this.#encode(text, true, options);
  }

  #encode(text: string, parseSpecial: boolean, options: EncodeOptions): number[] {
    this.#checkUsable();
    const ids = this.#model.tokenize(text, parseSpecial);
    if (!options.addBos) return ids;
    if (this.bos === undefined) {
      throw new TokenizerError(
        `the vocabulary of ${this.#path} has no BOS token`,
        'a BOS token when addBos is true',
        'none',
        'Encode without addBos (see tokenizer.addBosDefault).',
      );
    }
    return [this.bos, ...ids];
  }

  /**
   * Token ids to text, exactly as llama.cpp's `llama_detokenize` (special tokens left out, SPM's leading
   * space removed, the vocabulary's space clean-up applied). Incomplete UTF-8 becomes U+FFFD.
   */
  decode(ids: readonly number[]): string {
    this.#checkUsable();
    for (const id of ids) this.#checkId(id);
    return this.#model.detokenize(ids as readonly Token[], false);
  }

  /** The token as written in the vocabulary (`▁Hello`, `ĠHello`, `<0x0A>`, `<|im_end|>`). */
  tokenText(id: number): string {
    this.#checkUsable();
    this.#checkId(id);
    return this.#tokenTexts[id] ?? '';
  }

  /** The raw bytes of one token as text (empty for control tokens); may be part of a UTF-8 character. */
  tokenBytes(id: number): Uint8Array {
    this.#checkUsable();
    this.#checkId(id);
    let bytes = this.#pieces[id];
    if (bytes === undefined) {
      const text = this.#tokenTexts[id] ?? '';
      bytes = pieceBytes(text, this.#model.getTokenAttributes(id as Token), this.#pieceStyle);
      this.#pieces[id] = bytes;
    }
    return bytes;
  }

  /** The text of one token; a partial UTF-8 character shows as U+FFFD (use a stream decoder for output). */
  tokenPiece(id: number): string {
    return pieceDecoder.decode(this.tokenBytes(id));
  }

  /** A decoder for generated tokens that only ever emits complete characters. */
  createStreamDecoder(): TokenStreamDecoder {
    this.#checkUsable();
    return new TokenStreamDecoder((id) => this.tokenBytes(id));
  }

  /** True for the tokens that end generation: EOS, EOT and the rest of llama.cpp's end-of-generation set. */
  isEndOfGeneration(id: number): boolean {
    this.#checkUsable();
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) return false;
    return this.#model.isEogToken(id as Token);
  }

  /** True for control tokens (`<s>`, `<|im_start|>`, ...) that only templates may produce. */
  isControl(id: number): boolean {
    this.#checkUsable();
    this.#checkId(id);
    return this.#model.getTokenAttributes(id as Token).control;
  }

  /** Releases the native vocabulary. The shared llama.cpp instance stays for other tokenizers. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    await this.#model.dispose();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  #checkUsable(): void {
    if (this.#disposed) {
      throw new TokenizerError('tokenizer used after dispose()', 'a live tokenizer', 'a disposed one', 'Load it again.');
    }
  }

  #checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new TokenizerError(
        'token id out of range',
        `an integer in [0, ${this.vocabSize})`,
        String(id),
        `Check that the ids come from this model's vocabulary (${this.#path}).`,
      );
    }
  }
}
