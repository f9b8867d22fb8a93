/**
 * POST /v1/chat/completions: the conversation goes through the model's chat template (encodeChat: the
 * template's markup may hold special tokens, message contents never do), then one generation.
 *
 * Non-streaming answer:
 *   { id: 'chatcmpl-…', object: 'chat.completion', created, model,
 *     choices: [{ index, message: { role: 'assistant', content, refusal: null }, logprobs, finish_reason }],
 *     usage: { prompt_tokens, completion_tokens, total_tokens } }
 * `tools` (tools.ts): the answer is sampled as a tool call or a response, and comes back as
 * `message.tool_calls` (finish_reason 'tool_calls') or content; streams send it in one chunk at the end.
 * `response_format: { type: 'json_object' }` constrains sampling to one JSON object, complete within the
 * token budget (src/model/sampler-json.ts). `n` choices (choices.ts); `logprobs: true` (with `top_logprobs` alternatives) fills each choice's
 * `logprobs` (logprobs.ts), null otherwise.
 * Streaming answer (SSE), as OpenAI sends it: a first chunk with `delta: { role: 'assistant', content: '' }`,
 * one chunk per piece of text, a last chunk with `delta: {}` and the finish_reason, then, when
 * `stream_options.include_usage` is set, a chunk with `choices: []` and the usage (the other chunks then
 * carry `usage: null`), then `data: [DONE]`. With n > 1 the chunks of the choices interleave, each naming
 * its `index`; with logprobs, each content chunk carries the logprobs of its token.
 */
import type { RouteHandler } from '../federation/coordinator/http.ts';
import { encodeChat } from '../model/chat-prompt.ts';
import { type ChatMessage, applyChatTemplate } from '../model/chat-template.ts';
import type { ModelShare } from '../model/generator.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import { recordTrails, sharedllmField } from './attributions.ts';
import { type ChoiceEvent, choiceEvents, generateChoices, usageOfChoices } from './choices.ts';
import { type ApiEngine, type FinishedGeneration, type GenerationOptions, responseId, unixSeconds, type ApiService, engineFor } from './generation.ts';
import { requestSignal } from './http.ts';
import { type TokenLogprob, chatLogprobEntries } from './logprobs.ts';
import { checkChatSupport, choiceCount, formatGrammar, generateOptions, grammarFor, tokenBudget } from './options.ts';
import { refuseOverlongPrompt } from './prompt-size.ts';
import { ChatRequestSchema, parseBody } from './schemas.ts';
import type { ChatRequest } from './schemas.ts';
import { SseBody } from './sse.ts';
import { type ToolCall, readToolAnswer, toolCallsText, toolPlan, toolResultText, withToolSystem } from './tools.ts';

export function chatCompletionsRoute(service: ApiService): RouteHandler {
  return async (ctx) => {
    const body = parseBody(ChatRequestSchema, await ctx.json());
    const engine = engineFor(service, body.model, ctx.req);
    checkChatSupport(body);
    const tools = toolPlan(body.tools, body.tool_choice);
    const conversation = toChatMessages(body.messages);
    const messages = tools === undefined ? conversation : withToolSystem(conversation, tools);
    // A prompt far over the context is refused from its size, before the tokenizer spends time on it.
    refuseOverlongPrompt(engine.tokenizer, applyChatTemplate(engine.tokenizer.chatTemplate, messages, true), engine.nCtx, 'messages');
    const prompt = encodeChat(engine.tokenizer, messages, true);
    const maxTokens = tokenBudget(prompt.length, body.max_completion_tokens ?? body.max_tokens, engine.nCtx, 'messages');
    const options: GenerationOptions = {
      ...generateOptions(body, maxTokens, requestSignal(ctx.req)),
      ...(body.logprobs === true ? { topLogprobs: body.top_logprobs ?? 0 } : {}),
    };
    const grammar = tools === undefined ? formatGrammar(body.response_format, engine, maxTokens, 'response_format') : grammarFor(tools.grammar, engine, maxTokens, 'tools');
    if (grammar !== undefined) options.grammar = grammar;
    const n = choiceCount(body.n, engine);
    const meta: ChunkMeta = { id: responseId('chatcmpl'), created: unixSeconds(), model: engine.modelId, tokenizer: engine.tokenizer, tools: tools !== undefined, engine };
    if (body.stream === true) {
      const includeUsage = body.stream_options?.include_usage === true;
      return { body: new SseBody(chatChunks(choiceEvents(engine, prompt, options, n), meta, n, includeUsage)) };
    }
    const results = await generateChoices(engine, prompt, options, n);
    recordTrails(engine, meta.id, results);
    return { body: chatCompletion(meta, results) };
  };
}

