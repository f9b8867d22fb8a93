// http:// against a coordinator that serves HTTPS: one clear error saying so (a code callers treat as fatal),
// not a connection reset retried forever.
import assert from 'node:assert/strict';
import { createServer } from 'node:https';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createSelfSignedCert } from './certs.ts';
import { CoordinatorClient, CoordinatorUnreachableError, HTTP_TO_TLS, TLS_TRUST_ERRORS } from './client.ts';
import { speaksTls } from './tls-probe.ts';

test('an http:// client of a TLS server is told to use https:// and --ca', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sharedllm-tls-probe-'));
  const pair = await createSelfSignedCert({ hosts: ['localhost'], outDir: dir });
  const server = createServer({ cert: readFileSync(pair.certPath), key: readFileSync(pair.keyPath) }, (_req, res) => res.end('{}'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const client = new CoordinatorClient({ url: `http://127.0.0.1:${port}`, requestTimeoutMs: 2_000 });
  try {
    assert.equal(await speaksTls(new URL(`http://127.0.0.1:${port}`), 2_000), true);
    const error = await client.health().then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof CoordinatorUnreachableError, String(error));
    assert.match(error.message, /the coordinator speaks HTTPS: use https:\/\/127\.0\.0\.1:\d+ and --ca/);
    const code = (error.cause as NodeJS.ErrnoException).code;
    assert.equal(code, HTTP_TO_TLS);
    assert.ok(TLS_TRUST_ERRORS.has(code), 'the node stops on it instead of retrying');
  } finally {
    client.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a plain HTTP port does not look like TLS', async () => {
  const { createServer: createPlain } = await import('node:http');
  const server = createPlain((_req, res) => res.end('x'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    assert.equal(await speaksTls(new URL(`http://127.0.0.1:${port}`), 2_000), false);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});
