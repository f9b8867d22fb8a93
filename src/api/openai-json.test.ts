// JSON mode (`response_format: { type: 'json_object' }`) through the official `openai` client: with a
// random-weight model, sampling or greedy, short budgets or long, streaming or not, every choice parses as a
// JSON object.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import type { ApiServer } from './server.ts';
import { type TestModel, loadTestModel, startTestServer } from './testing.ts';

let model: TestModel;
let server: ApiServer;
let client: OpenAI;

before(async () => {
  model = await loadTestModel();
  server = await startTestServer(model);
  client = new OpenAI({ apiKey: 'unused', baseURL: `${server.url}/v1`, maxRetries: 0 });
});

after(async () => {
  await server?.close();
  await model?.dispose();
});

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

  test('no room for an object is a 400; json_schema is refused for now', async () => {
    const base = { model: model.modelId, messages: [{ role: 'user' as const, content: 'hi' }] };
    await assert.rejects(client.chat.completions.create({ ...base, response_format: { type: 'json_object' }, max_tokens: 1 }), OpenAI.BadRequestError);
    await assert.rejects(
      client.chat.completions.create({ ...base, response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object' } } } }),
      OpenAI.BadRequestError,
    );
  });
});
