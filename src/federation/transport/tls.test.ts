import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { z } from 'zod';
import { ConnectError, connect, listen } from './rpc.ts';
import { hasOpenssl, makeTestCert, Rng } from './testing.ts';

const skip = hasOpenssl() ? false : 'openssl is not installed (certs.ts needs it)';
let pem: { cert: string; key: string };

before(async () => {
  if (skip === false) pem = await makeTestCert();
});

async function tlsServer() {
  return listen({
    host: '127.0.0.1',
    port: 0,
    session: 'tls-server',
    tls: pem,
    methods: { echo: { schema: z.object({}), handler: ({ payload }) => ({ header: { bytes: payload.length }, payload }) } },
  });
}

test('TLS with a self-signed certificate trusted as the CA', { skip }, async () => {
  const server = await tlsServer();
  const peer = await connect(`127.0.0.1:${server.port}`, { session: 'c', tls: { ca: pem.cert } });
  try {
    assert.equal(peer.session, 'tls-server');
    const payload = new Rng(4).bytes(3 * 1024 * 1024);
    const answer = await peer.request('echo', {}, payload);
    assert.ok(Buffer.from(answer.payload).equals(payload));
  } finally {
    peer.close();
    await server.close();
  }
});

test('TLS refuses an untrusted certificate, and plain TCP against TLS (both ways)', { skip }, async () => {
  const server = await tlsServer();
  const plain = await listen({ host: '127.0.0.1', port: 0, session: 'plain', methods: {} });
  try {
    await assert.rejects(connect(`127.0.0.1:${server.port}`, { session: 'c', tls: {} }), (error: unknown) => error instanceof ConnectError && /certificate/.test(error.message + error.hint));
    await assert.rejects(connect(`127.0.0.1:${server.port}`, { session: 'c', timeoutMs: 1_000 }), ConnectError);
    await assert.rejects(connect(`127.0.0.1:${plain.port}`, { session: 'c', tls: { ca: pem.cert }, timeoutMs: 1_000 }), (error: unknown) => error instanceof ConnectError && /does not speak TLS/.test(error.hint));
    const insecure = await connect(`127.0.0.1:${server.port}`, { session: 'c', tls: { rejectUnauthorized: false } });
    insecure.close();
  } finally {
    await server.close();
    await plain.close();
  }
});
