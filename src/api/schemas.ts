/**
 * Request bodies of the OpenAI API, validated at the edge with zod. Unknown fields are ignored (OpenAI adds
 * fields often; `user`, `metadata`, `store` ... mean nothing here). Fields we cannot honour are accepted
 * only in their neutral form and refused otherwise with a 400 that says so (see options.ts), never
 * silently ignored. Ranges are OpenAI's; `top_k`, `min_p` and `repeat_penalty` are llama.cpp's extensions.
 */
import { z } from 'zod';
import { MAX_CHOICES } from './choices.ts';
import { ApiError } from './errors.ts';
import { MAX_CHAT_TOP_LOGPROBS, MAX_COMPLETION_LOGPROBS } from './logprobs.ts';
import { ToolCallSchema, ToolChoiceSchema, ToolSchema } from './tools.ts';

/** OpenAI's cap on the tools of one request. */
const MAX_TOOLS = 128;

/**
 * Strings that name something (a model, a response format) are short; a longer one is refused before it is
 * echoed into an error message.
 */
const MAX_NAME_CHARS = 256;
/** A field name shown in an error message (`param`) is cut to this many characters. */
const MAX_PARAM_KEY_CHARS = 64;

const shortName = (what: string) =>
  z.string({ error: `${what} must be a string` }).max(MAX_NAME_CHARS, { error: `${what} must be at most ${MAX_NAME_CHARS} characters` });

const number = (min: number, max: number) =>
  z.number().min(min, { error: `must be between ${min} and ${max}` }).max(max, { error: `must be between ${min} and ${max}` }).nullish();
const tokenCount = () => z.number().int({ error: 'must be a whole number of tokens' }).min(1, { error: 'must be at least 1 token' }).nullish();

/** Fields shared by /v1/chat/completions and /v1/completions. */
const SamplingFields = {
  model: z
    .string({ error: 'model is required (GET /v1/models lists them)' })
    .max(MAX_NAME_CHARS, { error: `model must be at most ${MAX_NAME_CHARS} characters (GET /v1/models lists them)` }),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  max_tokens: tokenCount(),
  temperature: number(0, 2),
  top_p: number(0, 1),
  top_k: z.number().int().min(0).nullish(),
  min_p: number(0, 1),
  repeat_penalty: z.number().gt(0).max(10).nullish(),
  frequency_penalty: number(-2, 2),
  presence_penalty: number(-2, 2),
  seed: z.number().int().nullish(),
  stop: z.union([z.string(), z.array(z.string()).max(16)], { error: 'stop must be a string or an array of at most 16 strings' }).nullish(),
  n: z
    .number()
    .int({ error: 'n must be a whole number of choices' })
    .min(1, { error: 'n must be at least 1' })
    .max(MAX_CHOICES, { error: `n must be at most ${MAX_CHOICES}` })
    .nullish(),
  logit_bias: z.record(z.string(), z.number()).nullish(),
};

const TextPartSchema = z.object({
  type: z.literal('text', { error: "only content parts of type 'text' are supported (this model reads text only)" }),
  text: z.string(),
});

export const ChatMessageSchema = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool'], {
    error: "role must be 'system', 'developer', 'user', 'assistant' or 'tool'",
  }),
  content: z.union([z.string(), z.array(TextPartSchema), z.null()], { error: 'content must be a string or an array of text parts' }).optional(),
  name: z.string().nullish(),
  /** An assistant turn's calls (tools.ts). */
  tool_calls: z.array(ToolCallSchema).max(MAX_TOOLS).nullish(),
  /** A tool turn: the call it answers. */
  tool_call_id: z.string().max(MAX_NAME_CHARS).nullish(),
});

export const ChatRequestSchema = z.object({
  ...SamplingFields,
  messages: z.array(ChatMessageSchema).min(1, { error: 'messages must hold at least one message' }),
  max_completion_tokens: tokenCount(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z
    .number()
    .int()
    .min(0, { error: `must be between 0 and ${MAX_CHAT_TOP_LOGPROBS}` })
    .max(MAX_CHAT_TOP_LOGPROBS, { error: `must be between 0 and ${MAX_CHAT_TOP_LOGPROBS}` })
    .nullish(),
  tools: z.array(ToolSchema).max(MAX_TOOLS, { error: `at most ${MAX_TOOLS} tools` }).nullish(),
  tool_choice: ToolChoiceSchema.nullish(),
  response_format: z.object({ type: shortName('response_format.type') }).loose().nullish(),
});
export type ChatRequest = z.infer<typeof ChatRequestSchema>;

const TokenIds = z.array(z.number().int().min(0));

export const CompletionRequestSchema = z.object({
  ...SamplingFields,
  prompt: z.union([z.string(), z.array(z.string()), TokenIds, z.array(TokenIds)], {
    error: 'prompt must be a string, an array of strings, an array of token ids or an array of such arrays',
  }),
  echo: z.boolean().nullish(),
  suffix: z.string().nullish(),
  best_of: z.number().int().nullish(),
  logprobs: z
    .number()
    .int()
    .min(0, { error: `must be between 0 and ${MAX_COMPLETION_LOGPROBS}` })
    .max(MAX_COMPLETION_LOGPROBS, { error: `must be between 0 and ${MAX_COMPLETION_LOGPROBS}` })
    .nullish(),
});
export type CompletionRequest = z.infer<typeof CompletionRequestSchema>;

/** Parses a body, or throws a 400 naming the first field at fault (OpenAI's `param`). */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const { path, message } = describeIssue(result.error.issues[0]);
  const param = path.length > 0 ? formatPath(path) : undefined;
  throw new ApiError(400, param === undefined ? `invalid request body: ${message}` : `invalid request body: ${param}: ${message}`, {
    ...(param === undefined ? {} : { param }),
  });
}

type Issue = z.core.$ZodIssue;

/**
 * The most helpful message for an issue. For a union that failed, the branch that got furthest (the one
 * whose problem is not "wrong type at the top") usually says what is wrong: a part of type 'image_url'
 * inside a content array is better reported as that than as "content must be a string or an array".
 */
function describeIssue(issue: Issue | undefined, prefix: readonly PropertyKey[] = []): { path: PropertyKey[]; message: string } {
  if (issue === undefined) return { path: [...prefix], message: 'invalid input' };
  const path = [...prefix, ...issue.path];
  if (issue.code === 'invalid_union') {
    const deeper = issue.errors.filter((branch) => branch.length > 0 && !(branch[0]!.code === 'invalid_type' && branch[0]!.path.length === 0));
    if (deeper.length === 1) return describeIssue(deeper[0]![0], path);
  }
  return { path, message: issue.message };
}

/** ['messages', 0, 'content'] -> 'messages[0].content'; a key the client made up is cut short. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') {
      out += `[${key}]`;
      continue;
    }
    const text = String(key);
    const shown = text.length > MAX_PARAM_KEY_CHARS ? `${text.slice(0, MAX_PARAM_KEY_CHARS)}...` : text;
    out += out === '' ? shown : `.${shown}`;
  }
  return out;
}
