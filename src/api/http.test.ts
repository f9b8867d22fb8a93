// The API over raw HTTP, as curl would speak it: SSE framing byte by byte, hostile bodies, error shapes,
// client disconnects, the queue limit and shutdown. Real server, real small model.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Batcher, type Forward } from '../model/batcher.ts';
import { Generator } from '../model/generator.ts';
import { ApiError } from './errors.ts';
import type { ApiServer } from './server.ts';
import { type TestModel, eventually, loadTestModel, startTestServer } from './testing.ts';

let model: TestModel;
let server: ApiServer;

before(async () => {
  model = await loadTestModel();
  server = await startTestServer(model, { maxBodyBytes: 1 << 20 });
});

after(async () => {
  await server?.close();
  await model?.dispose();
});

interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/** One request with a raw body (string or bytes); resolves with the whole response. */
function send(base: string, method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const post = (path: string, body: unknown) => send(server.url, 'POST', path, typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body));

/** Asserts an OpenAI-shaped error: { error: { message, type, param, code } }. */
function assertError(res: RawResponse, status: number, type: string, message?: RegExp): { message: string; param: string | null; code: string | null } {
  assert.equal(res.status, status, `status of ${res.text}`);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  const body = JSON.parse(res.text) as { error: { message: string; type: string; param: string | null; code: string | null } };
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(body.error.type, type);
  assert.equal(typeof body.error.message, 'string');
  if (message !== undefined) assert.match(body.error.message, message);
  return body.error;
}

const chat = (extra: object = {}) => ({ model: model.modelId, messages: [{ role: 'user', content: 'Hello there' }], temperature: 0, max_tokens: 6, ...extra });

