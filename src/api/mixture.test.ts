// The mixture through the OpenAI API: attribution in chunks and answers, stored trails served to their
// caller only, 404/400/503 for bad mixtures.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { silentLogger } from '../util/log.ts';
import { getGgml } from '../ggml/runtime.ts';
import { Generator } from '../model/generator.ts';
import type { Specialist } from '../model/mixture/specialist.ts';
import { type TestSpecialists, failingSpecialist, loadTestSpecialists } from '../model/mixture/testing.ts';
import { attributionRoutes } from './attributions.ts';
import { MemoryAttributionStore } from './attributions-store.ts';
import { mixtureSource } from './mixture.ts';
import { type ApiServer, createApiServer } from './server.ts';

let t: TestSpecialists;
let server: ApiServer;
const store = new MemoryAttributionStore();
let specialists: Specialist[] = [];

before(async () => {
  t = await loadTestSpecialists(3);
  const odd: Specialist = { ...failingSpecialist(t.specialists[2]!, 0, 'other-tokenizer'), tokenizerHash: 'sha256:other' };
  specialists = [...t.specialists, odd];
  server = await createApiServer({
    generator: new Generator(t.specialists[0]!.batcher, t.tokenizer),
    tokenizer: t.tokenizer,
    modelId: 'base',
    host: '127.0.0.1',
    port: 0,
    logger: silentLogger,
    models: [mixtureSource({ tokenizer: t.tokenizer, tokenizerHash: 'sha256:gpt2-test', ggml: getGgml({ gpu: 'off' }), specialists: () => specialists, k: 3, store })],
    extraRoutes: attributionRoutes(store),
  });
});
after(async () => {
  await server.close();
  await t.dispose();
});

const post = (path: string, body: unknown, key = 'alice') =>
  fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify(body) });
