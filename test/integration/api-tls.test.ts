// TLS as a user sets it up with `sharedllm certs`, on real processes: a primary serves the OpenAI API over
// HTTPS (--api-tls-cert/--api-tls-key, with --api-key) and the official `openai` client streams a chat from it;
// a node given http:// for a coordinator that serves HTTPS stops at once and says to use https:// and --ca.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { createSelfSignedCert } from '../../src/federation/coordinator/certs.ts';
import { fetchTrusting } from '../../src/cli/https-fetch.testing.ts';
import { Cluster, type CoordinatorHandle, type PrimaryHandle, modelId, testModel } from './harness.ts';

const cluster = new Cluster();
let coordinator: CoordinatorHandle;
let primary: PrimaryHandle;
let cert: string;
let model: string;

cluster.setup(async () => {
  model = testModel();
  const pair = await createSelfSignedCert({ hosts: ['localhost'], outDir: join(cluster.dir, 'certs') });
  cert = pair.certPath;
  coordinator = await cluster.coordinator({ tls: { cert: pair.certPath, key: pair.keyPath }, relayPort: 0 });
  primary = await cluster.primary('primary', {
    coordinatorUrl: coordinator.url, ca: cert, model, waitWorkers: 0,
    extra: ['--api-tls-cert', pair.certPath, '--api-tls-key', pair.keyPath, '--api-key', 'secret'],
  });
});

cluster.test('the openai client streams a chat from a primary serving HTTPS', async () => {
  assert.match(primary.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const client = new OpenAI({ apiKey: 'secret', baseURL: `${primary.url}/v1`, maxRetries: 0, fetch: fetchTrusting(readFileSync(cert)) });
  const stream = await client.chat.completions.create({ model: modelId(model), messages: [{ role: 'user', content: 'Hello' }], max_tokens: 4, temperature: 0, stream: true });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
  assert.ok(text.length > 0, 'the chat streamed text');
});

cluster.test('a node given http:// for an HTTPS coordinator stops at once and says to use https://', async () => {
  const plain = coordinator.url.replace(/^https:/, 'http:');
  const r = await cluster.run('worker-http', ['node', '--role', 'worker', '--coordinator-url', plain, '--rpc-port', '0', '--data-dir', join(cluster.dir, 'worker-http'), '--log-format', 'text', '--gpu', 'off']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /the coordinator speaks HTTPS: use https:\/\/127\.0\.0\.1:\d+ and --ca/);
});
