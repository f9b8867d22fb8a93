// A federation of real processes on loopback: coordinator, two workers (127.0.0.2 and 127.0.0.3) and a
// primary serving the OpenAI API. Greedy text through the pipeline equals a single-node run; workers really
// hold their layers; the official `openai` client streams a chat; the coordinator restarts and the nodes check
// in again by themselves; a worker killed mid-generation costs nothing but a recovery.
// The tests run in order on one cluster (the last one kills a worker).
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import type { NodeView } from '../../src/federation/protocol.ts';
import { call } from '../../src/federation/dataplane.ts';
import { ConnectError, connect } from '../../src/federation/transport/rpc.ts';
import { asMember } from './member-probe.ts';
import { type CoordinatorHandle, Cluster, type NodeHandle, type PrimaryHandle, complete, getJson, modelId, testModel, until } from './harness.ts';

const PROMPT = 'The quick brown fox';
const N_TOKENS = 48;

interface Federation {
  modelHash: string;
  layers: number;
  plan: { nodeId: string; first: number; last: number; where: string }[];
  recoveries: { nodeId: string; ms: number; replacement: string }[];
  decodeTimings: { steps: number; totalMs: number; localMs: number; workerMs: Record<string, number>; hopsMs: number };
}

const cluster = new Cluster();
let model: string;
let id: string;
let reference: string;
let coordinator: CoordinatorHandle;
let workers: (NodeHandle & { port: number; host: string })[];
let primary: PrimaryHandle;

const federation = () => getJson<Federation>(`${primary.url}/v1/federation`);

cluster.setup(async () => {
  model = testModel();
  id = modelId(model);
  coordinator = await cluster.coordinator();
  const start = (name: string, host: string) => cluster.worker(name, { coordinatorUrl: coordinator.url, host }).then((w) => ({ ...w, host }));
  const [ref, a, b] = await Promise.all([cluster.referenceText(model, PROMPT, N_TOKENS), start('worker-a', '127.0.0.2'), start('worker-b', '127.0.0.3')]);
  reference = ref;
  workers = [a, b];
  primary = await cluster.primary('primary', { coordinatorUrl: coordinator.url, model, waitWorkers: 2, extra: ['--rebalance-interval', '1'] });
  assert.ok(new Set(reference.split(/\s+/)).size > 4, `the reference text should be varied, got ${JSON.stringify(reference)}`);
});

cluster.test('a) each worker holds its planned layers, and the text equals a single-node greedy run', async (t) => {
  const fed = await federation();
  // Contiguous spans covering every layer, the primary first.
  assert.equal(fed.plan[0]!.nodeId, primary.nodeId);
  let at = 0;
  for (const s of fed.plan) {
    assert.equal(s.first, at, `spans are contiguous: ${JSON.stringify(fed.plan)}`);
    at = s.last;
  }
  assert.equal(at, fed.layers);
  for (const w of workers) {
    const planned = fed.plan.find((s) => s.nodeId === w.nodeId);
    assert.ok(planned && planned.last > planned.first, `worker ${w.nodeId} has layers in ${JSON.stringify(fed.plan)}`);
    assert.equal(planned.where, `${w.host}:${w.port}`);
    // Ask the worker itself, over its data-plane port: as a member (a node identity the coordinator lists);
    // an anonymous connection is refused before any method runs.
    await assert.rejects(connect(`${w.host}:${w.port}`, { session: 'anonymous' }), (e: unknown) => e instanceof ConnectError && e.code === 'unauthenticated');
    await asMember(coordinator.url, {}, async (auth) => {
      const peer = await connect(`${w.host}:${w.port}`, { session: 'integration-test', auth });
      try {
        const { header: info } = await call(peer, 'info', {});
        assert.equal(info.nodeId, w.nodeId);
        assert.equal(info.spans.length, 1);
        assert.deepEqual({ ...info.spans[0], nCtx: 0, bytes: 0 }, { modelHash: fed.modelHash, first: planned.first, last: planned.last, nCtx: 0, bytes: 0 });
        assert.ok(info.spans[0]!.bytes > 0);
        t.diagnostic(`${w.nodeId} at ${w.host}:${w.port} holds layers [${planned.first},${planned.last}) (${info.spans[0]!.bytes} bytes)`);
      } finally {
        peer.close();
      }
    });
  }
  assert.equal(await complete(primary.url, id, PROMPT, N_TOKENS), reference);
  // Where the decode steps' time went: every worker reported its compute in the step trace.
  const { decodeTimings: dt } = await federation();
  assert.ok(dt.steps >= N_TOKENS - 1, `decode steps recorded: ${JSON.stringify(dt)}`);
  assert.deepEqual(Object.keys(dt.workerMs).sort(), workers.map((w) => w.nodeId).sort());
  t.diagnostic(`decode step ${dt.totalMs.toFixed(1)} ms: primary ${dt.localMs.toFixed(1)}, workers ${Object.values(dt.workerMs).map((x) => x.toFixed(1)).join(' + ')}, hops ${dt.hopsMs.toFixed(1)}`);
});

