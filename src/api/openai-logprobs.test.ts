// logprobs / top_logprobs and n > 1 through the official `openai` client, against a real small model.
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

/** log-softmax of the model's logits after `prompt`, computed here from a step of the model itself. */
async function referenceLogprobs(prompt: readonly number[]): Promise<Float64Array> {
  const seq = await model.forward.openSequence();
  try {
    const logits = (await model.forward.step([{ seq, tokens: Int32Array.from(prompt) }])).logits[0]![0]!;
    const max = Math.max(...logits);
    const logZ = max + Math.log(logits.reduce((sum, l) => sum + Math.exp(l - max), 0));
    return Float64Array.from(logits, (l) => l - logZ);
  } finally {
    await model.forward.closeSequence(seq);
  }
}

const decodeBytes = (bytes: number[]) => new TextDecoder().decode(Uint8Array.from(bytes));
const chatPrompt = (content: string) => encodeChat(model.tokenizer, [{ role: 'user', content }], true);

describe('logprobs', () => {
  test('chat: one entry per token, the model distribution at the first position, alternatives sorted', async () => {
    const res = await client.chat.completions.create({
      model: model.modelId,
      messages: [{ role: 'user', content: 'Hello there' }],
      temperature: 0,
      max_tokens: 6,
      logprobs: true,
      top_logprobs: 3,
    });
    const choice = res.choices[0]!;
    const content = choice.logprobs?.content;
    assert.ok(content, 'logprobs.content is set');
    assert.equal(choice.logprobs?.refusal, null);
    assert.equal(content.length, res.usage?.completion_tokens);
    assert.equal(decodeBytes(content.flatMap((e) => e.bytes ?? [])), choice.message.content, 'the bytes add up to the text');
    for (const entry of content) {
      assert.equal(entry.top_logprobs.length, 3);
      assert.ok(entry.logprob <= 0);
      // Greedy with no penalties picks the most likely token: it is the first alternative.
      assert.equal(entry.top_logprobs[0]!.token, entry.token);
      assert.equal(entry.top_logprobs[0]!.logprob, entry.logprob);
      for (let i = 1; i < 3; i++) assert.ok(entry.top_logprobs[i - 1]!.logprob >= entry.top_logprobs[i]!.logprob);
    }
    const reference = await referenceLogprobs(chatPrompt('Hello there'));
    const best = [...reference.keys()].sort((a, b) => reference[b]! - reference[a]! || a - b).slice(0, 3);
    const first = content[0]!;
    best.forEach((id, i) => {
      assert.deepEqual(first.top_logprobs[i]!.bytes, [...model.tokenizer.tokenBytes(id)]);
      assert.ok(Math.abs(first.top_logprobs[i]!.logprob - reference[id]!) < 1e-4, `alternative ${i}: ${first.top_logprobs[i]!.logprob} vs ${reference[id]}`);
    });
  });

  test('chat: logprobs are the model distribution, before temperature', async () => {
    const request = { model: model.modelId, messages: [{ role: 'user' as const, content: 'Tell me a story' }], max_tokens: 1, logprobs: true, top_logprobs: 5 };
    const cold = await client.chat.completions.create({ ...request, temperature: 0 });
    const hot = await client.chat.completions.create({ ...request, temperature: 1.7, seed: 5 });
    const alternatives = (r: OpenAI.Chat.Completions.ChatCompletion) => r.choices[0]!.logprobs!.content![0]!.top_logprobs;
    assert.deepEqual(alternatives(hot), alternatives(cold));
  });

  test('chat, streaming: each content chunk carries its token, and they equal the non-streaming ones', async () => {
    const request = { model: model.modelId, messages: [{ role: 'user' as const, content: 'What is 2+2?' }], temperature: 0, max_tokens: 6, logprobs: true, top_logprobs: 2 };
    const whole = await client.chat.completions.create(request);
    const entries: OpenAI.Chat.Completions.ChatCompletionTokenLogprob[] = [];
    for await (const chunk of await client.chat.completions.create({ ...request, stream: true })) {
      entries.push(...(chunk.choices[0]?.logprobs?.content ?? []));
    }
    assert.deepEqual(entries, whole.choices[0]!.logprobs!.content);
  });

  test('chat: logprobs stay null unless asked; top_logprobs without logprobs is a 400', async () => {
    const base = { model: model.modelId, messages: [{ role: 'user' as const, content: 'hi' }], max_tokens: 2 };
    assert.equal((await client.chat.completions.create(base)).choices[0]!.logprobs, null);
    await assert.rejects(client.chat.completions.create({ ...base, top_logprobs: 2 }), OpenAI.BadRequestError);
    await assert.rejects(client.chat.completions.create({ ...base, logprobs: true, top_logprobs: 21 }), OpenAI.BadRequestError);
  });

  test('completions: tokens, token_logprobs, top_logprobs and text_offset, streaming or not', async () => {
    const request = { model: model.modelId, prompt: 'The quick brown fox', max_tokens: 6, temperature: 0, logprobs: 2 };
    const res = await client.completions.create(request);
    const choice = res.choices[0]!;
    const lp = choice.logprobs!;
    assert.equal(lp.tokens!.length, 6);
    assert.equal(lp.token_logprobs!.length, 6);
    assert.equal(lp.top_logprobs!.length, 6);
    assert.equal(lp.text_offset!.length, 6);
    assert.equal(lp.text_offset![0], 0);
    for (let i = 1; i < 6; i++) assert.ok(lp.text_offset![i]! >= lp.text_offset![i - 1]!);
    for (const [i, top] of lp.top_logprobs!.entries()) {
      const values = Object.values(top);
      assert.ok(values.length >= 1 && values.length <= 2);
      assert.equal(Math.max(...values), lp.token_logprobs![i], 'greedy: the chosen token is the most likely');
    }
    const promptIds = model.tokenizer.encode('The quick brown fox', { addBos: model.tokenizer.addBosDefault });
    const reference = await referenceLogprobs(promptIds);
    const firstToken = reference.indexOf(Math.max(...reference));
    assert.ok(Math.abs(lp.token_logprobs![0]! - reference[firstToken]!) < 1e-4);

    const streamed = { tokens: [] as string[], token_logprobs: [] as number[], text_offset: [] as number[] };
    for await (const chunk of await client.completions.create({ ...request, stream: true })) {
      const part = chunk.choices[0]?.logprobs;
      if (!part) continue;
      streamed.tokens.push(...(part.tokens ?? []));
      streamed.token_logprobs.push(...(part.token_logprobs ?? []));
      streamed.text_offset.push(...(part.text_offset ?? []));
    }
    assert.deepEqual(streamed, { tokens: lp.tokens, token_logprobs: lp.token_logprobs, text_offset: lp.text_offset });
    await assert.rejects(client.completions.create({ ...request, logprobs: 6 }), OpenAI.BadRequestError);
  });
});

