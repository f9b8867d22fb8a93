// Server-sent events: the frame format, and SseStream as a route body through the listener (first-event
// failures as ordinary errors, later ones as an error frame in the service's shape, aborts, hang-ups).
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import { HttpError } from './errors.ts';
import { Router } from './router.ts';
import { SseStream, sseFrame } from './sse.ts';
import { problemOf, rawRequest, startTestListener } from './testing.ts';
import type { TestServer } from './testing.ts';

test('frames: JSON on one line, strings line by line, event and id fields', () => {
  assert.equal(sseFrame({ a: 1 }), 'data: {"a":1}\n\n');
  assert.equal(sseFrame('[DONE]'), 'data: [DONE]\n\n');
  assert.equal(sseFrame('one\ntwo\r\nthree'), 'data: one\ndata: two\ndata: three\n\n');
  assert.equal(sseFrame({ n: 2 }, { event: 'tick', id: '7' }), 'event: tick\nid: 7\ndata: {"n":2}\n\n');
  assert.throws(() => sseFrame('x', { event: 'a\nb' }), /one line/);
});

let server: TestServer;
const shutdown = new AbortController();
const state = { finallyRan: 0, waiting: undefined as (() => void) | undefined };

/** Yields `count` events, then throws when `failAt` is reached; counts its finally blocks. */
async function* events(count: number, failAt = Number.POSITIVE_INFINITY): AsyncGenerator<unknown> {
  try {
    for (let i = 0; i < count; i++) {
      if (i === failAt) throw new HttpError(502, 'upstream', `failed at ${i}`);
      yield { i };
    }
  } finally {
    state.finallyRan++;
  }
}

/** One event, then waits until released (a source blocked on work that never comes). */
async function* stuck(release: Promise<void>): AsyncGenerator<unknown> {
  try {
    yield { i: 0 };
    state.waiting?.();
    await release;
  } finally {
    state.finallyRan++;
  }
}

before(async () => {
  const router = new Router()
    .add('GET', '/three', () => ({ body: new SseStream(events(3), { done: '[DONE]' }) }))
    .add('GET', '/fail-first', () => ({ body: new SseStream(events(3, 0)) }))
    .add('GET', '/fail-later', () => ({ body: new SseStream(events(3, 2), { done: '[DONE]' }) }))
    .add('GET', '/stuck', (ctx) => {
      // The source learns about the abort only through its own release here.
      let release: () => void = () => {};
      const released = new Promise<void>((resolve) => (release = resolve));
      ctx.signal.addEventListener('abort', () => release(), { once: true });
      return { body: new SseStream(stuck(released), { headers: { 'x-stream': 'yes' } }) };
    });
  server = await startTestListener(router, { shutdown: shutdown.signal });
});

after(() => server.close());

test('a stream: headers, one frame per event, then the done frame; the source is closed', async () => {
  const before = state.finallyRan;
  const answer = await rawRequest(server.url, 'GET', '/three');
  assert.equal(answer.status, 200);
  assert.equal(answer.headers['content-type'], 'text/event-stream; charset=utf-8');
  assert.equal(answer.headers['cache-control'], 'no-cache');
  assert.equal(answer.text, 'data: {"i":0}\n\ndata: {"i":1}\n\ndata: {"i":2}\n\ndata: [DONE]\n\n');
  assert.equal(state.finallyRan, before + 1);
});

test('a failure before the first event is an ordinary error answer; a later one an error frame and no done', async () => {
  assert.deepEqual(problemOf(await rawRequest(server.url, 'GET', '/fail-first'), 502), { status: 502, code: 'upstream', detail: 'failed at 0' });
  const late = await rawRequest(server.url, 'GET', '/fail-later');
  assert.equal(late.status, 200);
  assert.equal(late.text, 'data: {"i":0}\n\ndata: {"i":1}\n\ndata: {"problem":{"status":502,"code":"upstream","detail":"failed at 2"}}\n\n');
});

test('a client that hangs up mid-stream: the source is closed', async () => {
  const before = state.finallyRan;
  const waiting = new Promise<void>((resolve) => (state.waiting = resolve));
  const url = new URL(server.url);
  const req = request({ host: url.hostname, port: url.port, path: '/stuck' }, (res) => res.once('data', () => undefined));
  req.on('error', () => {});
  req.end();
  await waiting;
  req.destroy();
  // The listener's signal aborts, the route releases its source, whose finally block runs.
  for (let i = 0; i < 2000 && state.finallyRan === before; i++) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal(state.finallyRan, before + 1);
});

test('shutdown ends a stream whose source is still waiting with an error frame carrying the reason', async () => {
  const waiting = new Promise<void>((resolve) => (state.waiting = resolve));
  const answer = rawRequest(server.url, 'GET', '/stuck');
  await waiting;
  shutdown.abort(new HttpError(503, 'closing', 'the server is shutting down'));
  const ended = await answer;
  assert.equal(ended.headers['x-stream'], 'yes');
  assert.equal(ended.text, 'data: {"i":0}\n\ndata: {"problem":{"status":503,"code":"closing","detail":"the server is shutting down"}}\n\n');
});
