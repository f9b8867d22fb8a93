/**
 * Tool calling for chat, in a generic format that works with any chat template (llama.cpp's "generic"
 * tool format): the tools are described in a system message, and the model's whole answer is one JSON
 * object, sampled under a grammar (src/model/sampler-schema.ts) so that it is always one of
 *   { "tool_call": { "name": <a tool's name>, "arguments": <that tool's parameters> } }
 *   { "response": "<text>" }                        (tool_choice 'auto' only)
 * A tool call becomes OpenAI's `message.tool_calls` (finish_reason 'tool_calls', content null); a response
 * becomes the message's content. Earlier turns go back into the prompt in the same format: an assistant's
 * tool_calls as its tool_call JSON, a `role: 'tool'` result as a user message naming the call it answers.
 *
 * tool_choice: 'none' (tools ignored), 'auto' (default), 'required', or { type: 'function', function: { name } }.
 * Models whose chat templates define their own tool markup still get this generic format.
 */
import { z } from 'zod';
import type { ChatMessage } from '../model/chat-template.ts';
import { SchemaError, compileSchema } from '../model/sampler-schema.ts';
import { invalidRequest } from './errors.ts';
import { responseId } from './generation.ts';

export const ToolSchema = z.object({
  type: z.literal('function', { error: "only tools of type 'function' are supported" }),
  function: z.object({
    name: z.string().min(1).max(64),
    description: z.string().nullish(),
    parameters: z.record(z.string(), z.unknown()).nullish(),
  }),
});
export type Tool = z.infer<typeof ToolSchema>;

export const ToolChoiceSchema = z.union([z.enum(['none', 'auto', 'required']), z.object({ type: z.literal('function'), function: z.object({ name: z.string() }) })], {
  error: "tool_choice must be 'none', 'auto', 'required' or { type: 'function', function: { name } }",
});
export type ToolChoice = z.infer<typeof ToolChoiceSchema>;

export const ToolCallSchema = z.object({
  id: z.string(),
  type: z.literal('function').optional(),
  function: z.object({ name: z.string(), arguments: z.string() }),
});
export type ToolCall = z.infer<typeof ToolCallSchema>;

/** What a request's tools make of the generation: the system text, the grammar, the tools that may be called. */
export interface ToolPlan {
  system: string;
  grammar: ReturnType<typeof compileSchema>;
}

/** The plan for a request, or undefined when no tool may be called (no tools, or tool_choice 'none'). */
export function toolPlan(tools: readonly Tool[] | null | undefined, choice: ToolChoice | null | undefined): ToolPlan | undefined {
  if (tools == null || tools.length === 0 || choice === 'none') return undefined;
  let callable = tools;
  if (typeof choice === 'object' && choice !== null) {
    callable = tools.filter((t) => t.function.name === choice.function.name);
    if (callable.length === 0) throw invalidRequest(`tool_choice names '${choice.function.name}', which is not among the tools`, 'tool_choice', 'name one of the tools sent');
  }
  const mayAnswer = choice == null || choice === 'auto';
  const calls = callable.map((t) => ({
    type: 'object',
    properties: { name: { const: t.function.name }, arguments: t.function.parameters ?? { type: 'object', properties: {} } },
  }));
  const answer = {
    type: 'object',
    properties: { tool_call: calls.length === 1 ? calls[0] : { anyOf: calls } },
  };
  const schema = mayAnswer ? { anyOf: [answer, { type: 'object', properties: { response: { type: 'string' } } }] } : answer;
  let grammar: ReturnType<typeof compileSchema>;
  try {
    grammar = compileSchema(schema);
  } catch (error) {
    if (error instanceof SchemaError) throw invalidRequest(`a tool's parameters: ${error.message}`, 'tools', error.hint);
    throw error;
  }
  const described = callable.map((t) => ({ name: t.function.name, description: t.function.description ?? '', parameters: t.function.parameters ?? {} }));
  const system = [
    'You can call these tools:',
    JSON.stringify(described),
    mayAnswer
      ? 'Answer with one JSON object: {"tool_call": {"name": "<tool name>", "arguments": {...}}} to call a tool, or {"response": "<your answer>"} to answer directly.'
      : 'Answer with one JSON object that calls a tool: {"tool_call": {"name": "<tool name>", "arguments": {...}}}.',
  ].join('\n');
  return { system, grammar };
}

/** The conversation with the tools' system text in front (merged into a first system message). */
export function withToolSystem(messages: ChatMessage[], plan: ToolPlan): ChatMessage[] {
  const first = messages[0];
  if (first?.role === 'system') return [{ role: 'system', content: `${first.content}\n\n${plan.system}` }, ...messages.slice(1)];
  return [{ role: 'system', content: plan.system }, ...messages];
}

/** An assistant turn that called tools, as the model would have written it. */
export function toolCallsText(calls: readonly ToolCall[]): string {
  return calls.map((c) => JSON.stringify({ tool_call: { name: c.function.name, arguments: parseArguments(c.function.arguments) } })).join('\n');
}

/** A tool's result, as a user turn naming the call it answers. */
export function toolResultText(toolCallId: string | null | undefined, content: string): string {
  return `Result of tool call ${toolCallId ?? ''}: ${content}`;
}

function parseArguments(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

const AnswerSchema = z.union([z.object({ tool_call: z.object({ name: z.string(), arguments: z.unknown() }) }), z.object({ response: z.string() })]);

/** The model's answer as OpenAI's message fields; text that is not the format (cut short by a stop string) stays text. */
export function readToolAnswer(text: string): { content: string | null; toolCalls?: ToolCall[] } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { content: text };
  }
  const answer = AnswerSchema.safeParse(value);
  if (!answer.success) return { content: text };
  if ('response' in answer.data) return { content: answer.data.response };
  const call = answer.data.tool_call;
  return { content: null, toolCalls: [{ id: responseId('call', '_'), type: 'function', function: { name: call.name, arguments: JSON.stringify(call.arguments ?? {}) } }] };
}
