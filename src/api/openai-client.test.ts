// The API through the official `openai` client (v6), against a real server over a real small model.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { encodeChat } from '../model/chat-prompt.ts';
import type { ApiServer } from './server.ts';
import { type TestModel, openAiFixture, startTestServer } from './testing.ts';

let model: TestModel;
let server: ApiServer;
let client: OpenAI;

openAiFixture((f) => ({ model, server, client } = f));

/** What the engine itself generates greedily for a chat (the reference the API must match). */
async function greedyChat(content: string, maxTokens: number) {
  const prompt = encodeChat(model.tokenizer, [{ role: 'user', content }], true);
  const result = await model.generator.complete(prompt, { temperature: 0, maxTokens });
  return { ...result, promptTokens: prompt.length };
}

async function collectStream(stream: AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>) {
  let text = '';
  let finish: string | null = null;
  let usage: OpenAI.CompletionUsage | null | undefined;
  let roleSeen = false;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    const choice = chunk.choices[0];
    if (choice === undefined) continue;
    if (choice.delta.role === 'assistant') roleSeen = true;
    text += choice.delta.content ?? '';
    if (choice.finish_reason) finish = choice.finish_reason;
  }
  return { text, finish, usage, roleSeen };
}

describe('openai client', () => {
  test('lists the model', async () => {
    const page = await client.models.list();
    assert.deepEqual(
      page.data.map((m) => m.id),
      [model.modelId],
    );
    const card = await client.models.retrieve(model.modelId);
    assert.equal(card.object, 'model');
    await assert.rejects(client.models.retrieve('no-such-model'), OpenAI.NotFoundError);
  });

  test('chat, non-streaming: greedy text and usage equal the engine and tokenizer', async () => {
    const reference = await greedyChat('Hello there', 8);
    const res = await client.chat.completions.create({
      model: model.modelId,
      messages: [{ role: 'user', content: 'Hello there' }],
      temperature: 0,
      seed: 7,
      max_tokens: 8,
    });
    assert.equal(res.object, 'chat.completion');
    assert.match(res.id, /^chatcmpl-/);
    const choice = res.choices[0]!;
    assert.equal(choice.message.role, 'assistant');
    assert.equal(choice.message.content, reference.text);
    assert.equal(choice.finish_reason, reference.finishReason);
    assert.deepEqual(res.usage, {
      prompt_tokens: reference.promptTokens,
      completion_tokens: reference.tokens.length,
      total_tokens: reference.promptTokens + reference.tokens.length,
    });
  });

  test('chat, streaming: the deltas add up to the non-streaming text; usage chunk when asked', async () => {
    const request = {
      model: model.modelId,
      messages: [
        { role: 'system' as const, content: 'You are terse.' },
        { role: 'user' as const, content: [{ type: 'text' as const, text: 'Tell me a story' }] },
      ],
      temperature: 0,
      seed: 3,
      max_completion_tokens: 10,
    };
    const whole = await client.chat.completions.create(request);
    const stream = await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
    const streamed = await collectStream(stream);
    assert.ok(streamed.roleSeen, 'first chunk carries role: assistant');
    assert.equal(streamed.text, whole.choices[0]!.message.content);
    assert.equal(streamed.finish, whole.choices[0]!.finish_reason);
    assert.deepEqual(streamed.usage, whole.usage);
  });

  test('completions: max_tokens gives finish_reason length and exactly max_tokens tokens', async () => {
    const prompt = 'The quick brown fox';
    const promptIds = model.tokenizer.encode(prompt, { addBos: model.tokenizer.addBosDefault });
    const reference = await model.generator.complete(promptIds, { temperature: 0, maxTokens: 6 });
    assert.equal(reference.finishReason, 'length', 'the test model should not stop within 6 tokens');
    const res = await client.completions.create({ model: model.modelId, prompt, max_tokens: 6, temperature: 0 });
    assert.equal(res.object, 'text_completion');
    assert.equal(res.choices[0]!.text, reference.text);
    assert.equal(res.choices[0]!.finish_reason, 'length');
    assert.equal(res.usage?.completion_tokens, 6);
    assert.equal(res.usage?.prompt_tokens, promptIds.length);
    assert.equal(res.usage?.total_tokens, promptIds.length + 6);

    const echoed = await client.completions.create({ model: model.modelId, prompt, max_tokens: 6, temperature: 0, echo: true });
    assert.equal(echoed.choices[0]!.text, prompt + reference.text);

    const streamed = await client.completions.create({ model: model.modelId, prompt: promptIds, max_tokens: 6, temperature: 0, stream: true });
    let text = '';
    for await (const chunk of streamed) text += chunk.choices[0]?.text ?? '';
    assert.equal(text, reference.text);
  });

  test('stop sequences are honoured, streaming or not, and not included in the text', async () => {
    const full = (await greedyChat('What is 2+2?', 12)).text;
    assert.ok(full.length >= 6, `need a longer reference text, got ${JSON.stringify(full)}`);
    const at = Math.floor(full.length / 2);
    const stop = full.slice(at, at + 2);
    const expected = full.slice(0, full.indexOf(stop));
    const request = { model: model.modelId, messages: [{ role: 'user' as const, content: 'What is 2+2?' }], temperature: 0, max_tokens: 12 };
    const res = await client.chat.completions.create({ ...request, stop });
    assert.equal(res.choices[0]!.message.content, expected);
    assert.equal(res.choices[0]!.finish_reason, 'stop');
    const streamed = await collectStream(await client.chat.completions.create({ ...request, stop: ['\u0000never', stop], stream: true }));
    assert.equal(streamed.text, expected);
    assert.equal(streamed.finish, 'stop');
  });

  test('sampling with a seed is reproducible', async () => {
    const request = { model: model.modelId, prompt: 'Once upon a time', max_tokens: 8, temperature: 1.2, top_p: 0.9, seed: 42, presence_penalty: 0.5, frequency_penalty: 0.5 };
    const a = await client.completions.create(request);
    const b = await client.completions.create(request);
    assert.equal(a.choices[0]!.text, b.choices[0]!.text);
  });

  test('4 concurrent streaming chats each produce their own greedy text', async () => {
    const prompts = ['abc', 'Tell me a story', 'The quick brown fox', 'What is 2+2?'];
    const references: string[] = [];
    for (const p of prompts) references.push((await greedyChat(p, 8)).text);
    const results = await Promise.all(
      prompts.map(async (content) =>
        collectStream(await client.chat.completions.create({ model: model.modelId, messages: [{ role: 'user', content }], temperature: 0, max_tokens: 8, stream: true })),
      ),
    );
    assert.deepEqual(
      results.map((r) => r.text),
      references,
    );
    assert.equal(model.forward.open.size, 0, 'every sequence is closed');
  });

  test('an API key is required when set', async () => {
    const guarded = await startTestServer(model, { apiKey: 'sekret' });
    try {
      const wrong = new OpenAI({ apiKey: 'wrong', baseURL: `${guarded.url}/v1`, maxRetries: 0 });
      await assert.rejects(wrong.models.list(), (error: unknown) => {
        assert.ok(error instanceof OpenAI.AuthenticationError);
        assert.equal(error.status, 401);
        assert.equal(error.code, 'invalid_api_key');
        return true;
      });
      const right = new OpenAI({ apiKey: 'sekret', baseURL: `${guarded.url}/v1`, maxRetries: 0 });
      assert.equal((await right.models.list()).data.length, 1);
      const health = await fetch(`${guarded.url}/health`);
      assert.equal(health.status, 200, '/health needs no key');
    } finally {
      await guarded.close();
    }
  });

  test('bad requests raise BadRequestError with a message that says what is wrong', async () => {
    const base = { model: model.modelId, messages: [{ role: 'user' as const, content: 'hi' }] };
    const expectBadRequest = async (body: object, message: RegExp, param?: string, code?: string) => {
      await assert.rejects(client.chat.completions.create(body as never), (error: unknown) => {
        assert.ok(error instanceof OpenAI.BadRequestError, `expected BadRequestError, got ${String(error)}`);
        assert.match(error.message, message);
        assert.equal(error.type, 'invalid_request_error');
        if (param !== undefined) assert.equal(error.param, param);
        if (code !== undefined) assert.equal(error.code, code);
        return true;
      });
    };
    await expectBadRequest({ ...base, n: 0 }, /n must be at least 1/, 'n');
    await expectBadRequest({ ...base, messages: [] }, /at least one message/, 'messages');
    await expectBadRequest({ ...base, max_tokens: -5 }, /max_tokens/, 'max_tokens');
    await expectBadRequest({ ...base, temperature: 'hot' }, /temperature/, 'temperature');
    await expectBadRequest({ ...base, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }, /text/, 'messages[0].content[0].type');
    await expectBadRequest({ ...base, messages: [{ role: 'robot', content: 'x' }] }, /role must be/, 'messages[0].role');
    await expectBadRequest({ ...base, tools: [{ type: 'retrieval' }] }, /function/, 'tools[0].type');
    const long = 'hello '.repeat(400);
    await expectBadRequest({ ...base, messages: [{ role: 'user', content: long }] }, /context holds 256 tokens.*--ctx-size/, 'messages', 'context_length_exceeded');
    await assert.rejects(client.chat.completions.create({ ...base, model: 'gpt-4o' }), OpenAI.NotFoundError);
    assert.equal(model.forward.open.size, 0);
  });
});
