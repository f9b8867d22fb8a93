/**
 * Running one generation for a request: wait for a slot (limiter.ts), stream from the Generator, free
 * everything when done, aborted or failed. The result arrives as events, so a route can forward pieces as
 * they come (streaming) or collect them (non-streaming) with a plain for-await loop, and breaking out of
 * that loop (client gone) closes the generation: the Generator's finally closes the sequence, ours frees
 * the slot.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { GenerateOptions, GenerationResult, ModelShare, TextGenerator } from '../model/generator.ts';
import type { MixtureTrail } from '../model/mixture/trail.ts';
import type { TokenConstraint } from '../model/sampler.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import { ClientGoneError } from './http.ts';
import type { ConcurrencyLimiter } from './limiter.ts';
import { type TokenLogprob, tokenLogprob } from './logprobs.ts';
import type { ApiMetrics } from './metrics.ts';
import type { ModelCatalog } from './models.ts';

/** What the routes share: the models this server serves and its admission control. */
export interface ApiService {
  readonly catalog: ModelCatalog;
  readonly limiter: ConcurrencyLimiter;
  /** Unix seconds at which the server started (OpenAI's `created` of the models). */
  readonly createdAt: number;
  /** Counted as requests are served (GET /metrics). */
  readonly metrics: ApiMetrics;
}

/** The engine of one request: the model it names (404 when this caller may not use it) and the service's admission. */
export function engineFor(service: ApiService, name: string, req: IncomingMessage): ApiEngine {
  const model = service.catalog.resolve(name, req);
  return {
    generator: model.generator, tokenizer: model.tokenizer, modelId: model.id, nCtx: model.nCtx, limiter: service.limiter, createdAt: service.createdAt, metrics: service.metrics,
    ...(model.recordTrails === undefined ? {} : { recordTrails: model.recordTrails }),
  };
}

/** One request's model and the service's admission control. */
export interface ApiEngine {
  readonly generator: TextGenerator;
  readonly tokenizer: Tokenizer;
  readonly modelId: string;
  /** Context length per sequence, in tokens (prompt and reply together). */
  readonly nCtx: number;
  readonly limiter: ConcurrencyLimiter;
  /** Unix seconds at which the server started (OpenAI's `created` of the model). */
  readonly createdAt: number;
  /** Counted as requests are served (GET /metrics). */
  readonly metrics: ApiMetrics;
  /** A mixture's: keeps the trails of a finished completion (attributions.ts), one per choice. */
  readonly recordTrails?: (completionId: string, trails: readonly MixtureTrail[]) => void;
}

/** One generation's options: the generator's, the request's signal, and logprobs when asked. */
export interface GenerationOptions extends GenerateOptions {
  signal: AbortSignal;
  /** When set, every token's logprob and this many alternatives (0 for none) are reported. */
  topLogprobs?: number;
  /** Makes the grammar of one generation (each choice gets its own: it has state), e.g. JSON mode. */
  grammar?: () => TokenConstraint;
}

/** A token's logprob and where its text starts in the choice's text. */
export interface PositionedLogprob extends TokenLogprob {
  textOffset: number;
}

/** A generation that finished normally ('aborted' is thrown instead, as the signal's reason). */
export interface FinishedGeneration extends GenerationResult {
  finishReason: 'stop' | 'length';
  /** Per generated token, when logprobs were asked for. */
  logprobs?: PositionedLogprob[];
  /** A mixture's: per generated token, each specialist's share of it. */
  attribution?: ModelShare[][];
}

/**
 * 'text': the text one token completed ('' when it completed no character yet, sent only when it carries
 * a logprob or, from a mixture, the token's attribution); 'done' comes last.
 */
export type GenerationEvent = { kind: 'text'; text: string; logprobs: PositionedLogprob[]; attribution?: readonly ModelShare[] } | { kind: 'done'; result: FinishedGeneration };

/** Streams a generation as events; the last event is 'done'. Throws the signal's reason when aborted. */
export async function* generationEvents(engine: ApiEngine, prompt: readonly number[], options: GenerationOptions): AsyncGenerator<GenerationEvent, void> {
  const { topLogprobs, grammar, ...rest } = options;
  // The sampler reports each row it samples from (the last one may be the end-of-generation token, which
  // yields no piece: it stays in `sampled` and is dropped).
  const sampled: TokenLogprob[] = [];
  const logprobs: PositionedLogprob[] | undefined = topLogprobs === undefined ? undefined : [];
  // The sampler is called once per step of this sequence: the metrics time the steps from there.
  const { metrics } = engine;
  let last = 0;
  let steps = 0;
  const generate: GenerateOptions = {
    ...rest,
    ...(grammar === undefined ? {} : { constraint: grammar() }),
    onSample: (logits, token) => {
      const now = performance.now();
      (steps++ === 0 ? metrics.firstToken : metrics.betweenTokens).observe((now - last) / 1000);
      last = now;
      if (topLogprobs !== undefined) sampled.push(tokenLogprob(logits, token, topLogprobs));
    },
  };
  const release = await engine.limiter.acquire(options.signal);
  try {
    last = performance.now();
    const stream = engine.generator.stream(prompt, generate);
    let next = await stream.next();
    let chars = 0;
    const attribution: ModelShare[][] = [];
    try {
      while (next.done !== true) {
        const piece = next.value;
        // A token yields one piece, and at the very end maybe a second one (the decoder's tail): match by id.
        const mine: PositionedLogprob[] = [];
        if (logprobs !== undefined && sampled[0]?.token === piece.token) {
          const entry = { ...sampled.shift()!, textOffset: chars };
          mine.push(entry);
          logprobs.push(entry);
        }
        chars += piece.text.length;
        if (piece.attribution !== undefined) {
          attribution.push([...piece.attribution]);
          yield { kind: 'text', text: piece.text, logprobs: mine, attribution: piece.attribution };
        } else if (piece.text !== '' || mine.length > 0) yield { kind: 'text', text: piece.text, logprobs: mine };
        next = await stream.next();
      }
    } finally {
      // Reached early only when our consumer stopped: close the Generator so it frees the sequence.
      if (next.done !== true) await stream.return(undefined as never);
    }
    const result = next.value;
    metrics.promptTokens += result.promptTokens;
    metrics.completionTokens += result.tokens.length;
    if (result.finishReason === 'aborted') throw abortReason(options.signal);
    const mixture = result.trail === undefined ? {} : { attribution };
    yield { kind: 'done', result: { ...result, finishReason: result.finishReason, ...(logprobs === undefined ? {} : { logprobs }), ...mixture } };
  } finally {
    release();
  }
}

/** Runs a generation to its end (non-streaming requests). */
export async function generateAll(engine: ApiEngine, prompt: readonly number[], options: GenerationOptions): Promise<FinishedGeneration> {
  for await (const event of generationEvents(engine, prompt, options)) {
    if (event.kind === 'done') return event.result;
  }
  throw abortReason(options.signal);
}

function abortReason(signal: AbortSignal): unknown {
  return signal.aborted ? signal.reason : new ClientGoneError();
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export function usageOf(result: GenerationResult): Usage {
  const completion = result.tokens.length;
  return { prompt_tokens: result.promptTokens, completion_tokens: completion, total_tokens: result.promptTokens + completion };
}

/** An id such as 'chatcmpl-3f9a...' (24 hex digits); the Responses API's ids use '_' ('resp_3f9a...'). */
export function responseId(prefix: string, separator: '-' | '_' = '-'): string {
  return `${prefix}${separator}${randomBytes(12).toString('hex')}`;
}

export function unixSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
