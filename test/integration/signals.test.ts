// SIGTERM and SIGINT on real processes: every role runs its orderly shutdown and exits 0. A primary with a
// stream in flight ends it properly (completed, or an SSE error frame: never a dropped connection) and
// leaves the coordinator; so does a worker; the coordinator stops last. While a primary drains, new requests
// get 503; a second signal then stops it at once.
// The tests run in order on one cluster (they stop its processes one by one).
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { NodeListSchema, type NodeView } from '../../src/federation/protocol.ts';
import { Cluster, type CoordinatorHandle, type NodeHandle, type PrimaryHandle, getJson, modelId, testModel } from './harness.ts';

/** Longer than the primary's drain (SHUTDOWN.drainMs) and leave together: the harness kills after this. */
const STOP_GRACE_MS = 30_000;

const cluster = new Cluster();
let model: string;
let id: string;
let coordinator: CoordinatorHandle;
let worker: NodeHandle;
let primary: PrimaryHandle;

cluster.setup(async () => {
  model = testModel();
  id = modelId(model);
  coordinator = await cluster.coordinator();
  worker = await cluster.worker('worker', { coordinatorUrl: coordinator.url, host: '127.0.0.1' });
  primary = await cluster.primary('primary', { coordinatorUrl: coordinator.url, model, waitWorkers: 1 });
});

async function stateOf(nodeId: string): Promise<NodeView['state'] | undefined> {
  const { nodes } = NodeListSchema.parse(await getJson(`${coordinator.url}/v1/nodes`));
  return nodes.find((n) => n.nodeId === nodeId)?.state;
}

/** POST JSON; the status and the body text, or the connection error when there was no answer. */
async function post(url: string, body: unknown): Promise<{ status: number; text: string } | { error: string }> {
  try {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, text: await res.text() };
  } catch (error) {
    return { error: String((error as Error).cause ?? error) };
  }
}

/**
 * A request whose body never finishes arriving: it stays in flight, so a draining server has to wait for
 * it (the whole drain period). Resolves once the server is handling it: with `Expect: 100-continue`, node's
 * server answers "100 Continue" as it hands the request to the API.
 */
function hangingRequest(url: string): Promise<{ abort(): void }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': '1000', expect: '100-continue' } });
    req.on('error', reject);
    req.on('continue', () => {
      req.off('error', reject);
      req.on('error', () => {});
      req.write('{"model": ', () => resolve({ abort: () => req.destroy() }));
    });
    req.flushHeaders();
  });
}

cluster.test('while a primary drains, new requests get 503; a second signal stops it at once', async () => {
  // Its own layers only, so that stopping it at once costs the main primary and the worker nothing.
  const second = await cluster.primary('primary-second', { coordinatorUrl: coordinator.url, model, waitWorkers: 0, extra: ['--local-layers', '4'] });
  const hanging = await hangingRequest(`${second.url}/v1/chat/completions`);
  try {
    second.proc.child.kill('SIGTERM');
    await second.proc.waitFor(/SIGTERM: shutting down/);
    const refused = await post(`${second.url}/v1/chat/completions`, { model: id, messages: [{ role: 'user', content: 'hi' }] });
    assert.ok('status' in refused, `a draining server still answers: ${JSON.stringify(refused)}`);
    assert.equal(refused.status, 503, refused.text);
    const body = JSON.parse(refused.text) as { error: { message: string; type: string } };
    assert.match(body.error.message, /shutting down/);
    assert.equal(body.error.type, 'unavailable_error');
    // The hanging request keeps the drain going: a second signal must not wait for it.
    const exit = await second.proc.stop('SIGTERM', STOP_GRACE_MS);
    assert.deepEqual(exit, { code: 143, signal: null }, second.proc.tail());
    assert.match(second.proc.stderr, /second SIGTERM: stopping at once/);
  } finally {
    hanging.abort();
  }
});

cluster.test('SIGINT stops a worker in order: exit 0, and the coordinator lists it as left', async () => {
  const spare = await cluster.worker('worker-sigint', { coordinatorUrl: coordinator.url, host: '127.0.0.1' });
  assert.equal(await stateOf(spare.nodeId), 'alive');
  assert.deepEqual(await spare.proc.stop('SIGINT', STOP_GRACE_MS), { code: 0, signal: null }, spare.proc.tail());
  assert.equal(await stateOf(spare.nodeId), 'left');
});

cluster.test('SIGTERM to the primary mid-stream, then the worker, then the coordinator: each exits 0, nodes leave', async (t) => {
  const res = await fetch(`${primary.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: id, messages: [{ role: 'user', content: 'Tell me a long story.' }], max_tokens: 200, temperature: 0, stream: true }),
  });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const first = await reader.read();
  text += decoder.decode(first.value, { stream: true });
  assert.match(text, /^data: \{/, 'the stream has started');

  const exited = primary.proc.stop('SIGTERM', STOP_GRACE_MS);
  // Read to the end: a dropped connection would throw here.
  for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) text += decoder.decode(chunk.value, { stream: true });
  const frames = text.split('\n\n');
  assert.equal(frames.pop(), '', 'the stream ends on a frame boundary');
  const last = frames.at(-1)!;
  t.diagnostic(`the stream ${last === 'data: [DONE]' ? 'completed' : 'was ended with an error frame'} after ${frames.length} frames`);
  if (last !== 'data: [DONE]') {
    // Ended by the shutdown: OpenAI's error frame, no [DONE].
    const frame = JSON.parse(last.replace(/^data: /, '')) as { error?: { message: string; type: string } };
    assert.match(frame.error?.message ?? '', /shutting down/, `last frame: ${last}`);
    assert.equal(frame.error?.type, 'unavailable_error');
  }

  assert.deepEqual(await exited, { code: 0, signal: null }, primary.proc.tail());
  assert.match(primary.proc.stderr, /SIGTERM: shutting down/);
  assert.equal(await stateOf(primary.nodeId), 'left');

  assert.deepEqual(await worker.proc.stop('SIGTERM', STOP_GRACE_MS), { code: 0, signal: null }, worker.proc.tail());
  assert.equal(await stateOf(worker.nodeId), 'left');

  assert.deepEqual(await coordinator.proc.stop('SIGTERM', STOP_GRACE_MS), { code: 0, signal: null }, coordinator.proc.tail());
});
