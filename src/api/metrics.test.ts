// GET /metrics: parsed as Prometheus' text format, with the counts of the requests just made (through the
// openai client), and the federation's figures when the node serves GET /v1/federation.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import type { ApiServer } from './server.ts';
import { type TestModel, openAiFixture, startTestServer } from './testing.ts';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A strict reader of the text format: HELP and TYPE before a family's samples, well-formed labels and values. */
function parsePrometheus(text: string): { samples: Sample[]; types: Map<string, string> } {
  assert.ok(text.endsWith('\n'), 'the exposition ends with a newline');
  const types = new Map<string, string>();
  const helped = new Set<string>();
  const samples: Sample[] = [];
  for (const line of text.slice(0, -1).split('\n')) {
    const comment = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line);
    if (comment) {
      if (comment[1] === 'HELP') helped.add(comment[2]!);
      else {
        assert.ok(['counter', 'gauge', 'histogram'].includes(comment[3]!), line);
        assert.ok(!types.has(comment[2]!), `one TYPE per family: ${line}`);
        types.set(comment[2]!, comment[3]!);
      }
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `a sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    const labelText = m[2] ?? '';
    const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/gy;
    let consumed = 0;
    for (let l = labelRe.exec(labelText); l !== null; l = labelRe.exec(labelText)) {
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      consumed = labelRe.lastIndex;
    }
    assert.equal(consumed, labelText.length, `well-formed labels: ${line}`);
    const value = Number(m[3]);
    assert.ok(!Number.isNaN(value), `a number: ${line}`);
    const family = m[1]!.replace(/_(bucket|sum|count)$/, '');
    const known = types.has(m[1]!) ? m[1]! : family;
    assert.ok(types.has(known) && helped.has(known), `HELP and TYPE come before ${m[1]}`);
    samples.push({ name: m[1]!, labels, value });
  }
  return { samples, types };
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

let model: TestModel;
let server: ApiServer;
let client: OpenAI;

openAiFixture((f) => ({ model, server, client } = f));

async function scrape(base: string) {
  const res = await fetch(`${base}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parsePrometheus(await res.text());
}

describe('GET /metrics', () => {
  test('requests by route and status, tokens, slots, step histograms', async () => {
    const chat = await client.chat.completions.create({ model: model.modelId, messages: [{ role: 'user', content: 'Hello' }], temperature: 0, max_tokens: 4 });
    const embedding = await client.embeddings.create({ model: model.modelId, input: 'Hello' });
    await assert.rejects(client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }), OpenAI.NotFoundError);
    assert.equal((await fetch(`${server.url}/no/such/path`)).status, 404);

    const { samples, types } = await scrape(server.url);
    assert.equal(types.get('sharedllm_http_requests_total'), 'counter');
    assert.equal(value(samples, 'sharedllm_http_requests_total', { route: 'POST /v1/chat/completions', status: '200' }), 1);
    assert.equal(value(samples, 'sharedllm_http_requests_total', { route: 'POST /v1/chat/completions', status: '404' }), 1);
    assert.equal(value(samples, 'sharedllm_http_requests_total', { route: 'POST /v1/embeddings', status: '200' }), 1);
    assert.equal(value(samples, 'sharedllm_http_requests_total', { route: 'unmatched', status: '404' }), 1);
    assert.equal(value(samples, 'sharedllm_completion_tokens_total'), chat.usage!.completion_tokens);
    assert.equal(value(samples, 'sharedllm_prompt_tokens_total'), chat.usage!.prompt_tokens + embedding.usage.prompt_tokens);
    assert.equal(value(samples, 'sharedllm_requests_active'), 0);
    assert.equal(value(samples, 'sharedllm_requests_queued'), 0);
    assert.equal(value(samples, 'sharedllm_requests_max_concurrent'), 4);
    assert.equal(types.get('sharedllm_token_seconds'), 'histogram');
    assert.equal(value(samples, 'sharedllm_time_to_first_token_seconds_count'), 1);
    // One step per sampled token; the first is the prefill's. A sampled end-of-generation token counts too.
    assert.ok(value(samples, 'sharedllm_token_seconds_count')! >= chat.usage!.completion_tokens - 1);
    const buckets = samples.filter((s) => s.name === 'sharedllm_token_seconds_bucket');
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]!.value >= buckets[i - 1]!.value, 'buckets are cumulative');
    assert.equal(buckets.at(-1)!.labels.le, '+Inf');
    assert.equal(buckets.at(-1)!.value, value(samples, 'sharedllm_token_seconds_count'));
    assert.equal(value(samples, 'sharedllm_failovers_total'), undefined, 'no federation, no federation figures');

    const again = await scrape(server.url);
    assert.equal(value(again.samples, 'sharedllm_http_requests_total', { route: 'GET /metrics', status: '200' }), 1);
  });

  test("a primary's federation figures: plan, failovers, step medians per worker", async () => {
    const federation = {
      model: 'm',
      plan: [
        { nodeId: 'primary-1', first: 0, last: 1, where: 'local' },
        { nodeId: 'worker-"a"', first: 1, last: 2, where: '10.0.0.2:50052' },
      ],
      recoveries: [{ nodeId: 'worker-b', ms: 1500, replacement: 'worker-"a"' }],
      decodeTimings: { steps: 12, totalMs: 40, localMs: 10, workerMs: { 'worker-"a"': 25 }, hopsMs: 5 },
    };
    const primary = await startTestServer(model, { extraRoutes: (router) => router.add('GET', '/v1/federation', () => ({ body: federation })) });
    try {
      const { samples } = await scrape(primary.url);
      assert.equal(value(samples, 'sharedllm_pipeline_layers', { node_id: 'worker-"a"', where: '10.0.0.2:50052', first: '1', last: '2' }), 1);
      assert.equal(value(samples, 'sharedllm_failovers_total'), 1);
      assert.equal(value(samples, 'sharedllm_failover_seconds_total'), 1.5);
      assert.equal(value(samples, 'sharedllm_decode_step_median_seconds', { part: 'total' }), 0.04);
      assert.equal(value(samples, 'sharedllm_decode_step_median_seconds', { part: 'hops' }), 0.005);
      assert.equal(value(samples, 'sharedllm_worker_decode_compute_median_seconds', { node_id: 'worker-"a"' }), 0.025);
      // The scrape counts as GET /metrics, not as the /v1/federation handler it read.
      const again = await scrape(primary.url);
      assert.equal(value(again.samples, 'sharedllm_http_requests_total', { route: 'GET /metrics', status: '200' }), 1);
      assert.equal(value(again.samples, 'sharedllm_http_requests_total', { route: 'GET /v1/federation' }), undefined);
    } finally {
      await primary.close();
    }
  });
});
