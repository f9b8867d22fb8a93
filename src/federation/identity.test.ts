import assert from 'node:assert/strict';
import { chmodSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { signingPayload } from './protocol.ts';
import { createEphemeralIdentity, fingerprint, IDENTITY_FILE, IdentityError, loadOrCreateIdentity, signBody, verifyBody, verifySignature } from './identity.ts';
import { tempDir } from './coordinator/testing.ts';

test('loadOrCreateIdentity creates a 0600 key once and loads the same identity afterwards', () => {
  const dir = tempDir();
  try {
    const dataDir = join(dir.path, 'data');
    const first = loadOrCreateIdentity(dataDir);
    const path = join(dataDir, IDENTITY_FILE);
    assert.equal(first.path, path);
    assert.match(readFileSync(path, 'utf8'), /BEGIN PRIVATE KEY/);
    if (process.platform !== 'win32') {
      assert.equal(statSync(path).mode & 0o777, 0o600);
      assert.equal(statSync(dataDir).mode & 0o077, 0);
    }
    const second = loadOrCreateIdentity(dataDir);
    assert.equal(second.publicKey, first.publicKey);
    assert.equal(second.id, first.id);
    assert.equal(first.id, fingerprint(first.publicKey));
    assert.match(first.id, /^[0-9a-f]{16}$/);
    assert.equal(Buffer.from(first.publicKey, 'base64').length, 32);
  } finally {
    dir.cleanup();
  }
});

test('a key file readable by others is refused with a chmod hint', { skip: process.platform === 'win32' }, () => {
  const dir = tempDir();
  try {
    loadOrCreateIdentity(dir.path);
    chmodSync(join(dir.path, IDENTITY_FILE), 0o644);
    assert.throws(() => loadOrCreateIdentity(dir.path), (error: unknown) => {
      assert.ok(error instanceof IdentityError);
      assert.match(error.hint, /chmod 600/);
      return true;
    });
  } finally {
    dir.cleanup();
  }
});

test('sign and verify; tampering, another key or garbage fail without throwing', () => {
  const alice = createEphemeralIdentity();
  const bob = createEphemeralIdentity();
  const data = Buffer.from('hello federation');
  const signature = alice.sign(data);
  assert.equal(Buffer.from(signature, 'base64').length, 64);
  assert.equal(verifySignature(alice.publicKey, data, signature), true);
  assert.equal(verifySignature(bob.publicKey, data, signature), false);
  assert.equal(verifySignature(alice.publicKey, Buffer.from('hello federatioN'), signature), false);
  assert.equal(verifySignature('not a key', data, signature), false);
  assert.equal(verifySignature(alice.publicKey, data, 'AAAA'), false);
});

test('signBody / verifyBody cover every field, including ones a schema would strip, in any key order', () => {
  const identity = createEphemeralIdentity();
  const signed = signBody(identity, { publicKey: identity.publicKey, b: 1, a: { y: [1, 'x'], x: null }, extra: 'kept' });
  assert.equal(verifyBody(signed, 'publicKey'), true);

  const reordered = { extra: 'kept', a: { x: null, y: [1, 'x'] }, signature: signed.signature, b: 1, publicKey: identity.publicKey };
  assert.equal(verifyBody(reordered, 'publicKey'), true);
  assert.equal(verifyBody({ ...signed, extra: 'changed' }, 'publicKey'), false);
  const { extra: _extra, ...stripped } = signed;
  assert.equal(verifyBody(stripped, 'publicKey'), false);
  assert.equal(verifyBody({ ...signed, publicKey: createEphemeralIdentity().publicKey }, 'publicKey'), false);
  assert.equal(verifyBody({ b: 1 }, 'publicKey'), false);
  assert.deepEqual(signingPayload(signed), signingPayload(reordered));
});