cluster.test('g) the official openai client streams a chat from the primary', async () => {
  const client = new OpenAI({ baseURL: `${primary.url}/v1`, apiKey: 'not-needed', maxRetries: 0 });
  const request = { model: id, messages: [{ role: 'user' as const, content: 'Tell me about foxes.' }], max_tokens: 16, temperature: 0 };
  const stream = await client.chat.completions.create({ ...request, stream: true });
  let text = '';
  let chunks = 0;
  let finish: string | null | undefined;
  for await (const chunk of stream) {
    chunks++;
    text += chunk.choices[0]?.delta?.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.ok(chunks > 2, `several chunks, got ${chunks}`);
  assert.equal(finish, 'length');
  const whole = await client.chat.completions.create({ ...request, stream: false });
  assert.ok(text.length > 0);
  assert.equal(text, whole.choices[0]!.message.content, 'greedy: the stream and the whole answer agree');
});

cluster.test('c) the coordinator restarts: nodes check in again by themselves and the API keeps serving', async (t) => {
  await coordinator.proc.stop('SIGKILL');
  // The data plane does not need the coordinator.
  assert.equal(await complete(primary.url, id, PROMPT, N_TOKENS), reference);
  const restartedAt = Date.now();
  coordinator = await cluster.startCoordinatorAgain(coordinator);
  const ids = [primary.nodeId, ...workers.map((w) => w.nodeId)];
  const back = await until('every node to check in with the restarted coordinator', async () => {
    const { nodes } = await getJson<{ nodes: NodeView[] }>(`${coordinator.url}/v1/nodes`);
    const alive = nodes.filter((n) => ids.includes(n.nodeId) && n.state === 'alive' && n.lastSeen >= restartedAt);
    return alive.length === ids.length ? alive : undefined;
  });
  t.diagnostic(`back: ${back.map((n) => `${n.role} ${n.nodeId}`).join(', ')}`);
  assert.equal(await complete(primary.url, id, PROMPT, N_TOKENS), reference);
});

cluster.test('b) a worker killed mid-generation: the request completes with the undisturbed text', async (t) => {
  const before = await federation();
  const victim = workers.find((w) => w.nodeId === before.plan[1]!.nodeId)!;
  const res = await fetch(`${primary.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: id, prompt: PROMPT, max_tokens: N_TOKENS, temperature: 0, stream: true }),
  });
  assert.equal(res.status, 200);
  let text = '';
  let killed = false;
  for await (const data of sseData(res)) {
    if (data === '[DONE]') break;
    const chunk = JSON.parse(data) as { choices: { text: string }[]; error?: unknown };
    assert.equal(chunk.error, undefined, `stream error: ${data}`);
    text += chunk.choices[0]?.text ?? '';
    if (!killed && text.length > 0) {
      victim.proc.child.kill('SIGKILL');
      killed = true;
    }
  }
  assert.equal(text, reference);
  await victim.proc.exited;
  const midStream = (await federation()).recoveries.some((x) => x.nodeId === victim.nodeId);
  // Had the stream finished before the kill took effect, this request is the one that recovers.
  assert.equal(await complete(primary.url, id, PROMPT, N_TOKENS), reference);
  const after = await federation();
  const r = after.recoveries.find((x) => x.nodeId === victim.nodeId);
  assert.ok(r, `a recovery from ${victim.nodeId}: ${JSON.stringify(after.recoveries)}`);
  assert.ok(!after.plan.some((s) => s.nodeId === victim.nodeId), 'the dead worker left the plan');
  t.diagnostic(`recovery from SIGKILL of ${victim.nodeId} (${midStream ? 'during the stream' : 'on the next request'}): ${Math.round(r.ms)} ms to re-plan and replay, layers [${before.plan[1]!.first},${before.plan[1]!.last}) now on ${r.replacement}`);
});

cluster.test('h) layers the primary took over go back to a worker that joins later', async (t) => {
  const taken = (await federation()).plan.slice(1).filter((s) => s.where === 'primary');
  assert.ok(taken.length > 0, 'after b) the primary runs the failed worker\'s layers itself');
  const joined = await cluster.worker('worker-c', { coordinatorUrl: coordinator.url, host: '127.0.0.4' });
  const t0 = Date.now();
  const plan = await until('the span moved to the new worker', async () => {
    const p = (await federation()).plan;
    return p.slice(1).some((s) => s.where === 'primary') ? undefined : p;
  });
  const span = plan.find((s) => s.nodeId === joined.nodeId);
  assert.ok(span, `the new worker holds layers: ${JSON.stringify(plan)}`);
  assert.deepEqual([span.first, span.last], [taken[0]!.first, taken[0]!.last]);
  assert.equal(await complete(primary.url, id, PROMPT, N_TOKENS), reference);
  t.diagnostic(`layers [${span.first},${span.last}) moved back to ${joined.nodeId} ${Date.now() - t0} ms after it started`);
});

/** The `data:` payloads of a server-sent-events response. */
async function* sseData(res: Response): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buf = '';
  for await (const part of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(part, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const event = buf.slice(0, i);
      buf = buf.slice(i + 2);
      for (const line of event.split('\n')) if (line.startsWith('data: ')) yield line.slice(6);
    }
  }
}
