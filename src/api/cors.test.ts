// CORS: off by default; with allowed origins, the Allow-Origin header on answers and preflights answered
// before the API key check; an origin not on the list gets no header (and 403 on a preflight).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseCorsOrigins } from './cors.ts';
import type { ApiServer } from './server.ts';
import { type TestModel, loadTestModel, startTestServer } from './testing.ts';

let model: TestModel;
before(async () => {
  model = await loadTestModel();
});
after(async () => {
  await model?.dispose();
});

const page = 'http://localhost:5173';
const preflight = (url: string, origin: string) =>
  fetch(`${url}/v1/chat/completions`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
  });

async function withServer(options: Parameters<typeof startTestServer>[1], body: (server: ApiServer) => Promise<void>) {
  const server = await startTestServer(model, options);
  try {
    await body(server);
  } finally {
    await server.close();
  }
}

describe('CORS', () => {
  test('off by default: no CORS headers, OPTIONS is not a method of the API', async () => {
    await withServer({}, async (server) => {
      const res = await fetch(`${server.url}/v1/models`, { headers: { origin: page } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('access-control-allow-origin'), null);
      const pre = await preflight(server.url, page);
      assert.equal(pre.headers.get('access-control-allow-origin'), null);
      assert.ok(pre.status >= 400);
    });
  });

  test('--cors ORIGIN: that origin may call, preflights pass without the key, others get nothing', async () => {
    await withServer({ corsOrigins: [page], apiKey: 'sekret' }, async (server) => {
      const pre = await preflight(server.url, page);
      assert.equal(pre.status, 204);
      assert.equal(pre.headers.get('access-control-allow-origin'), page);
      assert.match(pre.headers.get('access-control-allow-methods') ?? '', /POST/);
      assert.equal(pre.headers.get('access-control-allow-headers'), 'authorization, content-type');
      const ok = await fetch(`${server.url}/v1/models`, { headers: { origin: page, authorization: 'Bearer sekret' } });
      assert.equal(ok.status, 200);
      assert.equal(ok.headers.get('access-control-allow-origin'), page);
      assert.match(ok.headers.get('vary') ?? '', /Origin/);
      const unauthorized = await fetch(`${server.url}/v1/models`, { headers: { origin: page } });
      assert.equal(unauthorized.status, 401);
      assert.equal(unauthorized.headers.get('access-control-allow-origin'), page, 'a page can read the 401');

      const stranger = await fetch(`${server.url}/v1/models`, { headers: { origin: 'http://evil.example', authorization: 'Bearer sekret' } });
      assert.equal(stranger.headers.get('access-control-allow-origin'), null);
      assert.equal((await preflight(server.url, 'http://evil.example')).status, 403);
    });
  });

  test("'*' allows any origin", async () => {
    await withServer({ corsOrigins: ['*'] }, async (server) => {
      const res = await fetch(`${server.url}/health`, { headers: { origin: 'http://any.example' } });
      assert.equal(res.headers.get('access-control-allow-origin'), '*');
      assert.equal((await preflight(server.url, 'http://any.example')).status, 204);
    });
  });

  test('--cors values are checked', () => {
    assert.deepEqual(parseCorsOrigins('http://a.example, https://b.example:8443'), ['http://a.example', 'https://b.example:8443']);
    assert.deepEqual(parseCorsOrigins('*'), ['*']);
    assert.throws(() => parseCorsOrigins('a.example'), /scheme:\/\/host/);
    assert.throws(() => parseCorsOrigins('http://a.example/path'), /not an origin/);
    assert.throws(() => parseCorsOrigins(' , '), /needs an origin/);
  });
});
