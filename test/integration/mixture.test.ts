// The mixture across two real primaries (issue 13): A serves a specialist and mixes it with one that B lends
// (B: --mixture-listen, A: --mixture-peer; both prove their node identity in HELLO). The streamed attribution
// of every token sums to 1 and names the remote specialist; GET /v1/attributions/{id} returns the same trail;
// B killed mid-answer, A finishes the answer from its own specialist and the trail says when B dropped out.
import assert from 'node:assert/strict';
import { SHAPES } from '../../src/model/testing/make-model.ts';
import { cachedModel } from '../../src/model/testing/cached-model.ts';
import { Cluster, type PrimaryHandle, freePort, getJson, modelId, testModel, until } from './harness.ts';

const cluster = new Cluster();
let a: PrimaryHandle;
let b: PrimaryHandle;
let localId: string;
let remoteId: string;
let mixture: string;

interface Share { model: string; share: number }
interface Chunk { id: string; choices: { delta: { content?: string }; finish_reason: string | null }[]; sharedllm?: { attribution: Share[] } }
interface Trail { choices: { tokens: { attribution: Share[] }[]; dropped: { model: string; atToken: number }[] }[] }

const specialist = (seed: number) => cachedModel({ shape: { ...SHAPES.smollm2, tiedEmbeddings: false }, nLayer: 2, type: 'Q8_0', seed });
const sum = (shares: readonly Share[]) => shares.reduce((n, s) => n + s.share, 0);

/** Streams a chat completion, calling `onAttribution` with each token's count so far; returns the chunks. */
async function streamChat(url: string, model: string, maxTokens: number, onAttribution?: (n: number) => void | Promise<void>): Promise<Chunk[]> {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer user-a' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'Tell me a long story' }], max_tokens: maxTokens, temperature: 0, stream: true }),
  });
  if (res.status !== 200) assert.fail(`${res.status}: ${await res.text()}`);
  const chunks: Chunk[] = [];
  const decoder = new TextDecoder();
  let buffered = '';
  let attributed = 0;
  for await (const bytes of res.body!) {
    buffered += decoder.decode(bytes as Uint8Array, { stream: true });
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (!line.startsWith('data: {')) continue;
      const chunk = JSON.parse(line.slice(6)) as Chunk & { error?: unknown };
      assert.equal(chunk.error, undefined, line);
      chunks.push(chunk);
      if (chunk.sharedllm) await onAttribution?.(++attributed);
    }
  }
  return chunks;
}

cluster.setup(async () => {
  const coordinator = await cluster.coordinator();
  const lendPort = await freePort();
  const common = { coordinatorUrl: coordinator.url, model: testModel(), waitWorkers: 0, localLayers: 4 };
  localId = modelId(specialist(2));
  remoteId = modelId(specialist(4));
  mixture = `mixture:${localId},${remoteId}`;
  b = await cluster.primary('primary-b', { ...common, extra: ['--specialist', specialist(4), '--mixture-listen', `127.0.0.1:${lendPort}`] });
  a = await cluster.primary('primary-a', { ...common, extra: ['--specialist', specialist(2), '--mixture-peer', `127.0.0.1:${lendPort}`] });
  // A has connected to B and listed its specialist once the named mixture resolves.
  await until('A mixes B\'s specialist', async () => {
    const r = await fetch(`${a.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: mixture, prompt: 'hi', max_tokens: 1 }) });
    return r.status === 200 || undefined;
  });
});

cluster.test('streamed attribution names the remote specialist and sums to 1; the stored trail is the same', async () => {
  const chunks = await streamChat(a.url, mixture, 12);
  const streamed = chunks.filter((c) => c.sharedllm !== undefined).map((c) => c.sharedllm!.attribution);
  assert.ok(streamed.length > 0);
  for (const shares of streamed) {
    assert.ok(Math.abs(sum(shares) - 1) < 1e-4, JSON.stringify(shares));
    assert.deepEqual(shares.map((s) => s.model).sort(), [localId, remoteId].sort());
  }
  const trail = await getJson<Trail>(`${a.url}/v1/attributions/${chunks[0]!.id}`, { headers: { authorization: 'Bearer user-a' } });
  assert.deepEqual(trail.choices[0]!.tokens.map((t) => t.attribution), streamed);
  const other = await fetch(`${a.url}/v1/attributions/${chunks[0]!.id}`, { headers: { authorization: 'Bearer user-b' } });
  assert.equal(other.status, 404);
});

cluster.test('B killed mid-answer: A finishes from its own specialist; the trail shows the drop', async () => {
  const times: number[] = [];
  let killedAt = 0;
  const chunks = await streamChat(a.url, mixture, 120, async (n) => {
    times.push(Date.now());
    if (n === 2) {
      await b.proc.stop('SIGKILL');
      killedAt = Date.now();
    }
  });
  const last = chunks.at(-1)!;
  const trail = await getJson<Trail>(`${a.url}/v1/attributions/${chunks[0]!.id}`, { headers: { authorization: 'Bearer user-a' } });
  const tokens = trail.choices[0]!.tokens.length;
  assert.ok(tokens > 4, `the answer ended after ${tokens} tokens (${JSON.stringify(last)}): too short to test a drop`);
  assert.ok(last.choices[0]?.finish_reason === 'length' || last.choices[0]?.finish_reason === 'stop', JSON.stringify(last));
  const streamed = chunks.filter((c) => c.sharedllm !== undefined).map((c) => c.sharedllm!.attribution);
  for (const shares of streamed) assert.ok(Math.abs(sum(shares) - 1) < 1e-4);
  assert.deepEqual(streamed.at(-1)!.map((s) => s.model), [localId], `${tokens} tokens, dropped: ${JSON.stringify(trail.choices[0]!.dropped)}; chunks at +${times.map((t) => t - times[0]!).join(',')} ms, killed at +${killedAt - times[0]!} ms`);
  assert.deepEqual(trail.choices[0]!.tokens.map((t) => t.attribution), streamed);
  assert.equal(trail.choices[0]!.dropped[0]?.model, remoteId);
});
