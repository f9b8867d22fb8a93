import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bearerToken, checkBearer, tokensEqual } from './bearer.ts';
import type { BearerWording } from './bearer.ts';
import { HttpError } from './errors.ts';

const wording: BearerWording = {
  code: 'invalid_key',
  missing: { message: 'a key is required', hint: 'send Authorization: Bearer <key>' },
  wrong: { message: 'wrong key', hint: 'ask the operator' },
};

const withAuth = (authorization?: string) => ({ headers: authorization === undefined ? {} : { authorization } });

function refusal(authorization: string | undefined): HttpError {
  try {
    checkBearer(withAuth(authorization), 'open sesame', wording);
  } catch (error) {
    assert.ok(error instanceof HttpError);
    return error;
  }
  assert.fail('expected a 401');
}

test('bearerToken reads `Bearer <token>` (any case, trimmed) and nothing else', () => {
  assert.equal(bearerToken(withAuth('Bearer abc')), 'abc');
  assert.equal(bearerToken(withAuth('bearer   abc  ')), 'abc');
  assert.equal(bearerToken(withAuth('Basic YTpi')), undefined);
  assert.equal(bearerToken(withAuth('Bearer')), undefined);
  assert.equal(bearerToken(withAuth()), undefined);
});

test('tokensEqual compares whole strings, whatever their lengths', () => {
  assert.equal(tokensEqual('secret', 'secret'), true);
  assert.equal(tokensEqual('secret', 'secreT'), false);
  assert.equal(tokensEqual('secret', 'secret-longer'), false);
  assert.equal(tokensEqual('', 'secret'), false);
});

test('checkBearer: the right token passes; missing or wrong is a 401 with the service\'s wording and a challenge', () => {
  checkBearer(withAuth('Bearer open sesame'), 'open sesame', wording);
  const missing = refusal(undefined);
  assert.equal(missing.status, 401);
  assert.equal(missing.code, 'invalid_key');
  assert.equal(missing.message, 'a key is required');
  assert.equal(missing.hint, 'send Authorization: Bearer <key>');
  assert.match(missing.headers['www-authenticate'] ?? '', /^Bearer realm=/);
  for (const header of ['Bearer open', 'Bearer open sesame!', 'Bearer OPEN SESAME']) {
    const wrong = refusal(header);
    assert.equal(wrong.message, 'wrong key');
    assert.equal(wrong.status, 401);
  }
  assert.equal(refusal('Token open sesame').message, 'a key is required', 'another scheme is no bearer token');
  assert.throws(
    () => checkBearer(withAuth(), 'x', { missing: wording.missing, wrong: wording.wrong }),
    (error: unknown) => error instanceof HttpError && error.code === 'unauthorized',
    'the default code',
  );
});
