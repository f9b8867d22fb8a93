// JSON mode and structured outputs (`response_format` json_object and json_schema) through the official
// `openai` client: with a random-weight model, sampling or greedy, short budgets or long, streaming or not,
// every choice parses (as an object; as a value of the schema).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { z } from 'zod';
import type { ApiServer } from './server.ts';
import { type TestModel, openAiFixture, startTestServer } from './testing.ts';

let model: TestModel;
let server: ApiServer;
let client: OpenAI;

openAiFixture((f) => ({ model, server, client } = f));

function assertObject(text: string | null | undefined): void {
  const value: unknown = JSON.parse(text ?? '');
  assert.ok(typeof value === 'object' && value !== null && !Array.isArray(value), `a JSON object: ${text}`);
}

describe('JSON mode', () => {
  test('every choice is a JSON object, whatever the budget and temperature', async () => {
    for (const [maxTokens, temperature] of [
      [2, 1],
      [7, 1.5],
      [24, 0.8],
      [24, 0],
    ] as const) {
      const res = await client.chat.completions.create({
        model: model.modelId,
        messages: [{ role: 'user', content: 'Describe a cat as JSON.' }],
        response_format: { type: 'json_object' },
        max_tokens: maxTokens,
        temperature,
        seed: maxTokens,
        n: 3,
      });
      for (const choice of res.choices) assertObject(choice.message.content);
      console.log(`max_tokens ${maxTokens}, temperature ${temperature}: ${JSON.stringify(res.choices.map((c) => c.message.content))}`);
    }
    assert.equal(model.forward.open.size, 0);
  });

  test('streaming: the deltas add up to a JSON object', async () => {
    let text = '';
    const stream = await client.chat.completions.create({
      model: model.modelId,
      messages: [{ role: 'user', content: 'Give me JSON.' }],
      response_format: { type: 'json_object' },
      max_tokens: 16,
      temperature: 1,
      seed: 3,
      stream: true,
    });
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    assertObject(text);
  });

  test('json_schema: every choice parses and validates against the schema', async () => {
    const schema = {
      type: 'object',
      properties: {
        name: { type: 'string' },
        legs: { type: 'integer' },
        colour: { enum: ['black', 'white', 'ginger'] },
        toys: { type: 'array', items: { type: 'string' } },
        owner: { anyOf: [{ type: 'null' }, { type: 'object', properties: { name: { type: 'string' }, age: { type: 'number' } } }] },
      },
      required: ['name', 'legs', 'colour', 'toys', 'owner'],
      additionalProperties: false,
    };
    const Cat = z.strictObject({
      name: z.string(),
      legs: z.number().int(),
      colour: z.enum(['black', 'white', 'ginger']),
      toys: z.array(z.string()),
      owner: z.strictObject({ name: z.string(), age: z.number() }).nullable(),
    });
    for (const [maxTokens, temperature] of [
      [64, 1.2],
      [120, 0.8],
      [120, 0],
    ] as const) {
      const res = await client.chat.completions.create({
        model: model.modelId,
        messages: [{ role: 'user', content: 'Describe a cat.' }],
        response_format: { type: 'json_schema', json_schema: { name: 'cat', schema, strict: true } },
        max_tokens: maxTokens,
        temperature,
        seed: maxTokens,
        n: 2,
      });
      console.log(`json_schema, max_tokens ${maxTokens}, temperature ${temperature}: ${JSON.stringify(res.choices.map((c) => c.message.content))}`);
      for (const choice of res.choices) {
        const parsed = Cat.safeParse(JSON.parse(choice.message.content ?? ''));
        assert.ok(parsed.success, `${choice.message.content}: ${parsed.error?.message}`);
      }
    }
  });

  test('no room for the value, or a schema it cannot enforce, is a 400', async () => {
    const base = { model: model.modelId, messages: [{ role: 'user' as const, content: 'hi' }] };
    await assert.rejects(client.chat.completions.create({ ...base, response_format: { type: 'json_object' }, max_tokens: 1 }), OpenAI.BadRequestError);
    const format = (schema: Record<string, unknown>) => ({ type: 'json_schema' as const, json_schema: { name: 'x', schema } });
    await assert.rejects(client.chat.completions.create({ ...base, response_format: format({ type: 'object', properties: { a: { type: 'string' } } }), max_tokens: 5 }), /shortest value/);
    await assert.rejects(client.chat.completions.create({ ...base, response_format: format({ type: 'string', pattern: 'a+' }) }), (error: unknown) => {
      assert.ok(error instanceof OpenAI.BadRequestError);
      assert.match(error.message, /pattern/);
      assert.equal(error.param, 'response_format.json_schema.schema');
      return true;
    });
  });
});
