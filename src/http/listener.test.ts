// The listener over real sockets: one error path mapped to the service's shape, body limits and JSON rules,
// guards, service headers, and the per-request signal (client gone, shutdown) with request tracking.
import assert from 'node:assert/strict';
import { IncomingMessage, request } from 'node:http';
import { connect, Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { parseJson, tighterLimit } from './body.ts';
import { ClientGoneError, HttpError } from './errors.ts';
import { requestSignal } from './listener.ts';
import { Router } from './router.ts';
import { problemOf, rawRequest, startTestListener } from './testing.ts';
import type { TestServer } from './testing.ts';

let server: TestServer;
const seen: { signal?: AbortSignal; reqSignal?: AbortSignal } = {};

before(async () => {
  const router = new Router()
    .add('GET', '/ok', () => ({ status: 201, headers: { 'x-extra': '1' }, body: { ok: true } }))
    .add('GET', '/refuse', () => {
      throw new HttpError(409, 'conflict', 'already there', 'pick another', { 'retry-after': '3' });
    })
    .add('GET', '/bug', () => {
      throw new Error('secret internals');
    })
    .add('POST', '/echo', async (ctx) => ({ body: { got: await ctx.json() } }))
    .add('POST', '/small', async (ctx) => ({ body: await ctx.json({ maxBytes: 16, label: 'thing', setting: 'config.maxThingBytes' }) }))
    .add('POST', '/roomy', async (ctx) => ({ body: { size: JSON.stringify(await ctx.json({ maxBytes: 1 << 20 })).length } }))
    .add('GET', '/signal', (ctx) => {
      seen.signal = ctx.signal;
      seen.reqSignal = requestSignal(ctx.req);
      return { body: { aborted: ctx.signal.aborted } };
    });
  server = await startTestListener(router, {
    headers: { 'x-service': 'test' },
    guard: (req, url) => {
      if (url.pathname === '/ok' && req.headers['x-deny'] !== undefined) throw new HttpError(403, 'denied', 'go away');
    },
  });
});

after(() => server.close());

test('answers JSON with its status and headers, plus the service headers', async () => {
  const answer = await rawRequest(server.url, 'GET', '/ok');
  assert.equal(answer.status, 201);
  assert.deepEqual(JSON.parse(answer.text), { ok: true });
  assert.equal(answer.headers['content-type'], 'application/json; charset=utf-8');
  assert.equal(answer.headers['cache-control'], 'no-store');
  assert.equal(answer.headers['x-extra'], '1');
  assert.equal(answer.headers['x-service'], 'test');
});

test('one error path: HttpErrors, router errors and guards in the service\'s shape; bugs are a logged 500', async () => {
  const refused = await rawRequest(server.url, 'GET', '/refuse');
  assert.deepEqual(problemOf(refused, 409), { status: 409, code: 'conflict', detail: 'already there' });
  assert.equal(refused.headers['retry-after'], '3');
  assert.equal(refused.headers['x-service'], 'test', 'service headers on errors too');
  assert.equal(problemOf(await rawRequest(server.url, 'GET', '/nowhere'), 404).code, 'not_found');
  const wrongMethod = await rawRequest(server.url, 'DELETE', '/ok');
  assert.equal(problemOf(wrongMethod, 405).code, 'method_not_allowed');
  assert.equal(wrongMethod.headers.allow, 'GET');
  assert.equal(problemOf(await rawRequest(server.url, 'GET', '/ok', { headers: { 'x-deny': '1' } }), 403).code, 'denied');

  const before = server.entries.length;
  const bug = await rawRequest(server.url, 'GET', '/bug');
  assert.deepEqual(problemOf(bug, 500), { status: 500, code: 'oops', detail: 'something broke' });
  assert.doesNotMatch(bug.text, /secret/);
  const errors = server.entries.slice(before).filter((entry) => entry.level === 'error');
  assert.equal(errors.length, 1, 'a 5xx is logged once');
  assert.equal(errors[0]!.event, 'test_error');
  assert.match(String((errors[0]!.fields!['error'] as Error).stack), /secret internals/);
  assert.ok(server.entries.every((entry) => entry.level !== 'error' || entry.fields?.['status'] === 500), 'only 5xx are errors');
});

test('JSON bodies: any Content-Type here, 400 invalid_json for empty, non-UTF-8 or malformed bodies', async () => {
  const echo = await rawRequest(server.url, 'POST', '/echo', { body: '{"a":[1,"é"]}', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.deepEqual(JSON.parse(echo.text), { got: { a: [1, 'é'] } });
  for (const [body, detail] of [
    ['', /empty/],
    ['   ', /empty/],
    [Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d]), /UTF-8/],
    ['{"a": ', /not valid JSON/],
  ] as const) {
    const problem = problemOf(await rawRequest(server.url, 'POST', '/echo', { body }), 400);
    assert.equal(problem.code, 'invalid_json');
    assert.match(problem.detail, detail);
  }
  assert.throws(() => parseJson(Buffer.from('nul')), (error: unknown) => error instanceof HttpError && error.code === 'invalid_json');
});

test('Content-Type is checked where the service asks for it (415)', async () => {
  const strict = await startTestListener(new Router().add('POST', '/in', async (ctx) => ({ body: await ctx.json() })), { requireJsonContentType: true });
  try {
    const refused = await rawRequest(strict.url, 'POST', '/in', { body: '{}', headers: { 'content-type': 'text/plain' } });
    assert.equal(problemOf(refused, 415).code, 'unsupported_media_type');
    assert.equal((await rawRequest(strict.url, 'POST', '/in', { body: '{}', headers: { 'content-type': 'application/json; charset=utf-8' } })).status, 200);
  } finally {
    await strict.close();
  }
});

test('body limits: 413 on the declared size, on the streamed size, and a route\'s tighter limit is named', async () => {
  const declared = await rawRequest(server.url, 'POST', '/echo', { body: JSON.stringify({ pad: 'x'.repeat(2000) }) });
  const problem = problemOf(declared, 413);
  assert.equal(problem.code, 'payload_too_large');
  assert.match(problem.detail, /^request body of 2\d{3}\+ bytes is above the limit of 1024 bytes$/);
  assert.equal(declared.headers.connection, 'close');

  // Chunked: no Content-Length, the limit trips while reading.
  const streamed = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const url = new URL(server.url);
    const req = request({ host: url.hostname, port: url.port, method: 'POST', path: '/echo' }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    for (let i = 0; i < 8; i++) req.write('x'.repeat(512));
    req.end();
  });
  assert.equal(streamed.status, 413);

  const small = problemOf(await rawRequest(server.url, 'POST', '/small', { body: JSON.stringify({ pad: 'x'.repeat(20) }) }), 413);
  assert.match(small.detail, /^thing of \d+\+ bytes is above the limit of 16 bytes \(config\.maxThingBytes\)$/);
  // A route's limit never raises the listener's.
  assert.equal(problemOf(await rawRequest(server.url, 'POST', '/roomy', { body: JSON.stringify({ pad: 'x'.repeat(2000) }) }), 413).code, 'payload_too_large');
  assert.deepEqual(tighterLimit({ maxBytes: 10 }, { maxBytes: 5, label: 'a' }), { maxBytes: 5, label: 'a' });
  assert.deepEqual(tighterLimit({ maxBytes: 10 }, { maxBytes: 50, label: 'a' }), { maxBytes: 10 });
  // The server still answers afterwards.
  assert.equal((await rawRequest(server.url, 'GET', '/ok')).status, 201);
});

