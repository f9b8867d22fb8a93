// A worker shared by two primaries: same model, same span, same sequence numbers. Each primary's caches stay
// its own (outputs equal a local run of the span), and a primary that disconnects leaves nothing behind:
// its sequences at once, the span once no primary has used it for `spanIdleMs`.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadModelPart } from '../../model/load.ts';
import type { ModelPart } from '../../model/model-part.ts';
import { cachedModel } from '../../model/testing/cached-model.ts';
import { SHAPES } from '../../model/testing/make-model.ts';
import { mulberry32 } from '../../util/random.ts';
import { silentLogger } from '../../util/log.ts';
import { pollUntil } from '../../util/poll.ts';
import { call, defineMethods, notify } from '../dataplane.ts';
import { type Peer, type TransportServer, connect, listen } from '../transport/rpc.ts';
import { hashFile } from './model-hash.ts';
import { WorkerService } from './worker-service.ts';

const model = cachedModel({ shape: { ...SHAPES.smollm2, tiedEmbeddings: false }, nLayer: 4, type: 'Q8_0', seed: 1 });
const N_EMBD = SHAPES.smollm2.nEmbd;
const dir = mkdtempSync(join(tmpdir(), 'sharedllm-worker-'));
let service: WorkerService;
let server: TransportServer;
let reference: ModelPart;
let span: { modelHash: string; first: number; last: number };

/** A primary: its connection, and the results (or errors) of its steps by step id. */
async function primary(session: string) {
  const results = new Map<number, (r: { hidden?: Float32Array; error?: string }) => void>();
  const peer: Peer = await connect(`127.0.0.1:${server.port}`, {
    session,
    methods: defineMethods({
      step_result: (h, { payload }) => void results.get(h.stepId)?.({ hidden: new Float32Array(payload.buffer.slice(payload.byteOffset, payload.byteOffset + payload.byteLength)) }),
      step_error: (h) => void results.get(h.stepId)?.({ error: h.message }),
    }),
  });
  let nextStep = 1;
  return {
    peer,
    step(seq: number, hidden: Float32Array): Promise<{ hidden?: Float32Array; error?: string }> {
      const stepId = nextStep++;
      const done = new Promise<{ hidden?: Float32Array; error?: string }>((resolve) => results.set(stepId, resolve));
      notify(peer, 'step', { session, stepId, span, groups: [{ seq, n: hidden.length / N_EMBD }], nEmbd: N_EMBD, route: [] }, new Uint8Array(hidden.buffer));
      return done;
    },
  };
}

function randomHidden(n: number, seed: number): Float32Array {
  const rnd = mulberry32(seed);
  return Float32Array.from({ length: n * N_EMBD }, () => rnd() * 2 - 1);
}

before(async () => {
  service = new WorkerService({ nodeId: 'worker-1', cacheDir: dir, modelFiles: [model], threads: 1, gpu: 'off', logger: silentLogger, spanIdleMs: 100 });
  server = await listen({ host: '127.0.0.1', port: 0, methods: service.methods(), session: 'worker-1' });
  service.attach(server);
  span = { modelHash: hashFile(model, dir), first: 2, last: 4 };
  reference = (await loadModelPart(model, { gpu: 'off', threads: 1, nCtx: 64, layout: { embeddings: false, first: 2, last: 4, head: false } })).part;
});

after(async () => {
  await server.close();
  service.dispose();
  reference.dispose();
  rmSync(dir, { recursive: true, force: true });
});

test('two primaries share a span; their sequence 1s keep separate caches; leaving frees sequences, then the span', async () => {
  const a = await primary('primary-a');
  const b = await primary('primary-b');
  const load = (p: Peer) => call(p, 'load_span', { ...span, nCtx: 64, nSeqMax: 2 }).then((r) => r.header.source);
  assert.equal(await load(a.peer), 'local');
  assert.equal(await load(b.peer), 'cache', 'the second primary shares the loaded weights');
  for (const p of [a, b]) await call(p.peer, 'open_seq', { ...span, seq: 1 });

  // The same sequence number, different histories: each must match its own local run.
  const ra = reference.openSequence();
  const rb = reference.openSequence();
  const steps: [typeof a, number, Float32Array][] = [[a, ra, randomHidden(3, 1)], [b, rb, randomHidden(2, 2)], [a, ra, randomHidden(1, 3)], [b, rb, randomHidden(1, 4)]];
  for (const [p, ref, hidden] of steps) {
    const got = await p.step(1, hidden);
    assert.equal(got.error, undefined);
    assert.deepEqual(got.hidden, reference.step([{ seq: ref, hidden }]).hidden, 'worker output equals the local span on the same history');
  }

  // A sequence this primary never opened is an error for it alone.
  assert.match((await b.step(7, randomHidden(1, 5))).error ?? '', /unknown sequence/);

  a.peer.close();
  await pollUntil('primary A\'s sequence freed', () => service.info().openSequences === 1);
  assert.equal(service.spans.size, 1, 'primary B still uses the span');
  assert.equal((await b.step(1, randomHidden(1, 6))).error, undefined, 'B goes on after A left');

  b.peer.close();
  await pollUntil('span freed after the last primary left', () => service.spans.size === 0);
});

test('free_span from the only user frees at once; from one of two users keeps it', async () => {
  const a = await primary('primary-c');
  const b = await primary('primary-d');
  for (const p of [a, b]) await call(p.peer, 'load_span', { ...span, nCtx: 64, nSeqMax: 2 });
  await call(a.peer, 'free_span', span);
  assert.equal(service.spans.size, 1);
  await call(b.peer, 'free_span', span);
  assert.equal(service.spans.size, 0);
  // A span loaded with a smaller context than asked for is refused with a hint, not silently shared.
  await call(a.peer, 'load_span', { ...span, nCtx: 32, nSeqMax: 2 });
  await assert.rejects(call(b.peer, 'load_span', { ...span, nCtx: 64, nSeqMax: 2 }), /smaller context/);
  a.peer.close();
  b.peer.close();
});
