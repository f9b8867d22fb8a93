// The API through the client libraries people use besides `openai`: LangChain (@langchain/openai) and the
// AI SDK (ai + @ai-sdk/openai), whose OpenAI providers default to the Responses API. Greedy text must equal
// what the engine generates by itself.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createOpenAI } from '@ai-sdk/openai';
import { ChatOpenAI, OpenAIEmbeddings } from '@langchain/openai';
import { embedMany, generateObject, generateText, streamText } from 'ai';
import { z } from 'zod';
import { encodeChat } from '../model/chat-prompt.ts';
import type { ApiServer } from './server.ts';
import { type TestModel, loadTestModel, startTestServer } from './testing.ts';

let model: TestModel;
let server: ApiServer;

before(async () => {
  model = await loadTestModel();
  server = await startTestServer(model);
});

after(async () => {
  await server?.close();
  await model?.dispose();
});

async function greedy(content: string, maxTokens: number): Promise<string> {
  return (await model.generator.complete(encodeChat(model.tokenizer, [{ role: 'user', content }], true), { temperature: 0, maxTokens })).text;
}

/** How many 200s GET /metrics counts for a route: proves which endpoint a library used. */
async function served(route: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`sharedllm_http_requests_total{route="${route}",status="200"} `));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

const langchain = (options: ConstructorParameters<typeof ChatOpenAI>[0] = {}) =>
  new ChatOpenAI({ model: model.modelId, apiKey: 'unused', configuration: { baseURL: `${server.url}/v1` }, temperature: 0, maxTokens: 6, maxRetries: 0, ...options });

describe('LangChain', () => {
  test('chat completions: invoke, stream, batch; logprobs in the response metadata', async () => {
    const reference = await greedy('Hello there', 6);
    const chat = langchain();
    assert.equal((await chat.invoke('Hello there')).content, reference);
    let streamed = '';
    for await (const chunk of await chat.stream('Hello there')) streamed += String(chunk.content);
    assert.equal(streamed, reference);
    const batch = await chat.batch(['Hello there', 'abc']);
    assert.deepEqual(
      batch.map((m) => m.content),
      [reference, await greedy('abc', 6)],
    );
    const withLogprobs = await langchain({ logprobs: true, topLogprobs: 2 }).invoke('Hello there');
    const content = (withLogprobs.response_metadata.logprobs as { content: { token: string; top_logprobs: unknown[] }[] }).content;
    assert.ok(content.length >= 1 && content.every((e) => e.top_logprobs.length === 2));
  });

  test('the Responses API: invoke and stream', async () => {
    const reference = await greedy('Tell me a story', 6);
    const chat = langchain({ useResponsesApi: true });
    const before = await served('POST /v1/responses');
    const message = await chat.invoke('Tell me a story');
    assert.equal(message.text, reference);
    let streamed = '';
    for await (const chunk of await chat.stream('Tell me a story')) streamed += chunk.text;
    assert.equal(streamed, reference);
    assert.equal((await served('POST /v1/responses')) - before, 2);
  });

  test('withStructuredOutput (json_schema): a value of the schema', async () => {
    const Cat = z.object({ name: z.string(), legs: z.number().int(), indoor: z.boolean() });
    const cat = await langchain({ maxTokens: 60, temperature: 1 }).withStructuredOutput(Cat, { method: 'jsonSchema', name: 'cat' }).invoke('Describe a cat');
    assert.ok(Cat.safeParse(cat).success, JSON.stringify(cat));
  });

  test('embeddings: embedQuery and embedDocuments', async () => {
    const embeddings = new OpenAIEmbeddings({ model: model.modelId, apiKey: 'unused', configuration: { baseURL: `${server.url}/v1` }, maxRetries: 0 });
    const [a, b] = await embeddings.embedDocuments(['The quick brown fox', 'Hello']);
    const query = await embeddings.embedQuery('The quick brown fox');
    assert.equal(query.length, model.part.h.nEmbd);
    assert.equal(a!.length, model.part.h.nEmbd);
    const dot = (x: number[], y: number[]) => x.reduce((s, v, i) => s + v * y[i]!, 0);
    assert.ok(Math.abs(dot(query, a!) - 1) < 1e-4, 'the same text gives the same unit vector');
    assert.ok(dot(query, b!) < 0.9999);
  });
});

describe('AI SDK', () => {
  const provider = () => createOpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused' });

  test('the default provider model (Responses API): generateText and streamText', async () => {
    const reference = await greedy('What is 2+2?', 6);
    const openai = provider();
    const before = await served('POST /v1/responses');
    const result = await generateText({ model: openai(model.modelId), prompt: 'What is 2+2?', temperature: 0, maxOutputTokens: 6, maxRetries: 0 });
    assert.equal(result.text, reference);
    assert.equal(result.usage.outputTokens, 6);
    const stream = streamText({ model: openai(model.modelId), prompt: 'What is 2+2?', temperature: 0, maxOutputTokens: 6, maxRetries: 0 });
    let streamed = '';
    for await (const part of stream.textStream) streamed += part;
    assert.equal(streamed, reference);
    assert.equal((await served('POST /v1/responses')) - before, 2);
  });

  test('generateObject: a value of the schema, through the Responses API and through chat', async () => {
    const Cat = z.object({ name: z.string(), legs: z.number().int(), indoor: z.boolean() });
    const openai = provider();
    for (const languageModel of [openai(model.modelId), openai.chat(model.modelId)]) {
      const { object } = await generateObject({ model: languageModel, schema: Cat, prompt: 'Describe a cat', maxOutputTokens: 60, temperature: 1, maxRetries: 0 });
      assert.ok(Cat.safeParse(object).success, JSON.stringify(object));
    }
  });

  test('chat completions and embeddings', async () => {
    const reference = await greedy('abc', 5);
    const openai = provider();
    const result = await generateText({ model: openai.chat(model.modelId), prompt: 'abc', temperature: 0, maxOutputTokens: 5, maxRetries: 0 });
    assert.equal(result.text, reference);
    const { embeddings } = await embedMany({ model: openai.embedding(model.modelId), values: ['one', 'two'], maxRetries: 0 });
    assert.equal(embeddings.length, 2);
    assert.equal(embeddings[0]!.length, model.part.h.nEmbd);
  });
});
