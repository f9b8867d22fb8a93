/**
 * POST /v1/completions (OpenAI's legacy text completion): the prompt is plain text (never parsed for
 * special tokens; BOS added when the model wants it) or token ids, and one prompt per request.
 *
 * Non-streaming answer:
 *   { id: 'cmpl-…', object: 'text_completion', created, model,
 *     choices: [{ text, index, logprobs, finish_reason }], usage }
 * `n` choices (choices.ts); `logprobs: k` fills each choice's `logprobs` with every token's logprob and its
 * k most likely alternatives (logprobs.ts), null otherwise (with echo it is refused: no prompt logprobs).
 * Streaming answer (SSE): one chunk per piece `{ …, choices: [{ text, index: 0, logprobs: null,
 * finish_reason: null }] }`, a last chunk with text '' and the finish_reason, the usage chunk
 * (`choices: []`) when `stream_options.include_usage` is set, then `data: [DONE]`.
 * `echo: true` puts the prompt's text in front of the completion.
 */
import type { RouteHandler } from '../federation/coordinator/http.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import type { ModelShare } from '../model/generator.ts';
import { recordTrails, sharedllmField } from './attributions.ts';
import { invalidRequest } from './errors.ts';
import { type ChoiceEvent, choiceEvents, generateChoices, usageOfChoices } from './choices.ts';
import { type ApiEngine, type FinishedGeneration, type GenerationOptions, type PositionedLogprob, responseId, unixSeconds, type ApiService, engineFor } from './generation.ts';
import { requestSignal } from './http.ts';
import { completionLogprobs } from './logprobs.ts';
import { checkCompletionSupport, choiceCount, generateOptions, tokenBudget } from './options.ts';
import { refuseOverlongPrompt } from './prompt-size.ts';
import { CompletionRequestSchema, parseBody } from './schemas.ts';
import type { CompletionRequest } from './schemas.ts';
import { SseBody } from './sse.ts';

export function completionsRoute(service: ApiService): RouteHandler {
  return async (ctx) => {
    const body = parseBody(CompletionRequestSchema, await ctx.json());
    const engine = engineFor(service, body.model, ctx.req);
    checkCompletionSupport(body);
    const { ids: prompt, text: promptText } = promptTokens(engine.tokenizer, body.prompt, engine.nCtx);
    const maxTokens = tokenBudget(prompt.length, body.max_tokens, engine.nCtx, 'prompt');
    const options: GenerationOptions = {
      ...generateOptions(body, maxTokens, requestSignal(ctx.req)),
      ...(body.logprobs == null ? {} : { topLogprobs: body.logprobs }),
    };
    const n = choiceCount(body.n, engine);
    const meta: CompletionMeta = { id: responseId('cmpl'), created: unixSeconds(), model: engine.modelId, tokenizer: engine.tokenizer, engine };
    const echo = body.echo === true ? promptText() : '';
    if (body.stream === true) {
      const includeUsage = body.stream_options?.include_usage === true;
      return { body: new SseBody(completionChunks(choiceEvents(engine, prompt, options, n), meta, n, echo, includeUsage)) };
    }
    const results = await generateChoices(engine, prompt, options, n);
    recordTrails(engine, meta.id, results);
    return {
      body: {
        id: meta.id,
        object: 'text_completion',
        created: meta.created,
        model: meta.model,
        choices: results.map((result, index) => ({
          text: echo + result.text,
          index,
          logprobs: logprobsOf(meta, result.logprobs, 0),
          finish_reason: result.finishReason,
          ...sharedllmField(result.attribution),
        })),
        usage: usageOfChoices(results),
      },
    };
  };
}

/** The prompt's token ids, and (lazily, for echo) its text. */
function promptTokens(tokenizer: Tokenizer, prompt: CompletionRequest['prompt'], nCtx: number): { ids: number[]; text: () => string } {
  let single: string | number[];
  if (typeof prompt === 'string') single = prompt;
  else if (prompt.length === 0) throw invalidRequest('the prompt is empty', 'prompt', 'send some text');
  else if (typeof prompt[0] === 'number') single = prompt as number[];
  else if (prompt.length > 1) {
    throw invalidRequest(`${prompt.length} prompts were sent; this server completes one prompt per request`, 'prompt', 'send one request per prompt');
  } else single = prompt[0] as string | number[];

  if (typeof single === 'string') {
    const text = single;
    // A prompt far over the context is refused from its size, before the tokenizer spends time on it.
    refuseOverlongPrompt(tokenizer, text, nCtx, 'prompt');
    return { ids: tokenizer.encode(text, { addBos: tokenizer.addBosDefault }), text: () => text };
  }
  const ids = single;
  const bad = ids.findIndex((id) => id >= tokenizer.vocabSize);
  if (bad >= 0) {
    throw invalidRequest(`token id ${ids[bad]} at prompt[${bad}] is outside the vocabulary (0 .. ${tokenizer.vocabSize - 1})`, 'prompt', 'send ids from this model\'s tokenizer');
  }
  return { ids, text: () => tokenizer.decode(ids) };
}

interface CompletionMeta {
  id: string;
  created: number;
  model: string;
  tokenizer: Tokenizer;
  /** Where a mixture's trails go once every choice is done. */
  engine: Pick<ApiEngine, 'recordTrails'>;
}

/** A choice's (or a chunk's) `logprobs`: null unless asked for; offsets shifted by `base` characters. */
function logprobsOf(meta: CompletionMeta, entries: readonly PositionedLogprob[] | undefined, base: number) {
  if (entries === undefined) return null;
  return completionLogprobs(meta.tokenizer, entries, entries.map((e) => base + e.textOffset));
}

async function* completionChunks(events: AsyncIterable<ChoiceEvent>, meta: CompletionMeta, n: number, echo: string, includeUsage: boolean): AsyncGenerator<unknown> {
  const chunk = (index: number, text: string, logprobs: unknown, finishReason: string | null, attribution?: readonly ModelShare[]) => ({
    id: meta.id,
    object: 'text_completion',
    created: meta.created,
    model: meta.model,
    choices: [{ text, index, logprobs, finish_reason: finishReason }],
    ...(includeUsage ? { usage: null } : {}),
    ...sharedllmField(attribution),
  });
  const started = new Set<number>();
  const results: FinishedGeneration[] = [];
  for await (const { index, event } of events) {
    // The echo waits for the model's first event, so an early failure is still an HTTP error status.
    if (!started.has(index)) {
      started.add(index);
      if (echo !== '') yield chunk(index, echo, null, null);
    }
    if (event.kind === 'text') {
      yield chunk(index, event.text, event.logprobs.length > 0 ? logprobsOf(meta, event.logprobs, echo.length) : null, null, event.attribution);
    } else {
      results.push(event.result);
      yield chunk(index, '', null, event.result.finishReason);
    }
  }
  if (results.length === n) recordTrails(meta.engine, meta.id, results);
  if (includeUsage && results.length === n) {
    yield { id: meta.id, object: 'text_completion', created: meta.created, model: meta.model, choices: [], usage: usageOfChoices(results) };
  }
}
