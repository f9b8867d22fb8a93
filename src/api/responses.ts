/**
 * POST /v1/responses: OpenAI's Responses API (the default of the AI SDK's and LangChain's OpenAI providers),
 * text in and text out. Nothing is stored: `store` is answered false and `previous_response_id` is refused.
 *
 * Request: { model, input: string | [{ role, content: string | [{ type: 'input_text' | 'output_text', text }] }],
 *            instructions?, max_output_tokens?, temperature?, top_p?, stream? }
 *   `instructions` becomes a system message in front; 'developer' is a system message; then the model's
 *   chat template, as in chat.ts. `text.format` json_object or json_schema constrains sampling as chat's
 *   response_format does. Tools and other input items (images, files, tool outputs) are refused with a 400.
 * Answer: a `response` object with one output message holding one `output_text` part; status 'completed',
 *   or 'incomplete' with incomplete_details.reason 'max_output_tokens' when the budget ran out.
 * Streaming (SSE with `event:` names, no [DONE]), as OpenAI sends it: response.created,
 *   response.in_progress, response.output_item.added, response.content_part.added,
 *   response.output_text.delta (one per piece), response.output_text.done, response.content_part.done,
 *   response.output_item.done, then response.completed (or response.incomplete). Each event carries its
 *   sequence_number. A failure after the start is an `error` event.
 * A mixture (`model: "mixture"`, docs/mixture.md) adds its attribution as chat does: each generated token's
 *   output_text.delta carries `sharedllm: { attribution: [{ model, share }] }` (sent even when the token
 *   completes no character yet), the final `response` carries `sharedllm: { attribution: [[…], …] }` (one list
 *   per token), and the trail is stored under the response's id (GET /v1/attributions/{id}).
 */
import { z } from 'zod';
import type { RouteHandler } from '../http/index.ts';
import { encodeChat } from '../model/chat-prompt.ts';
import { type ChatMessage, applyChatTemplate } from '../model/chat-template.ts';
import { recordTrails, sharedllmField } from './attributions.ts';
import { invalidRequest } from './errors.ts';
import { type ApiEngine, type FinishedGeneration, type GenerationEvent, type GenerationOptions, generateAll, generationEvents, responseId, unixSeconds, type ApiService, engineFor } from './generation.ts';
import { requestSignal } from './http.ts';
import { formatGrammar, generateOptions, tokenBudget } from './options.ts';
import { refuseOverlongPrompt } from './prompt-size.ts';
import { parseBody } from './schemas.ts';
import { SseBody, type SseStyle } from './sse.ts';

const TextPart = z.object({
  type: z.enum(['input_text', 'output_text'], { error: "only content parts of type 'input_text' (or 'output_text' in assistant turns) are supported" }),
  text: z.string(),
});

const InputMessage = z.object({
  type: z.literal('message', { error: "only input items of type 'message' are supported (no tool outputs or item references)" }).optional(),
  role: z.enum(['user', 'assistant', 'system', 'developer'], { error: "role must be 'user', 'assistant', 'system' or 'developer'" }),
  content: z.union([z.string(), z.array(TextPart)], { error: 'content must be a string or an array of text parts' }),
});

export const ResponsesRequestSchema = z.object({
  model: z.string({ error: 'model is required (GET /v1/models lists them)' }).max(256),
  input: z.union([z.string(), z.array(InputMessage).min(1, { error: 'input must hold at least one message' })], {
    error: 'input must be a string or an array of messages',
  }),
  instructions: z.string().nullish(),
  max_output_tokens: z.number().int().min(1, { error: 'must be at least 1 token' }).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  stream: z.boolean().nullish(),
  previous_response_id: z.string().nullish(),
  tools: z.array(z.unknown()).nullish(),
  text: z.object({ format: z.object({ type: z.string().max(256) }).loose().nullish() }).loose().nullish(),
});
type ResponsesRequest = z.infer<typeof ResponsesRequestSchema>;

export function responsesRoute(service: ApiService): RouteHandler {
  return async (ctx) => {
    const body = parseBody(ResponsesRequestSchema, await ctx.json());
    const engine = engineFor(service, body.model, ctx.req);
    checkResponsesSupport(body);
    const messages = toChatMessages(body);
    refuseOverlongPrompt(engine.tokenizer, applyChatTemplate(engine.tokenizer.chatTemplate, messages, true), engine.nCtx, 'input');
    const prompt = encodeChat(engine.tokenizer, messages, true);
    const maxTokens = tokenBudget(prompt.length, body.max_output_tokens, engine.nCtx, 'input');
    const options: GenerationOptions = generateOptions({ temperature: body.temperature, top_p: body.top_p }, maxTokens, requestSignal(ctx.req));
    // text.format is chat's response_format with the json_schema fields one level up.
    const format = body.text?.format;
    const grammar = formatGrammar(format?.type === 'json_schema' ? { type: 'json_schema', json_schema: format } : format, engine, maxTokens, 'text.format');
    if (grammar !== undefined) options.grammar = grammar;
    const meta: ResponseMeta = { id: responseId('resp', '_'), messageId: responseId('msg', '_'), createdAt: unixSeconds(), model: engine.modelId, request: body, engine };
    if (body.stream === true) {
      const sequence = { next: 0 };
      return { body: new SseBody(responseEvents(generationEvents(engine, prompt, options), meta, sequence), responsesSse(sequence)) };
    }
    const result = await generateAll(engine, prompt, options);
    recordTrails(engine, meta.id, [result]);
    return { body: responseObject(meta, result) };
  };
}

