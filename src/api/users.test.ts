// Who a request comes from: the admin key, a user key (looked up by its hash), or nobody; and the 401s.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { HttpError } from '../http/index.ts';
import { type AuthRules, type UserDirectory, authenticate, callerOf, hashUserKey, newUserKey } from './users.ts';

const aliceKey = newUserKey();
const directory: UserDirectory = {
  userByKeyHash: (hash) => (hash.equals(hashUserKey(aliceKey)) ? { userId: 'user_a', name: 'alice', keyHash: hashUserKey(aliceKey) } : undefined),
};

function request(key?: string): IncomingMessage {
  // A bare object stands in for the request: the guard reads its headers and keys a WeakMap on it.
  return { headers: key === undefined ? {} : { authorization: `Bearer ${key}` } } as IncomingMessage;
}

function callerFor(key: string | undefined, rules: Partial<AuthRules>, path = '/v1/models') {
  const req = request(key);
  authenticate(req, new URL(`http://x${path}`), {
    publicPaths: new Set(['/health']),
    refuse: () => {
      throw new HttpError(401, 'invalid_api_key', 'wrong admin key');
    },
    ...rules,
  });
  return callerOf(req);
}

describe('callers', () => {
  it('user keys are 256 random bits with a prefix, and only their SHA-256 is kept', () => {
    assert.match(aliceKey, /^sllm_[A-Za-z0-9_-]{43}$/);
    assert.notEqual(newUserKey(), newUserKey());
    assert.equal(hashUserKey(aliceKey).length, 32);
  });

  it('with an admin key: admin, user, or 401', () => {
    const rules = { apiKey: 'admin', users: directory };
    assert.deepEqual(callerFor('admin', rules), { kind: 'admin' });
    assert.deepEqual(callerFor(aliceKey, rules), { kind: 'user', userId: 'user_a', name: 'alice' });
    assert.throws(() => callerFor(undefined, rules), HttpError);
    assert.throws(() => callerFor('nope', rules), HttpError);
    assert.throws(() => callerFor(newUserKey(), rules), HttpError);
    assert.deepEqual(callerFor(undefined, rules, '/health'), { kind: 'anonymous' });
  });

  it('without an admin key: anonymous unless a user key is sent; an unknown user key is still a 401', () => {
    const rules = { users: directory };
    assert.deepEqual(callerFor(undefined, rules), { kind: 'anonymous' });
    assert.deepEqual(callerFor('anything', rules), { kind: 'anonymous' });
    assert.deepEqual(callerFor(aliceKey, rules), { kind: 'user', userId: 'user_a', name: 'alice' });
    assert.throws(() => callerFor(newUserKey(), rules), (e: unknown) => e instanceof HttpError && e.status === 401 && /not known/.test(e.message));
  });
});