describe('n > 1', () => {
  test('chat: n independent choices, batched, the prompt counted once in the usage', async () => {
    const prompt = chatPrompt('Once upon a time');
    const stepsBefore = model.forward.steps;
    const res = await client.chat.completions.create({
      model: model.modelId,
      messages: [{ role: 'user', content: 'Once upon a time' }],
      temperature: 1.5,
      seed: 11,
      max_tokens: 5,
      n: 4,
      logprobs: true,
    });
    const steps = model.forward.steps - stepsBefore;
    assert.deepEqual(
      res.choices.map((c) => c.index),
      [0, 1, 2, 3],
    );
    const tokens = res.choices.map((c) => c.logprobs!.content!.length);
    assert.equal(res.usage?.prompt_tokens, prompt.length);
    assert.equal(res.usage?.completion_tokens, tokens.reduce((a, b) => a + b, 0));
    assert.ok(new Set(res.choices.map((c) => c.message.content)).size > 1, 'different seeds give different samples');
    // Run one after the other, 4 choices of 5 tokens would take 20 steps; merged, about 5.
    assert.ok(steps < 4 * 5, `the choices' steps were merged (${steps} steps)`);
    assert.equal(model.forward.open.size, 0);
  });

  test('greedy choices are all the greedy text; streaming interleaves choices by index', async () => {
    const request = { model: model.modelId, messages: [{ role: 'user' as const, content: 'abc' }], temperature: 0, max_tokens: 5, n: 3 };
    const reference = await model.generator.complete(chatPrompt('abc'), { temperature: 0, maxTokens: 5 });
    const res = await client.chat.completions.create(request);
    assert.deepEqual(
      res.choices.map((c) => c.message.content),
      [reference.text, reference.text, reference.text],
    );
    const texts = ['', '', ''];
    const finishes: (string | null)[] = [null, null, null];
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } })) {
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        texts[c.index] += c.delta.content ?? '';
        finishes[c.index] ??= c.finish_reason;
      }
    }
    assert.deepEqual(texts, [reference.text, reference.text, reference.text]);
    assert.deepEqual(finishes, [reference.finishReason, reference.finishReason, reference.finishReason]);
    assert.deepEqual(usage, res.usage);
    assert.equal(usage?.completion_tokens, 3 * reference.tokens.length);
  });

  test('completions: n choices with a seed are reproducible; n above the cap is a 400', async () => {
    const request = { model: model.modelId, prompt: 'Once upon a time', max_tokens: 4, temperature: 1.2, seed: 9, n: 2 };
    const a = await client.completions.create(request);
    const b = await client.completions.create(request);
    assert.deepEqual(
      a.choices.map((c) => c.text),
      b.choices.map((c) => c.text),
    );
    assert.equal(a.choices.length, 2);
    await assert.rejects(client.completions.create({ ...request, n: 1000 }), OpenAI.BadRequestError);
  });
});
