import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HttpError } from '../http/index.ts';
import { ContextLimitError, OutOfMemoryError } from '../model/errors.ts';
import { ApiError, toErrorBody, toHttpError } from './errors.ts';
import { formatPath } from './schemas.ts';

test('ApiError renders in OpenAI\'s shape, the hint appended to the message', () => {
  const error = new ApiError(400, 'max_tokens is too large', { param: 'max_tokens', code: 'bad_max', hint: 'ask for fewer' });
  assert.ok(error instanceof HttpError, 'one error type for the whole HTTP layer');
  assert.deepEqual(toErrorBody(error), {
    error: { message: 'max_tokens is too large; ask for fewer', type: 'invalid_request_error', param: 'max_tokens', code: 'bad_max' },
  });
});

test('plain HttpErrors (shared Router, body reader) map by status', () => {
  const tooLarge = new HttpError(413, 'payload_too_large', 'body above the limit', 'send a smaller body');
  assert.deepEqual(toErrorBody(tooLarge), {
    error: { message: 'body above the limit; send a smaller body', type: 'invalid_request_error', param: null, code: 'payload_too_large' },
  });
  assert.equal(toErrorBody(new HttpError(405, 'method_not_allowed', 'no')).error.type, 'invalid_request_error');
});

test('model errors a request can cause are 4xx; anything unknown is a 500 that hides its details', () => {
  const overflow = toHttpError(new ContextLimitError('prompt too long', 'fewer than 10 tokens', '12 tokens', 'shorten it'));
  assert.equal(overflow.status, 400);
  assert.equal(toErrorBody(overflow).error.code, 'context_length_exceeded');
  assert.equal(toHttpError(new OutOfMemoryError('no KV', 'a', 'b', 'c')).status, 503);
  const unknown = toHttpError(new TypeError('secret internals'));
  assert.equal(unknown.status, 500);
  assert.doesNotMatch(toErrorBody(unknown).error.message, /secret/);
  assert.equal(toErrorBody(unknown).error.type, 'server_error');
});

test('formatPath writes params as OpenAI does', () => {
  assert.equal(formatPath(['messages', 0, 'content', 1, 'type']), 'messages[0].content[1].type');
  assert.equal(formatPath(['stop']), 'stop');
});