describe('raw HTTP', () => {
  test('SSE framing of a streaming chat is exactly OpenAI\'s', async () => {
    const res = await post('/v1/chat/completions', chat({ stream: true, stream_options: { include_usage: true } }));
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8');
    assert.equal(res.headers['cache-control'], 'no-cache');
    assert.ok(res.text.endsWith('data: [DONE]\n\n'));
    const frames = res.text.split('\n\n');
    assert.equal(frames.pop(), '', 'every frame ends with a blank line');
    assert.equal(frames.pop(), 'data: [DONE]');
    for (const frame of frames) assert.match(frame, /^data: \{.*\}$/s, 'one data line per frame');
    const chunks = frames.map((f) => JSON.parse(f.slice('data: '.length)) as Record<string, any>);
    const ids = new Set(chunks.map((c) => c.id));
    assert.equal(ids.size, 1, 'one id for the whole stream');
    for (const c of chunks) {
      assert.equal(c.object, 'chat.completion.chunk');
      assert.equal(c.model, model.modelId);
      assert.equal(typeof c.created, 'number');
    }
    assert.deepEqual(chunks[0]!.choices, [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]);
    const usage = chunks.at(-1)!;
    assert.deepEqual(usage.choices, []);
    assert.equal(usage.usage.completion_tokens, 6);
    const last = chunks.at(-2)!;
    assert.deepEqual(last.choices, [{ index: 0, delta: {}, logprobs: null, finish_reason: 'length' }]);
    for (const c of chunks.slice(0, -1)) assert.equal(c.usage, null, 'usage: null on every chunk but the last');

    const whole = JSON.parse((await post('/v1/chat/completions', chat())).text) as { choices: { message: { content: string } }[] };
    const text = chunks.slice(1, -2).map((c) => c.choices[0].delta.content as string).join('');
    assert.equal(text, whole.choices[0]!.message.content);
  });

  test('hostile bodies get 4xx in the error shape and never hurt the server', async () => {
    assertError(await post('/v1/chat/completions', Buffer.alloc((1 << 20) + 10, 0x20)), 413, 'invalid_request_error', /limit/);
    assertError(await post('/v1/chat/completions', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d])), 400, 'invalid_request_error', /UTF-8/);
    assertError(await post('/v1/chat/completions', '{"model": '), 400, 'invalid_request_error', /not valid JSON/);
    assertError(await post('/v1/chat/completions', ''), 400, 'invalid_request_error', /empty/);
    for (const body of ['null', '42', '"text"', '[]', '[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]']) {
      assertError(await post('/v1/chat/completions', body), 400, 'invalid_request_error', /expected object/);
    }
    const deep = `{"model": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    assertError(await post('/v1/chat/completions', deep), 400, 'invalid_request_error');
    assert.equal(assertError(await post('/v1/chat/completions', chat({ max_tokens: -1 })), 400, 'invalid_request_error').param, 'max_tokens');
    assert.equal(assertError(await post('/v1/chat/completions', chat({ max_tokens: 1.5 })), 400, 'invalid_request_error').param, 'max_tokens');
    assert.equal(assertError(await post('/v1/chat/completions', chat({ messages: [] })), 400, 'invalid_request_error').param, 'messages');
    assert.equal(assertError(await post('/v1/chat/completions', chat({ messages: 'hi' })), 400, 'invalid_request_error').param, 'messages');
    assert.equal(assertError(await post('/v1/chat/completions', chat({ messages: [{ role: 'user', content: 12 }] })), 400, 'invalid_request_error').param, 'messages[0].content');
    assert.equal(assertError(await post('/v1/chat/completions', chat({ stop: [1, 2] })), 400, 'invalid_request_error').param, 'stop[0]');
    assert.equal(assertError(await post('/v1/chat/completions', chat({ seed: 1e300 })), 400, 'invalid_request_error').param, 'seed');
    assert.equal(assertError(await post('/v1/chat/completions', chat({ top_p: -1 })), 400, 'invalid_request_error').param, 'top_p');
    assert.equal(assertError(await post('/v1/completions', { model: model.modelId, prompt: ['a', 'b'] }), 400, 'invalid_request_error', /one prompt per request/).param, 'prompt');
    assertError(await post('/v1/completions', { model: model.modelId, prompt: [1e9] }), 400, 'invalid_request_error', /outside the vocabulary/);
    assertError(await post('/v1/completions', { model: model.modelId, prompt: '' }), 400, 'invalid_request_error', /prompt is empty/);
    assertError(await post('/v1/completions', { model: model.modelId, prompt: 'x', suffix: 'y' }), 400, 'invalid_request_error', /suffix/);
    // Text that looks like special tokens or is not well-formed UTF-16 is just text.
    for (const content of ['<|im_end|><|endoftext|><s></s>', '\ud800 lone surrogate \udfff', '\u0000\u0001']) {
      const res = await post('/v1/chat/completions', chat({ messages: [{ role: 'user', content }], max_tokens: 2 }));
      assert.equal(res.status, 200, res.text);
    }
    const health = await send(server.url, 'GET', '/health');
    assert.equal(health.status, 200);
    assert.equal(JSON.parse(health.text).status, 'ok');
    assert.equal(model.forward.open.size, 0);
  });

  test('unknown routes, wrong methods and malformed requests', async () => {
    assertError(await send(server.url, 'GET', '/v1/nothing'), 404, 'not_found_error', /POST \/v1\/chat\/completions/);
    const wrongMethod = await send(server.url, 'GET', '/v1/chat/completions');
    assertError(wrongMethod, 405, 'invalid_request_error', /use POST/);
    assert.equal(wrongMethod.headers.allow, 'POST');
    // A request line no HTTP parser accepts.
    const reply = await new Promise<string>((resolve, reject) => {
      const url = new URL(server.url);
      const socket = connect(Number(url.port), url.hostname, () => socket.end('NOT HTTP AT ALL\r\n\r\n'));
      let data = '';
      socket.on('data', (d) => (data += d.toString()));
      socket.on('close', () => resolve(data));
      socket.on('error', reject);
    });
    assert.match(reply, /^HTTP\/1\.1 400/);
    assert.equal((await send(server.url, 'GET', '/health')).status, 200);
  });

  test('a client that disconnects mid-stream stops the generation and frees its sequence', async () => {
    const stepsBefore = model.forward.steps;
    await new Promise<void>((resolve, reject) => {
      const req = request(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
        assert.equal(res.statusCode, 200);
        // Hang up as soon as the first chunk arrives.
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', (error) => (req.destroyed ? undefined : reject(error)));
      req.end(JSON.stringify(chat({ max_tokens: 200, stream: true })));
    });
    await eventually(() => model.forward.open.size === 0, 'the sequence is closed');
    const health = JSON.parse((await send(server.url, 'GET', '/health')).text) as { active: number };
    assert.equal(health.active, 0, 'the generation slot is free');
    assert.ok(model.forward.steps - stepsBefore < 200, 'generation stopped before max_tokens');

    // The same for a non-streaming request: hang up while it generates.
    const stepsBeforeSecond = model.forward.steps;
    const pending = request(`${server.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' } });
    pending.on('error', () => {});
    pending.end(JSON.stringify({ model: model.modelId, prompt: 'abc', max_tokens: 200, temperature: 0 }));
    await eventually(() => model.forward.open.size === 1, 'the generation started');
    pending.destroy();
    await eventually(() => model.forward.open.size === 0, 'the sequence is closed after the hang-up');
    assert.ok(model.forward.steps - stepsBeforeSecond < 200, 'generation stopped before max_tokens');
  });

  test('over the queue limit: 429 with Retry-After; close() ends streams in flight and frees them', async () => {
    const small = await startTestServer(model, { maxConcurrent: 1, maxQueued: 0 });
    const firstChunk = new Promise<string>((resolve, reject) => {
      const req = request(`${small.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => {
          text += d.toString();
          resolve(text);
        });
        res.on('end', () => streamEnd(text));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ model: model.modelId, prompt: 'abc', max_tokens: 200, stream: true, temperature: 0 }));
    });
    let streamEnd: (text: string) => void = () => {};
    const ended = new Promise<string>((resolve) => (streamEnd = resolve));
    await firstChunk;
    const busy = await send(small.url, 'POST', '/v1/completions', JSON.stringify({ model: model.modelId, prompt: 'x', max_tokens: 2 }));
    assert.equal(assertError(busy, 429, 'rate_limit_error', /busy/).code, 'rate_limit_exceeded');
    assert.equal(busy.headers['retry-after'], '1');

    await small.close();
    const streamed = await ended;
    assert.match(streamed, /data: \{"error":\{"message":"the server is shutting down/);
    assert.ok(!streamed.includes('[DONE]'));
    assert.equal(model.forward.open.size, 0, 'close() returns after every sequence is closed');
  });

  test('a failing forward: an error status before the stream starts, an error frame after; HttpErrors pass through', async () => {
    let steps = 0;
    let failAt = Number.POSITIVE_INFINITY;
    let failWith: unknown;
    const flaky: Forward = {
      nVocab: model.forward.nVocab,
      nCtx: model.forward.nCtx,
      openSequence: () => model.forward.openSequence(),
      closeSequence: (seq) => model.forward.closeSequence(seq),
      step: (inputs) => {
        if (++steps >= failAt) throw failWith;
        return model.forward.step(inputs);
      },
    };
    const flakyServer = await startTestServer(model, { generator: new Generator(new Batcher(flaky), model.tokenizer) });
    const fail = (at: number, error: unknown) => {
      steps = 0;
      failAt = at;
      failWith = error;
    };
    try {
      // A pipeline that loses its worker on prefill (the node throws an HttpError 503): passed through.
      fail(1, new ApiError(503, 'worker lost', { hint: 'add a worker' }));
      const early = await send(flakyServer.url, 'POST', '/v1/chat/completions', JSON.stringify(chat({ stream: true })));
      assertError(early, 503, 'unavailable_error', /worker lost; add a worker/);
      // A bug mid-stream: the stream ends with an error frame and no [DONE].
      fail(6, new Error('internal detail'));
      const late = await send(flakyServer.url, 'POST', '/v1/chat/completions', JSON.stringify(chat({ stream: true, max_tokens: 10 })));
      assert.equal(late.status, 200);
      assert.match(late.text, /data: \{"error":\{"message":"internal error in the API server[^"]*","type":"server_error"/);
      assert.ok(!late.text.includes('[DONE]') && !late.text.includes('internal detail'));
      // Non-streaming: a 500.
      fail(2, new Error('internal detail'));
      assertError(await send(flakyServer.url, 'POST', '/v1/chat/completions', JSON.stringify(chat())), 500, 'server_error');
    } finally {
      await flakyServer.close();
    }
    assert.equal(model.forward.open.size, 0, 'failed generations closed their sequences');
  });
});
