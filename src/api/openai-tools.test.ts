// Tool calling through the official `openai` client, LangChain's bindTools and the AI SDK's tools: the
// model's answer is sampled under the tools' grammar, so a call always names a tool and its arguments
// validate against the tool's parameters.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createOpenAI } from '@ai-sdk/openai';
import { ChatOpenAI } from '@langchain/openai';
import { generateText, tool } from 'ai';
import OpenAI from 'openai';
import { z } from 'zod';
import type { ApiServer } from './server.ts';
import { type TestModel, loadTestModel, startTestServer } from './testing.ts';

let model: TestModel;
let server: ApiServer;
let client: OpenAI;

before(async () => {
  model = await loadTestModel(512);
  server = await startTestServer(model);
  client = new OpenAI({ apiKey: 'unused', baseURL: `${server.url}/v1`, maxRetries: 0 });
});

after(async () => {
  await server?.close();
  await model?.dispose();
});

const weather = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { enum: ['celsius', 'fahrenheit'] } }, required: ['city', 'unit'], additionalProperties: false },
  },
};
const Weather = z.strictObject({ city: z.string(), unit: z.enum(['celsius', 'fahrenheit']) });

describe('tools', () => {
  test("tool_choice 'required': a call of the tool with valid arguments, streaming or not", async () => {
    const request = { model: model.modelId, messages: [{ role: 'user' as const, content: 'Weather in Paris?' }], tools: [weather], tool_choice: 'required' as const, max_tokens: 120, temperature: 1, seed: 2 };
    const res = await client.chat.completions.create(request);
    const choice = res.choices[0]!;
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.content, null);
    const call = choice.message.tool_calls?.[0];
    assert.ok(call?.type === 'function');
    assert.match(call.id, /^call_/);
    assert.equal(call.function.name, 'get_weather');
    assert.ok(Weather.safeParse(JSON.parse(call.function.arguments)).success, call.function.arguments);

    let args = '';
    let name = '';
    let finish: string | null = null;
    for await (const chunk of await client.chat.completions.create({ ...request, stream: true })) {
      const delta = chunk.choices[0]?.delta;
      for (const c of delta?.tool_calls ?? []) {
        name += c.function?.name ?? '';
        args += c.function?.arguments ?? '';
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(name, 'get_weather');
    assert.equal(args, call.function.arguments, 'the same seed gives the same call');
    assert.equal(finish, 'tool_calls');
  });

  test("'auto' answers or calls; a tool result goes back into the conversation", async () => {
    const res = await client.chat.completions.create({ model: model.modelId, messages: [{ role: 'user', content: 'Hi' }], tools: [weather], max_tokens: 120, temperature: 1, seed: 5, n: 2 });
    for (const choice of res.choices) {
      const call = choice.message.tool_calls?.[0];
      if (choice.finish_reason === 'tool_calls') assert.ok(call?.type === 'function' && Weather.safeParse(JSON.parse(call.function.arguments)).success);
      else assert.equal(typeof choice.message.content, 'string');
    }
    const followUp = await client.chat.completions.create({
      model: model.modelId,
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris","unit":"celsius"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: '21 degrees' },
      ],
      tools: [weather],
      tool_choice: 'none',
      max_tokens: 5,
      temperature: 0,
    });
    assert.equal(typeof followUp.choices[0]!.message.content, 'string');
    assert.equal(followUp.choices[0]!.message.tool_calls, undefined);
  });

  test('LangChain bindTools and the AI SDK tools get valid calls', async () => {
    const chat = new ChatOpenAI({ model: model.modelId, apiKey: 'unused', configuration: { baseURL: `${server.url}/v1` }, maxTokens: 120, temperature: 1, maxRetries: 0 });
    const message = await chat.bindTools([{ ...weather }], { tool_choice: 'required' }).invoke('Weather in Paris?');
    assert.equal(message.tool_calls?.[0]?.name, 'get_weather');
    assert.ok(Weather.safeParse(message.tool_calls?.[0]?.args).success);

    const openai = createOpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused' });
    const result = await generateText({
      model: openai.chat(model.modelId),
      prompt: 'Weather in Paris?',
      tools: { get_weather: tool({ description: 'The weather in a city', inputSchema: Weather }) },
      toolChoice: 'required',
      maxOutputTokens: 120,
      temperature: 1,
      maxRetries: 0,
    });
    assert.equal(result.toolCalls[0]?.toolName, 'get_weather');
    assert.ok(Weather.safeParse(result.toolCalls[0]?.input).success);
  });

  test('tool_choice naming an unknown tool, or tool_choice without tools, is a 400', async () => {
    const base = { model: model.modelId, messages: [{ role: 'user' as const, content: 'hi' }] };
    await assert.rejects(client.chat.completions.create({ ...base, tools: [weather], tool_choice: { type: 'function', function: { name: 'nope' } } }), OpenAI.BadRequestError);
    await assert.rejects(client.chat.completions.create({ ...base, tool_choice: 'required' }), OpenAI.BadRequestError);
  });
});
