// POST /v1/responses through the official `openai` client: create, stream (the raw events and the
// client's ResponseStream helper), instructions and message lists, the refusals.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { encodeChat } from '../model/chat-prompt.ts';
import type { ChatMessage } from '../model/chat-template.ts';
import type { ApiServer } from './server.ts';
import { type TestModel, openAiFixture, startTestServer } from './testing.ts';

let model: TestModel;
let server: ApiServer;
let client: OpenAI;

openAiFixture((f) => ({ model, server, client } = f));

async function greedy(messages: ChatMessage[], maxTokens: number) {
  const prompt = encodeChat(model.tokenizer, messages, true);
  return { ...(await model.generator.complete(prompt, { temperature: 0, maxTokens })), promptTokens: prompt.length };
}

describe('responses', () => {
  test('create: text in, the greedy text out, usage, incomplete at max_output_tokens', async () => {
    const reference = await greedy([{ role: 'user', content: 'Hello there' }], 8);
    assert.equal(reference.finishReason, 'length', 'the test model should not stop within 8 tokens');
    const res = await client.responses.create({ model: model.modelId, input: 'Hello there', temperature: 0, max_output_tokens: 8 });
    assert.equal(res.object, 'response');
    assert.match(res.id, /^resp_/);
    assert.equal(res.output_text, reference.text);
    assert.equal(res.status, 'incomplete');
    assert.deepEqual(res.incomplete_details, { reason: 'max_output_tokens' });
    const message = res.output[0];
    assert.ok(message?.type === 'message');
    assert.equal(message.role, 'assistant');
    assert.deepEqual(message.content, [{ type: 'output_text', text: reference.text, annotations: [], logprobs: [] }]);
    assert.equal(res.usage?.input_tokens, reference.promptTokens);
    assert.equal(res.usage?.output_tokens, 8);
    assert.equal(res.usage?.total_tokens, reference.promptTokens + 8);
    assert.equal(model.forward.open.size, 0);
  });

  test('instructions and a message list go through the chat template', async () => {
    const reference = await greedy(
      [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello.' },
        { role: 'user', content: 'Tell me a story' },
      ],
      6,
    );
    const res = await client.responses.create({
      model: model.modelId,
      instructions: 'You are terse.',
      input: [
        { role: 'user', content: 'Hi' },
        { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Hello.', annotations: [] }] } as never,
        { role: 'user', content: [{ type: 'input_text', text: 'Tell me a story' }] },
      ],
      temperature: 0,
      max_output_tokens: 6,
    });
    assert.equal(res.output_text, reference.text);
    assert.equal(res.instructions, 'You are terse.');
  });

  test('streaming: the Responses event sequence, deltas adding up to the text', async () => {
    const request = { model: model.modelId, input: 'What is 2+2?', temperature: 0, max_output_tokens: 6 };
    const whole = await client.responses.create(request);
    const types: string[] = [];
    const numbers: number[] = [];
    let text = '';
    let completed: OpenAI.Responses.Response | undefined;
    for await (const event of await client.responses.create({ ...request, stream: true })) {
      types.push(event.type);
      numbers.push(event.sequence_number);
      if (event.type === 'response.output_text.delta') text += event.delta;
      if (event.type === 'response.completed' || event.type === 'response.incomplete') completed = event.response;
    }
    const deltas = types.filter((t) => t === 'response.output_text.delta').length;
    assert.ok(deltas >= 1);
    const last = whole.status === 'completed' ? 'response.completed' : 'response.incomplete';
    assert.deepEqual(types, [
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      ...Array<string>(deltas).fill('response.output_text.delta'),
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      last,
    ]);
    assert.deepEqual(
      numbers,
      types.map((_, i) => i),
    );
    assert.equal(text, whole.output_text);
    assert.equal(completed?.usage?.output_tokens, whole.usage?.output_tokens);
  });

  test("the client's stream helper: text deltas and the final response", async () => {
    const reference = await greedy([{ role: 'user', content: 'abc' }], 5);
    const stream = client.responses.stream({ model: model.modelId, input: 'abc', temperature: 0, max_output_tokens: 5 });
    let text = '';
    stream.on('response.output_text.delta', (event) => {
      text += event.delta;
    });
    const final = await stream.finalResponse();
    assert.equal(text, reference.text);
    // (the helper's final response has no output_text convenience field, as with OpenAI itself)
    const message = final.output[0];
    assert.ok(message?.type === 'message' && message.content[0]?.type === 'output_text');
    assert.equal(message.content[0].text, reference.text);
  });

  test('text.format json_schema: the output validates', async () => {
    const res = await client.responses.create({
      model: model.modelId,
      input: 'A point?',
      max_output_tokens: 40,
      temperature: 1,
      text: { format: { type: 'json_schema', name: 'point', strict: true, schema: { type: 'object', properties: { x: { type: 'number' }, y: { type: 'number' } }, required: ['x', 'y'], additionalProperties: false } } },
    });
    const point: unknown = JSON.parse(res.output_text);
    assert.ok(typeof point === 'object' && point !== null);
    assert.deepEqual(Object.keys(point), ['x', 'y']);
    assert.ok(Object.values(point).every((v) => typeof v === 'number'));
    assert.equal(res.text?.format?.type, 'json_schema');
  });

  test('what it cannot do is a 400 that says so', async () => {
    const base = { model: model.modelId, input: 'hi' };
    const rejects = async (body: object, message: RegExp) => {
      await assert.rejects(client.responses.create(body as never), (error: unknown) => {
        assert.ok(error instanceof OpenAI.BadRequestError, String(error));
        assert.match(error.message, message);
        return true;
      });
    };
    await rejects({ ...base, previous_response_id: 'resp_1' }, /stores no responses/);
    await rejects({ ...base, tools: [{ type: 'function', name: 'f', parameters: {} }] }, /tools are not supported/);
    await rejects({ ...base, text: { format: { type: 'grammar' } } }, /grammar/);
    await rejects({ ...base, input: [{ type: 'function_call_output', call_id: 'x', output: 'y' }] }, /message/);
    await assert.rejects(client.responses.create({ ...base, model: 'gpt-4o' }), OpenAI.NotFoundError);
  });
});
