// The OpenAI API over HTTPS (`sharedllm node --api-tls-cert/--api-tls-key`): the official `openai` client,
// trusting a self-signed certificate made like `sharedllm certs` makes one, lists the model and streams a
// chat; a client that does not trust the certificate is refused. The key never travels in clear.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { createSelfSignedCert } from '../federation/coordinator/certs.ts';
import type { ApiServer } from '../api/server.ts';
import { type TestModel, loadTestModel, startTestServer } from '../api/testing.ts';
import { fetchTrusting } from './https-fetch.testing.ts';

const dir = mkdtempSync(join(tmpdir(), 'sharedllm-api-tls-'));
let model: TestModel;
let server: ApiServer;
let ca: Buffer;

before(async () => {
  const pair = await createSelfSignedCert({ hosts: ['localhost'], outDir: dir, name: 'api' });
  ca = readFileSync(pair.certPath);
  model = await loadTestModel();
  server = await startTestServer(model, { apiKey: 'secret', tls: { cert: ca, key: readFileSync(pair.keyPath) } });
});

after(async () => {
  await server?.close();
  await model?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

test('the openai client talks to an https API that it trusts, with its key', async () => {
  assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const client = new OpenAI({ apiKey: 'secret', baseURL: `${server.url}/v1`, maxRetries: 0, fetch: fetchTrusting(ca) });
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), [model.modelId]);
  const stream = await client.chat.completions.create({ model: model.modelId, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 4, temperature: 0, stream: true });
  let chunks = 0;
  for await (const chunk of stream) if (chunk.choices[0]) chunks++;
  assert.ok(chunks > 0, 'the stream sent chunks');
  const wrongKey = new OpenAI({ apiKey: 'guess', baseURL: `${server.url}/v1`, maxRetries: 0, fetch: fetchTrusting(ca) });
  await assert.rejects(wrongKey.models.list(), OpenAI.AuthenticationError);
});

test('a client that does not trust the certificate is refused', async () => {
  const client = new OpenAI({ apiKey: 'secret', baseURL: `${server.url}/v1`, maxRetries: 0 });
  await assert.rejects(client.models.list(), OpenAI.APIConnectionError);
});