function checkResponsesSupport(body: ResponsesRequest): void {
  if (body.previous_response_id != null) {
    throw invalidRequest('previous_response_id is not supported: this server stores no responses', 'previous_response_id', 'send the whole conversation in input', 'unsupported_parameter');
  }
  if (body.tools != null && body.tools.length > 0) throw invalidRequest('tools are not supported by this server', 'tools', 'send the request without tools', 'unsupported_parameter');
  const format = body.text?.format?.type;
  if (format != null && format !== 'text' && format !== 'json_object' && format !== 'json_schema') {
    throw invalidRequest(`text.format '${format}' is not supported by this server`, 'text.format', "send { type: 'json_schema', name, schema }, { type: 'json_object' } or { type: 'text' }", 'unsupported_parameter');
  }
}

function toChatMessages(body: ResponsesRequest): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (body.instructions != null && body.instructions !== '') messages.push({ role: 'system', content: body.instructions });
  if (typeof body.input === 'string') messages.push({ role: 'user', content: body.input });
  else {
    for (const m of body.input) {
      const content = typeof m.content === 'string' ? m.content : m.content.map((part) => part.text).join('\n');
      messages.push({ role: m.role === 'developer' ? 'system' : m.role, content });
    }
  }
  return messages;
}

interface ResponseMeta {
  id: string;
  messageId: string;
  createdAt: number;
  model: string;
  request: ResponsesRequest;
  /** Keeps a mixture's trail once the response is finished. */
  engine: Pick<ApiEngine, 'recordTrails'>;
}

type Status = 'in_progress' | 'completed' | 'incomplete';

function outputMessage(meta: ResponseMeta, status: Status, text: string | undefined) {
  return {
    id: meta.messageId,
    type: 'message',
    status,
    role: 'assistant',
    content: text === undefined ? [] : [outputText(text)],
  };
}

function outputText(text: string) {
  return { type: 'output_text', text, annotations: [], logprobs: [] };
}

/** The `response` object; without a result it is the in-progress snapshot of the stream's first events. */
function responseObject(meta: ResponseMeta, result?: FinishedGeneration) {
  const status: Status = result === undefined ? 'in_progress' : result.finishReason === 'length' ? 'incomplete' : 'completed';
  const { request } = meta;
  return {
    id: meta.id,
    object: 'response',
    created_at: meta.createdAt,
    status,
    error: null,
    incomplete_details: status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    instructions: request.instructions ?? null,
    max_output_tokens: request.max_output_tokens ?? null,
    model: meta.model,
    output: result === undefined ? [] : [outputMessage(meta, status, result.text)],
    parallel_tool_calls: false,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: false,
    temperature: request.temperature ?? null,
    text: { format: request.text?.format ?? { type: 'text' } },
    tool_choice: 'none',
    tools: [],
    top_p: request.top_p ?? null,
    truncation: 'disabled',
    usage:
      result === undefined
        ? null
        : {
            input_tokens: result.promptTokens,
            input_tokens_details: { cached_tokens: 0 },
            output_tokens: result.tokens.length,
            output_tokens_details: { reasoning_tokens: 0 },
            total_tokens: result.promptTokens + result.tokens.length,
          },
    metadata: {},
    ...sharedllmField(result?.attribution),
  };
}

/** The stream's next sequence_number, shared by the events and a late error event. */
interface Sequence {
  next: number;
}

interface ResponseEvent {
  type: string;
  sequence_number: number;
}

async function* responseEvents(events: AsyncIterable<GenerationEvent>, meta: ResponseMeta, sequence: Sequence): AsyncGenerator<ResponseEvent> {
  const event = <T extends { type: string }>(e: T): T & ResponseEvent => ({ ...e, sequence_number: sequence.next++ });
  const where = { item_id: meta.messageId, output_index: 0, content_index: 0 };
  let started = false;
  for await (const e of events) {
    // The opening events wait for the model's first event, so an early failure is still an HTTP error status.
    if (!started) {
      started = true;
      yield event({ type: 'response.created', response: responseObject(meta) });
      yield event({ type: 'response.in_progress', response: responseObject(meta) });
      yield event({ type: 'response.output_item.added', output_index: 0, item: outputMessage(meta, 'in_progress', undefined) });
      yield event({ type: 'response.content_part.added', ...where, part: outputText('') });
    }
    if (e.kind === 'text') {
      if (e.text !== '' || e.attribution !== undefined) yield event({ type: 'response.output_text.delta', ...where, delta: e.text, logprobs: [], ...sharedllmField(e.attribution) });
      continue;
    }
    recordTrails(meta.engine, meta.id, [e.result]);
    const final = responseObject(meta, e.result);
    const status = final.status;
    yield event({ type: 'response.output_text.done', ...where, text: e.result.text, logprobs: [] });
    yield event({ type: 'response.content_part.done', ...where, part: outputText(e.result.text) });
    yield event({ type: 'response.output_item.done', output_index: 0, item: outputMessage(meta, status, e.result.text) });
    yield event({ type: status === 'completed' ? 'response.completed' : 'response.incomplete', response: final });
  }
}

const ErrorBody = z.object({ error: z.object({ message: z.string(), code: z.string().nullable(), param: z.string().nullable() }) });

/** `event: <type>` and `data: <json>` per event, no [DONE]; a late failure is an `error` event. */
function responsesSse(sequence: Sequence): SseStyle {
  const frame = (e: unknown) => {
    const type = z.object({ type: z.string() }).safeParse(e);
    return `event: ${type.success ? type.data.type : 'message'}\ndata: ${JSON.stringify(e)}\n\n`;
  };
  return {
    frame,
    end: '',
    error: (body) => {
      const parsed = ErrorBody.safeParse(body);
      const error = parsed.success ? parsed.data.error : { message: 'the response failed', code: null, param: null };
      return frame({ type: 'error', code: error.code ?? 'server_error', message: error.message, param: error.param, sequence_number: sequence.next++ });
    },
  };
}
