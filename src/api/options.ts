/**
 * From a validated request to the generator's options: the model check, features we refuse (with a 400
 * that says so rather than silently ignoring them), sampling parameters, stop strings and the token
 * budget within the context window.
 *
 * Sampling defaults: a field the client leaves out takes llama.cpp's default (temperature 0.8, top_k 40,
 * top_p 0.95, min_p 0.05), as llama.cpp's server does, rather than OpenAI's (temperature 1, top_p 1), which
 * suit small open models badly. temperature 0 is greedy.
 */
import type { GenerateOptions } from '../model/generator.ts';
import { ApiError, invalidRequest } from './errors.ts';
import type { TokenConstraint } from '../model/sampler.ts';
import { jsonObjectConstraint } from '../model/sampler-json.ts';
import { SchemaError, compileSchema, grammarConstraint } from '../model/sampler-schema.ts';
import { z } from 'zod';
import type { ApiEngine } from './generation.ts';
import type { ChatRequest, CompletionRequest } from './schemas.ts';

type CommonRequest = ChatRequest | CompletionRequest;
/** The sampling fields of a request (the Responses API has only some of them). */
type SamplingRequest = Partial<Pick<ChatRequest, 'stop' | 'temperature' | 'top_p' | 'top_k' | 'min_p' | 'repeat_penalty' | 'presence_penalty' | 'frequency_penalty' | 'seed'>>;

function unsupported(param: string, what: string, instead: string): ApiError {
  return invalidRequest(`${what} is not supported by this server`, param, instead, 'unsupported_parameter');
}

/** Refuses the chat features this server cannot honour (logit bias, JSON output together with tools). */
export function checkChatSupport(body: ChatRequest): void {
  const toolsOn = body.tools != null && body.tools.length > 0 && body.tool_choice !== 'none';
  if (toolsOn && body.response_format != null && body.response_format.type !== 'text') {
    throw unsupported('response_format', 'response_format together with tools', 'send one or the other');
  }
  if (body.tool_choice != null && body.tool_choice !== 'none' && !toolsOn) throw invalidRequest('tool_choice needs tools', 'tool_choice', 'send the tools, or leave tool_choice out');
  const format = body.response_format?.type;
  if (format != null && format !== 'text' && format !== 'json_object' && format !== 'json_schema') {
    throw unsupported('response_format', `response_format '${format}'`, "send { type: 'json_schema' }, { type: 'json_object' } or { type: 'text' }, or leave it out");
  }
  if (body.top_logprobs != null && body.logprobs !== true) {
    throw invalidRequest('top_logprobs needs logprobs: true', 'top_logprobs', 'send logprobs: true with it, or leave top_logprobs out');
  }
  checkLogitBias(body);
}

/** Refuses the legacy completion features this server cannot honour. */
export function checkCompletionSupport(body: CompletionRequest): void {
  if (body.suffix != null && body.suffix !== '') throw unsupported('suffix', 'suffix (insertion)', 'leave suffix out');
  if (body.best_of != null && body.best_of !== 1) throw unsupported('best_of', `best_of = ${body.best_of}`, 'send best_of: 1 or leave it out');
  if (body.logprobs != null && body.echo === true) {
    throw unsupported('logprobs', 'logprobs of an echoed prompt', 'send echo: false, or leave logprobs out');
  }
  checkLogitBias(body);
}

/**
 * The grammar a response format asks for: JSON mode constrains sampling to one JSON object that is complete
 * within the token budget (sampler-json.ts). Below MIN_JSON_TOKENS ('{}' needs two) it is a 400.
 */
export function formatGrammar(format: ResponseFormat | null | undefined, engine: ApiEngine, maxTokens: number, param: string): (() => TokenConstraint) | undefined {
  if (format == null || (format.type !== 'json_object' && format.type !== 'json_schema')) return undefined;
  if (maxTokens < MIN_JSON_TOKENS) {
    throw invalidRequest(`JSON mode needs room for at least ${MIN_JSON_TOKENS} tokens, but only ${maxTokens} are left`, param, 'raise max_tokens or shorten the prompt');
  }
  if (format.type === 'json_object') return () => jsonObjectConstraint(engine.tokenizer, maxTokens);
  const parsed = JsonSchemaFormat.safeParse(format);
  if (!parsed.success) throw invalidRequest("response_format of type 'json_schema' needs json_schema: { name, schema }", `${param}.json_schema`, 'see OpenAI\'s structured outputs');
  let grammar: ReturnType<typeof compileSchema>;
  try {
    grammar = compileSchema(parsed.data.json_schema.schema);
  } catch (error) {
    if (error instanceof SchemaError) throw invalidRequest(error.message, `${param}.json_schema.schema`, error.hint);
    throw error;
  }
  return grammarFor(grammar, engine, maxTokens, param);
}

