// The mixture across two real primaries (issue 13): A serves two specialists (stacked: one graph a token for
// both) and mixes them with one that B lends.
// B lends with --mixture-listen; A is told nothing: it finds B in the directory (B's serving record for the
// published manifest carries B's lending address, gossiped through the coordinator) and dials it over the
// authenticated data plane (both prove their node identity in HELLO). The streamed attribution of every
// token sums to 1 and names the remote specialist; GET /v1/attributions/{id} returns the same trail; B
// killed mid-answer, A finishes the answer from its own specialist and the trail says when B dropped out.
// (--mixture-peer, the explicit override, is covered by src/federation/mixture/link.test.ts.)
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { SpecialistView } from '../../src/federation/protocol-directory.ts';
import { SHAPES } from '../../src/model/testing/make-model.ts';
import { cachedModel } from '../../src/model/testing/cached-model.ts';
import { Cluster, type PrimaryHandle, freePort, getJson, modelId, testModel, until } from './harness.ts';

const cluster = new Cluster();
let a: PrimaryHandle;
let b: PrimaryHandle;
let localId: string;
let localId2: string;
let remoteId: string;
let mixture: string;

interface Share { model: string; share: number }
interface Chunk { id: string; choices: { delta: { content?: string }; finish_reason: string | null }[]; sharedllm?: { attribution: Share[] } }
interface Federation { mixture: { lenders: { addr: string; nodeId?: string; discovered: boolean; specialists: string[] }[]; bans: { nodeId: string }[] } }
interface Trail { choices: { tokens: { attribution: Share[] }[]; dropped: { model: string; atToken: number }[] }[] }

/** Fast rounds: A hears of B's serving record within a second or two. */
const GOSSIP = ['--gossip-interval', '0.25'];
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
  localId2 = modelId(specialist(3));
  remoteId = 'test-remote';
  mixture = `mixture:${localId},${localId2},${remoteId}`;
  b = await cluster.primary('primary-b', { ...common, extra: [...GOSSIP, '--specialist', specialist(4), '--mixture-listen', `127.0.0.1:${lendPort}`] });
  a = await cluster.primary('primary-a', { ...common, extra: [...GOSSIP, '--specialist', specialist(2), '--specialist', specialist(3)] });
  await a.proc.waitFor(/mixture_stacked/, 60_000); // A's two specialists share a shape: one stack
  // B's specialist gets a manifest (published at the coordinator): B signs a serving record with its address.
  const manifest = join(cluster.dir, 'remote.json');
  const made = await cluster.run('manifest', ['specialist', 'manifest', '--model', specialist(4), '--id', remoteId, '--domain', 'test', '--description', 'lent by B', '--data-dir', join(cluster.dir, 'publisher'), '--out', manifest]);
  assert.equal(made.code, 0, made.stderr);
  const published = await cluster.run('publish', ['specialist', 'publish', '--manifest', manifest, '--coordinator-url', coordinator.url, '--model', specialist(4)]);
  assert.equal(published.code, 0, published.stderr);
  const record = await until("A's directory names B's lending address", async () => {
    const { specialists } = await getJson<{ specialists: SpecialistView[] }>(`${a.url}/v1/specialists`);
    return specialists.find((v) => v.modelId === remoteId)?.servedBy.find((r) => r.nodeId === b.nodeId && r.mixtureAddr !== undefined);
  });
  assert.equal(record.mixtureAddr, `127.0.0.1:${lendPort}`);
  // A has dialled B and listed its specialist once the named mixture resolves.
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
    assert.deepEqual(shares.map((s) => s.model).sort(), [localId, localId2, remoteId].sort());
  }
  const trail = await getJson<Trail>(`${a.url}/v1/attributions/${chunks[0]!.id}`, { headers: { authorization: 'Bearer user-a' } });
  assert.deepEqual(trail.choices[0]!.tokens.map((t) => t.attribution), streamed);
  const other = await fetch(`${a.url}/v1/attributions/${chunks[0]!.id}`, { headers: { authorization: 'Bearer user-b' } });
  assert.equal(other.status, 404);
  const { mixture: links } = await getJson<Federation>(`${a.url}/v1/federation`);
  assert.deepEqual(links.lenders.map((l) => [l.nodeId, l.discovered, l.specialists]), [[b.nodeId, true, [remoteId]]], 'B was found in the directory');
});

cluster.test('B killed mid-answer: A finishes from its own specialists; the trail shows the drop', async () => {
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
  assert.deepEqual(streamed.at(-1)!.map((s) => s.model).sort(), [localId, localId2].sort(), `${tokens} tokens, dropped: ${JSON.stringify(trail.choices[0]!.dropped)}; chunks at +${times.map((t) => t - times[0]!).join(',')} ms, killed at +${killedAt - times[0]!} ms`);
  assert.deepEqual(trail.choices[0]!.tokens.map((t) => t.attribution), streamed);
  assert.equal(trail.choices[0]!.dropped[0]?.model, remoteId);
  // B's address no longer answers: A bans it (its record stays in the directory: SIGKILL withdrew nothing).
  await until('A bans B', async () => (await getJson<Federation>(`${a.url}/v1/federation`)).mixture.bans.some((x) => x.nodeId === b.nodeId) || undefined);
});