const get = (path: string, key = 'alice') => fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${key}` } });
const sum = (shares: { share: number }[]) => shares.reduce((a, s) => a + s.share, 0);

interface Share { model: string; share: number }

test('streamed chat: every token chunk carries shares summing to 1; the stored trail is the same', async () => {
  const res = await post('/v1/chat/completions', { model: 'mixture', messages: [{ role: 'user', content: 'Hello there' }], max_tokens: 6, temperature: 0, stream: true });
  assert.equal(res.status, 200);
  const chunks = (await res.text()).split('\n').filter((l) => l.startsWith('data: {')).map((l) => JSON.parse(l.slice(6)) as { id: string; sharedllm?: { attribution: Share[] } });
  const streamed = chunks.filter((c) => c.sharedllm !== undefined).map((c) => c.sharedllm!.attribution);
  assert.ok(streamed.length > 0);
  for (const a of streamed) assert.ok(Math.abs(sum(a) - 1) < 1e-4, JSON.stringify(a));
  const id = chunks[0]!.id;
  const stored = await get(`/v1/attributions/${id}`);
  assert.equal(stored.status, 200);
  const trail = (await stored.json()) as { choices: { tokens: { attribution: Share[] }[]; routed: unknown[] }[] };
  assert.deepEqual(trail.choices[0]!.tokens.map((tok) => tok.attribution), streamed);
  assert.ok(trail.choices[0]!.routed.length >= 1); // the router may drop negligible ones
  assert.equal((await get(`/v1/attributions/${id}`, 'mallory')).status, 404);
  assert.equal((await fetch(`${server.url}/v1/attributions/${id}`, { method: 'DELETE', headers: { authorization: 'Bearer alice' } })).status, 200);
  assert.equal((await get(`/v1/attributions/${id}`)).status, 404);
});

test('non-streamed completion: one attribution list per token, logprobs as for any model', async () => {
  const res = await post('/v1/completions', { model: 'mixture:spec-1,spec-2', prompt: 'Once upon', max_tokens: 5, temperature: 0, logprobs: 2 });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { choices: { sharedllm: { attribution: Share[][] }; logprobs: { tokens: string[] } }[]; usage: { completion_tokens: number } };
  const choice = body.choices[0]!;
  assert.equal(choice.sharedllm.attribution.length, body.usage.completion_tokens);
  assert.equal(choice.logprobs.tokens.length, body.usage.completion_tokens);
  for (const a of choice.sharedllm.attribution) {
    assert.deepEqual(a.map((s) => s.model).sort(), ['spec-1', 'spec-2']);
    assert.ok(Math.abs(sum(a) - 1) < 1e-4);
  }
});

test('responses, streamed: each delta carries its token\'s shares; the final response has them all; the trail is stored', async () => {
  const res = await post('/v1/responses', { model: 'mixture:spec-1,spec-2', input: 'Hello there', max_output_tokens: 6, temperature: 0, stream: true });
  assert.equal(res.status, 200);
  const events = (await res.text()).split('\n').filter((l) => l.startsWith('data: {')).map((l) => JSON.parse(l.slice(6)) as { type: string; sharedllm?: { attribution: Share[] }; response?: { id: string; usage: { output_tokens: number } | null; sharedllm?: { attribution: Share[][] } } });
  const deltas = events.filter((e) => e.type === 'response.output_text.delta');
  const streamed = deltas.map((e) => e.sharedllm?.attribution);
  const final = events.find((e) => e.type === 'response.completed' || e.type === 'response.incomplete')?.response;
  assert.ok(final !== undefined);
  assert.equal(streamed.length, final.usage?.output_tokens, 'one delta per token');
  for (const a of streamed) {
    assert.ok(a !== undefined);
    assert.deepEqual(a.map((s) => s.model).sort(), ['spec-1', 'spec-2']);
    assert.ok(Math.abs(sum(a) - 1) < 1e-4, JSON.stringify(a));
  }
  assert.deepEqual(final.sharedllm?.attribution, streamed);
  assert.equal(events.find((e) => e.type === 'response.created')?.response?.sharedllm, undefined, 'the in-progress snapshot has no attribution yet');
  const trail = (await (await get(`/v1/attributions/${final.id}`)).json()) as { choices: { tokens: { attribution: Share[] }[] }[] };
  assert.deepEqual(trail.choices[0]!.tokens.map((tok) => tok.attribution), streamed);
});

test('responses, not streamed: one attribution list per output token; a plain model has none', async () => {
  const res = await post('/v1/responses', { model: 'mixture:spec-1,spec-2', input: 'Once upon', max_output_tokens: 5, temperature: 0 });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { id: string; usage: { output_tokens: number }; sharedllm: { attribution: Share[][] } };
  assert.equal(body.sharedllm.attribution.length, body.usage.output_tokens);
  for (const a of body.sharedllm.attribution) assert.ok(Math.abs(sum(a) - 1) < 1e-4);
  assert.equal((await get(`/v1/attributions/${body.id}`)).status, 200);
  const plain = (await (await post('/v1/responses', { model: 'base', input: 'Once upon', max_output_tokens: 3 })).json()) as Record<string, unknown>;
  assert.equal(plain.sharedllm, undefined);
});

test('an unknown specialist is a 404, another tokenizer a 400 naming it', async () => {
  const unknown = await post('/v1/chat/completions', { model: 'mixture:spec-1,nope', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(unknown.status, 404);
  assert.match(await unknown.text(), /nope/);
  const mismatch = await post('/v1/chat/completions', { model: 'mixture:spec-1,other-tokenizer', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(mismatch.status, 400);
  assert.match(await mismatch.text(), /other-tokenizer.*tokenizer/);
});

test('every specialist failing is a 503', async () => {
  const saved = specialists;
  specialists = [failingSpecialist(t.specialists[0]!, 'prefill', 'down-1'), failingSpecialist(t.specialists[1]!, 'prefill', 'down-2')];
  try {
    const res = await post('/v1/chat/completions', { model: 'mixture:down-1,down-2', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(res.status, 503);
    assert.match(await res.text(), /down-1.*down-2/s);
  } finally {
    specialists = saved;
  }
});

test('GET /v1/models lists the mixture', async () => {
  const models = (await (await get('/v1/models')).json()) as { data: { id: string }[] };
  assert.deepEqual(models.data.map((m) => m.id), ['base', 'mixture']);
});