/** OpenAI messages to the template's: 'developer' is a system message; text parts are joined by newlines. */
export function toChatMessages(messages: ChatRequest['messages']): ChatMessage[] {
  return messages.map((m) => {
    const text = typeof m.content === 'string' ? m.content : (m.content ?? []).map((part) => part.text).join('\n');
    // Tool turns in the generic format of tools.ts.
    if (m.role === 'tool') return { role: 'user', content: toolResultText(m.tool_call_id, text) };
    if (m.role === 'assistant' && m.tool_calls != null && m.tool_calls.length > 0) {
      return { role: 'assistant', content: [text, toolCallsText(m.tool_calls)].filter((t) => t !== '').join('\n') };
    }
    return { role: m.role === 'developer' ? 'system' : m.role, content: text };
  });
}

interface ChunkMeta {
  id: string;
  created: number;
  model: string;
  tokenizer: Tokenizer;
  /** The answer is tools.ts's JSON: read it into content or tool_calls (streams send it whole at the end). */
  tools: boolean;
  /** Where a mixture's trails go once every choice is done. */
  engine: Pick<ApiEngine, 'recordTrails'>;
}

/** A choice's message fields and finish reason, with tool calls read out of the answer when tools are on. */
function answerOf(meta: ChunkMeta, result: FinishedGeneration): { content: string | null; toolCalls?: ToolCall[]; finishReason: string } {
  if (!meta.tools) return { content: result.text, finishReason: result.finishReason };
  const answer = readToolAnswer(result.text);
  return { ...answer, finishReason: answer.toolCalls === undefined ? result.finishReason : 'tool_calls' };
}

/** A choice's `logprobs`: null unless asked for. */
function logprobsOf(meta: ChunkMeta, entries: readonly TokenLogprob[] | undefined) {
  return entries === undefined ? null : { content: chatLogprobEntries(meta.tokenizer, entries), refusal: null };
}

function chatCompletion(meta: ChunkMeta, results: readonly FinishedGeneration[]) {
  return {
    id: meta.id,
    object: 'chat.completion',
    created: meta.created,
    model: meta.model,
    choices: results.map((result, index) => {
      const answer = answerOf(meta, result);
      return {
        index,
        message: { role: 'assistant', content: answer.content, refusal: null, ...(answer.toolCalls === undefined ? {} : { tool_calls: answer.toolCalls }) },
        logprobs: logprobsOf(meta, result.logprobs),
        finish_reason: answer.finishReason,
        ...sharedllmField(result.attribution),
      };
    }),
    usage: usageOfChoices(results),
  };
}

async function* chatChunks(events: AsyncIterable<ChoiceEvent>, meta: ChunkMeta, n: number, includeUsage: boolean): AsyncGenerator<unknown> {
  const chunk = (index: number, delta: Record<string, unknown>, logprobs: unknown, finishReason: string | null, attribution?: readonly ModelShare[]) => ({
    id: meta.id,
    object: 'chat.completion.chunk',
    created: meta.created,
    model: meta.model,
    choices: [{ index, delta, logprobs, finish_reason: finishReason }],
    ...(includeUsage ? { usage: null } : {}),
    ...sharedllmField(attribution),
  });
  const started = new Set<number>();
  const results: FinishedGeneration[] = [];
  for await (const { index, event } of events) {
    // A choice's role chunk waits for its first event, so an early failure is still an HTTP error status.
    if (!started.has(index)) {
      started.add(index);
      yield chunk(index, { role: 'assistant', content: '' }, null, null);
    }
    if (event.kind === 'text') {
      if (!meta.tools) yield chunk(index, { content: event.text }, event.logprobs.length > 0 ? logprobsOf(meta, event.logprobs) : null, null, event.attribution);
    } else {
      results.push(event.result);
      const answer = answerOf(meta, event.result);
      if (meta.tools && answer.toolCalls !== undefined) {
        yield chunk(index, { tool_calls: answer.toolCalls.map((call, i) => ({ index: i, ...call })) }, null, null);
      } else if (meta.tools && answer.content !== null) {
        yield chunk(index, { content: answer.content }, null, null);
      }
      yield chunk(index, {}, null, answer.finishReason);
    }
  }
  if (results.length === n) recordTrails(meta.engine, meta.id, results);
  if (includeUsage && results.length === n) {
    yield { id: meta.id, object: 'chat.completion.chunk', created: meta.created, model: meta.model, choices: [], usage: usageOfChoices(results) };
  }
}
