/**
 * Running one generation for a request: wait for a slot (limiter.ts), stream from the Generator, free
 * everything when done, aborted or failed. The result arrives as events, so a route can forward pieces as
 * they come (streaming) or collect them (non-streaming) with a plain for-await loop, and breaking out of
 * that loop (client gone) closes the generation: the Generator's finally closes the sequence, ours frees
 * the slot.
 */
import { randomBytes } from 'node:crypto';
import type { GenerateOptions, GenerationResult, Generator } from '../model/generator.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import { ClientGoneError } from './http.ts';
import type { ConcurrencyLimiter } from './limiter.ts';

/** What the routes share: the model behind this server and its admission control. */
export interface ApiEngine {
  readonly generator: Generator;
  readonly tokenizer: Tokenizer;
  readonly modelId: string;
  /** Context length per sequence, in tokens (prompt and reply together). */
  readonly nCtx: number;
  readonly limiter: ConcurrencyLimiter;
  /** Unix seconds at which the server started (OpenAI's `created` of the model). */
  readonly createdAt: number;
}

/** A generation that finished normally ('aborted' is thrown instead, as the signal's reason). */
export interface FinishedGeneration extends GenerationResult {
  finishReason: 'stop' | 'length';
}

export type GenerationEvent = { kind: 'text'; text: string } | { kind: 'done'; result: FinishedGeneration };

/** Streams a generation as events; the last event is 'done'. Throws the signal's reason when aborted. */
export async function* generationEvents(engine: ApiEngine, prompt: readonly number[], options: GenerateOptions & { signal: AbortSignal }): AsyncGenerator<GenerationEvent, void> {
  const release = await engine.limiter.acquire(options.signal);
  try {
    const stream = engine.generator.stream(prompt, options);
    let next = await stream.next();
    try {
      while (next.done !== true) {
        if (next.value.text !== '') yield { kind: 'text', text: next.value.text };
        next = await stream.next();
      }
    } finally {
      // Reached early only when our consumer stopped: close the Generator so it frees the sequence.
      if (next.done !== true) await stream.return(undefined as never);
    }
    const result = next.value;
    if (result.finishReason === 'aborted') throw abortReason(options.signal);
    yield { kind: 'done', result: { ...result, finishReason: result.finishReason } };
  } finally {
    release();
  }
}

/** Runs a generation to its end (non-streaming requests). */
export async function generateAll(engine: ApiEngine, prompt: readonly number[], options: GenerateOptions & { signal: AbortSignal }): Promise<FinishedGeneration> {
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

/** An id such as 'chatcmpl-3f9a...' (24 hex digits). */
export function responseId(prefix: string): string {
  return `${prefix}-${randomBytes(12).toString('hex')}`;
}

export function unixSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
