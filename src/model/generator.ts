// Text generation: prompt tokens in, a stream of tokens (with their text) out. Sampling, stop tokens and
// stop strings, the context limit and cancellation live here; the model math is behind a Forward.
import type { Batcher } from './batcher.ts';
import type { MixtureTrail, ModelShare } from './mixture/trail.ts';
import { ContextLimitError } from './errors.ts';
import { type SamplerOptions, createSampler } from './sampler.ts';
import type { Tokenizer } from './tokenizer.ts';

export interface GenerateOptions extends SamplerOptions {
  /** Most tokens to generate. Default 256. */
  maxTokens?: number;
  /** Stop when the text generated so far contains one of these (the stop string is not emitted). */
  stop?: readonly string[];
  signal?: AbortSignal;
  /**
   * A per-user norm adapter for this request (train/adapter normOverrides): norm tensor name -> gains. The
   * request still shares batched steps with every other sequence, adapted or not.
   */
  normOverrides?: ReadonlyMap<string, Float32Array>;
}

export type FinishReason = 'stop' | 'length' | 'aborted';

export interface GeneratedPiece {
  /** Text that became complete with this token (may be empty mid-character or while matching a stop string). */
  text: string;
  token: number;
  /** A mixture's glass-box trail: each specialist's share of this token (summing to 1). Absent for one model. */
  attribution?: readonly ModelShare[];
}


export interface GenerationResult {
  text: string;
  tokens: number[];
  promptTokens: number;
  finishReason: FinishReason;
  /** A mixture's glass-box trail (src/model/mixture/trail.ts). */
  trail?: MixtureTrail;
}

export type { ModelShare };

/**
 * Anything that turns a prompt into a stream of pieces: a Generator over one model, or a combination of
 * models (the mixture). The API serves any TextGenerator; `batcher` is there when one model stands behind
 * it (embeddings need it).
 */
export interface TextGenerator {
  stream(prompt: readonly number[], opts?: GenerateOptions): AsyncGenerator<GeneratedPiece, GenerationResult>;
  readonly batcher?: Batcher;
}

export class Generator implements TextGenerator {
  readonly batcher: Batcher;
  readonly tokenizer: Tokenizer;

  constructor(batcher: Batcher, tokenizer: Tokenizer) {
    this.batcher = batcher;
    this.tokenizer = tokenizer;
  }

  /** Stream pieces; the returned generator's final value is the whole result. */
  async *stream(prompt: readonly number[], opts: GenerateOptions = {}): AsyncGenerator<GeneratedPiece, GenerationResult> {
    const fwd = this.batcher.forward;
    const maxTokens = opts.maxTokens ?? 256;
    if (prompt.length === 0) throw new ContextLimitError('empty prompt', 'at least one token', '0', 'send some text');
    if (prompt.length >= fwd.nCtx) {
      throw new ContextLimitError('prompt too long', `fewer than ${fwd.nCtx} tokens`, `${prompt.length} tokens`, 'shorten the prompt or start the node with a larger --ctx-size');
    }
    const { maxTokens: _m, stop: _s, signal: _g, normOverrides, ...samplerOpts } = opts;
    const sampler = createSampler(samplerOpts);
    const decoder = this.tokenizer.createStreamDecoder();
    const stops = (opts.stop ?? []).filter((s) => s.length > 0);
    const history = [...prompt];
    const tokens: number[] = [];
    let text = '';
    let emitted = 0; // chars of `text` already emitted (held back while they could start a stop string)
    let finishReason: FinishReason = 'length';
    // Opened inside the try: whatever happens from here on (an error, the client going away, a failover that
    // gives up), the finally closes the sequence on every part that holds it.
    let seq: number | undefined;
    try {
      seq = await fwd.openSequence(normOverrides ? { normOverrides } : undefined);
      let rows = await this.batcher.submit({ seq, tokens: Int32Array.from(prompt) });
      for (let i = 0; i < maxTokens; i++) {
        if (opts.signal?.aborted) {
          finishReason = 'aborted';
          break;
        }
        const token = sampler.sample(rows[0]!, history);
        if (this.tokenizer.isEndOfGeneration(token)) {
          finishReason = 'stop';
          break;
        }
        tokens.push(token);
        history.push(token);
        text += decoder.push(token);
        const hit = firstStop(text, stops);
        if (hit >= 0) {
          text = text.slice(0, hit);
          if (text.length > emitted) yield { text: text.slice(emitted), token };
          emitted = text.length;
          finishReason = 'stop';
          break;
        }
        const safe = text.length - holdBack(text, stops);
        yield { text: safe > emitted ? text.slice(emitted, safe) : '', token };
        emitted = Math.max(emitted, safe);
        if (i + 1 >= maxTokens) break;
        if (prompt.length + tokens.length >= fwd.nCtx) {
          finishReason = 'length';
          break;
        }
        rows = await this.batcher.submit({ seq, tokens: Int32Array.of(token) });
      }
      if (finishReason !== 'stop' || firstStop(text, stops) < 0) {
        text += decoder.flush();
        if (text.length > emitted) yield { text: text.slice(emitted), token: tokens.at(-1) ?? -1 };
      }
      return { text, tokens, promptTokens: prompt.length, finishReason };
    } finally {
      if (seq !== undefined) await fwd.closeSequence(seq);
    }
  }

  /** Generate to completion. */
  async complete(prompt: readonly number[], opts: GenerateOptions = {}): Promise<GenerationResult> {
    const it = this.stream(prompt, opts);
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
    }
  }
}

/** Index of the earliest stop string in `text`, or -1. */
export function firstStop(text: string, stops: readonly string[]): number {
  let best = -1;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (best < 0 || i < best)) best = i;
  }
  return best;
}

/** How many trailing chars could be the start of a stop string (not emitted yet). */
export function holdBack(text: string, stops: readonly string[]): number {
  let keep = 0;
  for (const s of stops) {
    for (let k = Math.min(s.length - 1, text.length); k > keep; k--) {
      if (text.endsWith(s.slice(0, k))) {
        keep = k;
        break;
      }
    }
  }
  return keep;
}