/** One constraint per generation for a compiled grammar; 400 when its shortest value does not fit. */
export function grammarFor(grammar: ReturnType<typeof compileSchema>, engine: ApiEngine, maxTokens: number, param: string): () => TokenConstraint {
  const shortest = grammar().cost();
  if (shortest > maxTokens) {
    throw invalidRequest(`the shortest value of this schema takes ${shortest} tokens, but only ${maxTokens} are left`, param, 'raise max_tokens or shorten the prompt');
  }
  return () => grammarConstraint(engine.tokenizer, maxTokens, grammar);
}

/** OpenAI's `{ type: 'json_schema', json_schema: { name, schema, strict } }`. */
const JsonSchemaFormat = z.object({ json_schema: z.object({ name: z.string(), schema: z.record(z.string(), z.unknown()) }) });
type ResponseFormat = { type: string };
const MIN_JSON_TOKENS = 2;

/** How many choices a request asks for; more than the server could ever run at once is a 400. */
export function choiceCount(n: number | null | undefined, engine: ApiEngine): number {
  const count = n ?? 1;
  const capacity = engine.limiter.maxConcurrent + engine.limiter.maxQueued;
  if (count > capacity) {
    throw invalidRequest(`n = ${count} choices is more than this server runs or queues at once (${capacity})`, 'n', `send n <= ${capacity}, or several requests`);
  }
  return count;
}

function checkLogitBias(body: CommonRequest): void {
  if (body.logit_bias != null && Object.keys(body.logit_bias).length > 0) throw unsupported('logit_bias', 'logit_bias', 'leave it out');
}

/** Stop strings as a list (empty strings dropped: they would match everywhere). */
export function stopStrings(stop: CommonRequest['stop']): string[] {
  if (stop == null) return [];
  return (typeof stop === 'string' ? [stop] : stop).filter((s) => s.length > 0);
}

/**
 * How many tokens the reply may have. A prompt that leaves no room is a 400 (OpenAI's
 * context_length_exceeded). A max_tokens beyond the room left is clamped, as llama.cpp's server does:
 * generation then ends with finish_reason 'length' when the context is full. No max_tokens: until the
 * context is full.
 */
export function tokenBudget(promptTokens: number, requested: number | null | undefined, nCtx: number, param: string): number {
  if (promptTokens === 0) throw invalidRequest('the prompt is empty', param, 'send some text');
  if (promptTokens >= nCtx) {
    throw new ApiError(400, `this model's context holds ${nCtx} tokens, but the prompt is ${promptTokens} tokens and the reply needs at least one more`, {
      code: 'context_length_exceeded',
      param,
      hint: `shorten the ${param} by at least ${promptTokens - nCtx + 1} tokens, or start the node with a larger --ctx-size`,
    });
  }
  const room = nCtx - promptTokens;
  return requested == null ? room : Math.min(requested, room);
}

/** OpenAI seeds are any integer; the sampler takes 32 bits. */
export function seed32(seed: number): number {
  return ((seed % 0x100000000) + 0x100000000) % 0x100000000;
}

/** The generator's options for a request (maxTokens from tokenBudget). */
export function generateOptions(body: SamplingRequest, maxTokens: number, signal: AbortSignal): GenerateOptions & { signal: AbortSignal } {
  return {
    maxTokens,
    stop: stopStrings(body.stop),
    signal,
    temperature: body.temperature ?? undefined,
    topP: body.top_p ?? undefined,
    topK: body.top_k ?? undefined,
    minP: body.min_p ?? undefined,
    repeatPenalty: body.repeat_penalty ?? undefined,
    presencePenalty: body.presence_penalty ?? undefined,
    frequencyPenalty: body.frequency_penalty ?? undefined,
    seed: body.seed == null ? undefined : seed32(body.seed),
  };
}
