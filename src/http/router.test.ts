import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HttpError, RouteNotFoundError } from './errors.ts';
import { Router } from './router.ts';
import type { RouteHandler } from './router.ts';

const named = (name: string): RouteHandler => () => ({ body: name });

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  assert.fail('expected a throw');
}

test('params are decoded segments; the first matching route wins', () => {
  const router = new Router().add('GET', '/v1/nodes/:id', named('node')).add('GET', '/v1/nodes/special', named('special'));
  const match = router.match('GET', '/v1/nodes/a%20b');
  assert.deepEqual(match.params, { id: 'a b' });
  assert.equal(router.match('GET', '/v1/nodes/special').handler, match.handler, 'the :id route was added first');
  assert.deepEqual(router.match('GET', '//v1///nodes/x/').params, { id: 'x' }, 'empty segments are ignored');
});

test('a bad percent-encoding is a 400, an unknown path a RouteNotFoundError, a wrong method a 405 with Allow', () => {
  const router = new Router().add('GET', '/items/:id', named('get')).add('DELETE', '/items/:id', named('delete')).add('GET', '/items/:id', named('again'));
  const bad = thrown(() => router.match('GET', '/items/%E0%A4%A'));
  assert.ok(bad instanceof HttpError && bad.status === 400 && bad.code === 'bad_request');
  const missing = thrown(() => router.match('GET', '/nothing'));
  assert.ok(missing instanceof RouteNotFoundError);
  assert.equal(missing.status, 404);
  assert.equal(missing.message, 'no route GET /nothing');
  const wrong = thrown(() => router.match('POST', '/items/1'));
  assert.ok(wrong instanceof HttpError);
  assert.equal(wrong.status, 405);
  assert.equal(wrong.code, 'method_not_allowed');
  assert.deepEqual(wrong.headers, { allow: 'GET, DELETE' });
});

test('a trailing * takes the rest of the path, still percent-encoded', () => {
  const router = new Router().add('GET', '/web/*', named('web'));
  assert.deepEqual(router.match('GET', '/web').params, { '*': '' });
  assert.deepEqual(router.match('GET', '/web/').params, { '*': '' });
  assert.deepEqual(router.match('GET', '/web/a/b.js').params, { '*': 'a/b.js' });
  assert.deepEqual(router.match('GET', '/web/a%2Fb').params, { '*': 'a%2Fb' }, 'an encoded slash is not a separator');
  assert.ok(thrown(() => router.match('GET', '/other/a')) instanceof RouteNotFoundError);
  assert.throws(() => new Router().add('GET', '/a/*/b', named('x')), /may only be the last segment/);
});