test('a request target that is no URL path is a 400 in the service\'s shape', async () => {
  const url = new URL(server.url);
  const reply = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => socket.end('GET //[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    let data = '';
    socket.on('data', (chunk: Buffer) => (data += chunk.toString()));
    socket.on('close', () => resolve(data));
    socket.on('error', reject);
  });
  assert.match(reply, /^HTTP\/1\.1 400/);
  assert.match(reply, /"code":"bad_request"/);
});

test('the request signal: the same from ctx and requestSignal(req), aborted with ClientGoneError when the client leaves', async () => {
  assert.deepEqual(JSON.parse((await rawRequest(server.url, 'GET', '/signal')).text), { aborted: false });
  assert.equal(seen.signal, seen.reqSignal);
  assert.equal(seen.signal?.aborted, false, 'a finished answer does not abort');
  assert.throws(() => requestSignal(new IncomingMessage(new Socket())), /no src\/http listener/);

  let started: () => void = () => {};
  const running = new Promise<void>((resolve) => (started = resolve));
  let reason: unknown;
  const tracked: Promise<void>[] = [];
  const slow = await startTestListener(
    new Router().add('GET', '/slow', async (ctx) => {
      started();
      reason = await new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve(ctx.signal.reason), { once: true }));
      return { body: {} };
    }),
    { track: (done) => void tracked.push(done) },
  );
  try {
    const url = new URL(slow.url);
    const req = request({ host: url.hostname, port: url.port, path: '/slow' });
    req.on('error', () => {});
    req.end();
    await running;
    req.destroy();
    await Promise.all(tracked);
    assert.ok(reason instanceof ClientGoneError);
    assert.equal(reason.status, 499);
  } finally {
    await slow.close();
  }
});

test('shutdown aborts the requests in flight with its reason, and they answer with it', async () => {
  const shutdown = new AbortController();
  let started: () => void = () => {};
  const running = new Promise<void>((resolve) => (started = resolve));
  const slow = await startTestListener(
    new Router().add('GET', '/slow', async (ctx) => {
      started();
      await new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true }));
      return { body: {} };
    }),
    { shutdown: shutdown.signal },
  );
  try {
    const answer = rawRequest(slow.url, 'GET', '/slow');
    await running;
    shutdown.abort(new HttpError(503, 'closing', 'shutting down'));
    assert.deepEqual(problemOf(await answer, 503), { status: 503, code: 'closing', detail: 'shutting down' });
  } finally {
    await slow.close();
  }
});
