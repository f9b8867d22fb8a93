/**
 * POST /v1/chat/completions: the conversation goes through the model's chat template (encodeChat: the
 * template's markup may hold special tokens, message contents never do), then one generation.
 *
 * Non-streaming answer:
 *   { id: 'chatcmpl-…', object: 'chat.completion', created, model,
 *     choices: [{ index: 0, message: { role: 'assistant', content, refusal: null }, logprobs: null, finish_reason }],
 *     usage: { prompt_tokens, completion_tokens, total_tokens } }
 * Streaming answer (SSE), as OpenAI sends it: a first chunk with `delta: { role: 'assistant', content: '' }`,
 * one chunk per piece of text, a last chunk with `delta: {}` and the finish_reason, then, when
 * `stream_options.include_usage` is set, a chunk with `choices: []` and the usage (the other chunks then
 * carry `usage: null`), then `data: [DONE]`.
 */
import type { RouteHandler } from '../federation/coordinator/http.ts';
import { encodeChat } from '../model/chat-prompt.ts';
import { type ChatMessage, applyChatTemplate } from '../model/chat-template.ts';
import { type ApiEngine, type FinishedGeneration, type GenerationEvent, generateAll, generationEvents, responseId, unixSeconds, usageOf } from './generation.ts';
import { requestSignal } from './http.ts';
import { checkChatSupport, checkModel, generateOptions, tokenBudget } from './options.ts';
import { refuseOverlongPrompt } from './prompt-size.ts';
import { ChatRequestSchema, parseBody } from './schemas.ts';
import type { ChatRequest } from './schemas.ts';
import { SseBody } from './sse.ts';

export function chatCompletionsRoute(engine: ApiEngine): RouteHandler {
  return async (ctx) => {
    const body = parseBody(ChatRequestSchema, await ctx.json());
    checkModel(body.model, engine.modelId);
    checkChatSupport(body);
    const messages = toChatMessages(body.messages);
    // A prompt far over the context is refused from its size, before the tokenizer spends time on it.
    refuseOverlongPrompt(engine.tokenizer, applyChatTemplate(engine.tokenizer.chatTemplate, messages, true), engine.nCtx, 'messages');
    const prompt = encodeChat(engine.tokenizer, messages, true);
    const maxTokens = tokenBudget(prompt.length, body.max_completion_tokens ?? body.max_tokens, engine.nCtx, 'messages');
    const options = generateOptions(body, maxTokens, requestSignal(ctx.req));
    const meta: ChunkMeta = { id: responseId('chatcmpl'), created: unixSeconds(), model: engine.modelId };
    if (body.stream === true) {
      const includeUsage = body.stream_options?.include_usage === true;
      return { body: new SseBody(chatChunks(generationEvents(engine, prompt, options), meta, includeUsage)) };
    }
    return { body: chatCompletion(meta, await generateAll(engine, prompt, options)) };
  };
}

/** OpenAI messages to the template's: 'developer' is a system message; text parts are joined by newlines. */
export function toChatMessages(messages: ChatRequest['messages']): ChatMessage[] {
  return messages.map((m) => ({
    role: m.role === 'developer' ? 'system' : m.role,
    content: typeof m.content === 'string' ? m.content : (m.content ?? []).map((part) => part.text).join('\n'),
  }));
}

interface ChunkMeta {
  id: string;
  created: number;
  model: string;
}

function chatCompletion(meta: ChunkMeta, result: FinishedGeneration) {
  return {
    id: meta.id,
    object: 'chat.completion',
    created: meta.created,
    model: meta.model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: result.text, refusal: null },
        logprobs: null,
        finish_reason: result.finishReason,
      },
    ],
    usage: usageOf(result),
  };
}

async function* chatChunks(events: AsyncIterable<GenerationEvent>, meta: ChunkMeta, includeUsage: boolean): AsyncGenerator<unknown> {
  const chunk = (delta: Record<string, unknown>, finishReason: string | null) => ({
    id: meta.id,
    object: 'chat.completion.chunk',
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    ...(includeUsage ? { usage: null } : {}),
  });
  let started = false;
  for await (const event of events) {
    // The role chunk waits for the model's first event, so an early failure is still an HTTP error status.
    if (!started) {
      started = true;
      yield chunk({ role: 'assistant', content: '' }, null);
    }
    if (event.kind === 'text') {
      yield chunk({ content: event.text }, null);
    } else {
      yield chunk({}, event.result.finishReason);
      if (includeUsage) {
        yield { id: meta.id, object: 'chat.completion.chunk', created: meta.created, model: meta.model, choices: [], usage: usageOf(event.result) };
      }
    }
  }
}
