// A worker shared by two primaries: same model, same span, same sequence numbers. Each primary's caches stay
// its own (outputs equal a local run of the span), and a primary that disconnects leaves nothing behind:
// its sequences at once, the span once no primary has used it for `spanIdleMs`.
// Then who may use a worker: only members that prove their key (and the join token) connect; only primaries
// load spans and touch sequences, each only its own whatever session it names; a route may only name a
// registered worker at its registered address; a primary gets no more sequences than the nSeqMax it asked for.
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
import { createEphemeralIdentity } from '../identity.ts';
import type { Identity } from '../identity.ts';
import type { Hop } from '../protocol-dataplane.ts';
import { FrameKind } from '../transport/frame.ts';
import { ConnectError, RemoteError, type Peer, type TransportServer, connect, listen } from '../transport/rpc.ts';
import { helloFrame, RawClient } from '../transport/testing.ts';
import { type Member, StaticMembership } from './membership.ts';
import { hashFile } from './model-hash.ts';
import { WorkerService } from './worker-service.ts';
import type { WorkerLimits } from './worker-limits.ts';

const model = cachedModel({ shape: { ...SHAPES.smollm2, tiedEmbeddings: false }, nLayer: 4, type: 'Q8_0', seed: 1 });
const N_EMBD = SHAPES.smollm2.nEmbd;
const TOKEN = 'federation-token';
const dir = mkdtempSync(join(tmpdir(), 'sharedllm-worker-'));
const membership = new StaticMembership();
let modelHash: string;
let service: WorkerService;
let server: TransportServer;
let reference: ModelPart;
let span: { modelHash: string; first: number; last: number };

function register(identity: Identity, role: 'primary' | 'worker', extra: Partial<Member> = {}): void {
  membership.add({ nodeId: identity.id, publicKey: identity.publicKey, role, addrs: [], models: role === 'primary' ? [modelHash] : [], ...extra });
}

async function startWorker(nodeId: string, limits: Partial<WorkerLimits> = {}): Promise<{ service: WorkerService; server: TransportServer; identity: Identity }> {
  const identity = createEphemeralIdentity();
  const service = new WorkerService({ nodeId: identity.id, identity, joinToken: TOKEN, membership, cacheDir: join(dir, nodeId), modelFiles: [model], threads: 1, gpu: 'off', logger: silentLogger, spanIdleMs: 100, limits });
  const server = await listen({ host: '127.0.0.1', port: 0, methods: service.methods(), session: nodeId, auth: service.auth(), limits: service.frameLimits() });
  service.attach(server);
  register(identity, 'worker', { addrs: [`127.0.0.1:${server.port}`] });
  return { service, server, identity };
}

type Result = { hidden?: Float32Array; error?: string };

/** A primary (registered as one unless `role` says otherwise): its connection, and its steps' results by step id. */
async function primary(session: string, opts: { role?: 'primary' | 'worker'; identity?: Identity; port?: number; results?: Map<number, (r: Result) => void> } = {}) {
  const identity = opts.identity ?? createEphemeralIdentity();
  if (opts.identity === undefined) register(identity, opts.role ?? 'primary');
  // The last hop answers on the primary's connection to it: a primary with several shares one result table.
  const results = opts.results ?? new Map<number, (r: Result) => void>();
  const peer: Peer = await connect(`127.0.0.1:${opts.port ?? server.port}`, {
    session,
    auth: { identity, token: TOKEN },
    methods: defineMethods({
      step_result: (h, { payload }) => void results.get(h.stepId)?.({ hidden: new Float32Array(payload.buffer.slice(payload.byteOffset, payload.byteOffset + payload.byteLength)) }),
      step_error: (h) => void results.get(h.stepId)?.({ error: h.message }),
    }),
  });
  let nextStep = 1;
  return {
    peer,
    identity,
    results,
    /** One step of `seq`; `as` names another session in the header (an attacker's trick). */
    step(seq: number, hidden: Float32Array, opts2: { route?: Hop[]; as?: string; span?: typeof span } = {}): Promise<Result> {
      const stepId = nextStep++;
      const done = new Promise<Result>((resolve) => results.set(stepId, resolve));
      notify(peer, 'step', { session: opts2.as ?? session, stepId, span: opts2.span ?? span, groups: [{ seq, n: hidden.length / N_EMBD }], nEmbd: N_EMBD, route: opts2.route ?? [] }, new Uint8Array(hidden.buffer));
      return done;
    },
  };
}

function randomHidden(n: number, seed: number): Float32Array {
  const rnd = mulberry32(seed);
  return Float32Array.from({ length: n * N_EMBD }, () => rnd() * 2 - 1);
}

/** Resolves with `promise`'s value, or 'silence' when nothing came within `ms`. */
const within = <T>(promise: Promise<T>, ms: number) => Promise.race([promise, new Promise<'silence'>((r) => setTimeout(() => r('silence'), ms))]);
const remoteCode = (code: string) => (error: unknown) => error instanceof RemoteError && error.code === code;

before(async () => {
  modelHash = hashFile(model, dir);
  ({ service, server } = await startWorker('worker-1'));
  span = { modelHash, first: 2, last: 4 };
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
  reference.closeSequence(ra);
  reference.closeSequence(rb);
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
  await pollUntil('span freed', () => service.spans.size === 0);
});

test('an unauthenticated connection is refused before any method runs', async () => {
  const refused = (code: string) => (error: unknown) => error instanceof ConnectError && error.code === code;
  await assert.rejects(connect(`127.0.0.1:${server.port}`, { session: 'anonymous' }), refused('unauthenticated'));
  // The token but no membership, and membership but not the token: both refused in HELLO.
  await assert.rejects(connect(`127.0.0.1:${server.port}`, { session: 'stranger', auth: { identity: createEphemeralIdentity(), token: TOKEN } }), refused('not_member'));
  const member = createEphemeralIdentity();
  register(member, 'primary');
  await assert.rejects(connect(`127.0.0.1:${server.port}`, { session: 'no-token', auth: { identity: member, token: 'guessed' } }), refused('bad_token'));
  // A request right after a bare HELLO is refused and never runs.
  const raw = await RawClient.open(server.port);
  raw.send(helloFrame('raw'));
  raw.send({ kind: FrameKind.REQUEST, id: 1, method: 'load_span', header: { ...span, nCtx: 64 }, payload: new Uint8Array(0) });
  const error = await raw.waitFor((frame) => frame.kind === FrameKind.ERROR);
  assert.equal((error.header as { code: string }).code, 'unauthenticated');
  await raw.closed;
  assert.equal(service.spans.size, 0, 'nothing was loaded');
});

test('a member with the token but not a primary cannot load spans or touch sequences', async () => {
  const victim = await primary('victim');
  await call(victim.peer, 'load_span', { ...span, nCtx: 64, nSeqMax: 2 });
  await call(victim.peer, 'open_seq', { ...span, seq: 1 });
  const attacker = await primary('attacker', { role: 'worker' }); // a registered worker, with the token
  await assert.rejects(call(attacker.peer, 'load_span', { ...span, nCtx: 64, nSeqMax: 2 }), remoteCode('forbidden'));
  for (const method of ['open_seq', 'close_seq'] as const) await assert.rejects(call(attacker.peer, method, { ...span, seq: 1 }), remoteCode('forbidden'));
  await assert.rejects(call(attacker.peer, 'truncate_seq', { ...span, seq: 1, n: 0 }), remoteCode('forbidden'));
  // A primary may load spans only of the model it registered.
  const other = createEphemeralIdentity();
  register(other, 'primary', { models: ['0'.repeat(64)] });
  const stranger = await primary('other-model', { identity: other });
  await assert.rejects(call(stranger.peer, 'load_span', { ...span, nCtx: 64, nSeqMax: 2 }), (e: unknown) => remoteCode('forbidden')(e) && /did not register/.test((e as Error).message));
  assert.equal(service.info().openSequences, 1, "the victim's sequence is untouched");
  for (const p of [victim, attacker, stranger]) p.peer.close();
  await pollUntil('span freed', () => service.spans.size === 0);
});

test("a second primary cannot touch the first's sequence by naming its session", async () => {
  const a = await primary('session-a');
  const b = await primary('session-a'); // even announcing the same session in HELLO
  for (const p of [a, b]) await call(p.peer, 'load_span', { ...span, nCtx: 64, nSeqMax: 2 });
  await call(a.peer, 'open_seq', { ...span, seq: 1 });
  const ref = reference.openSequence();
  const first = randomHidden(2, 11);
  assert.deepEqual((await a.step(1, first)).hidden, reference.step([{ seq: ref, hidden: first }]).hidden);

  // B steps "session-a"'s sequence 1: refused (no result to anyone), A's cache is not written.
  assert.equal(await within(b.step(1, randomHidden(4, 12), { as: 'session-a' }), 300), 'silence');
  await assert.rejects(call(b.peer, 'truncate_seq', { ...span, seq: 1, n: 0 }), /unknown sequence/);
  await call(b.peer, 'close_seq', { ...span, seq: 1 }); // closes B's own (absent) sequence 1, not A's
  assert.equal(service.info().openSequences, 1);

  const next = randomHidden(1, 13);
  assert.deepEqual((await a.step(1, next)).hidden, reference.step([{ seq: ref, hidden: next }]).hidden, "A's history is exactly its own");
  reference.closeSequence(ref);
  a.peer.close();
  b.peer.close();
  await pollUntil('span freed', () => service.spans.size === 0);
});

test('a route naming an unregistered address, or a registered worker at another address, is refused', async () => {
  const a = await primary('router');
  await call(a.peer, 'load_span', { ...span, nCtx: 64, nSeqMax: 2 });
  await call(a.peer, 'open_seq', { ...span, seq: 1 });
  const hop = (nodeId: string, addr: string): Hop => ({ nodeId, addr, span: { modelHash, first: 4, last: 4 } });
  const unregistered = await a.step(1, randomHidden(1, 21), { route: [hop('evil', '10.9.8.7:22')] });
  assert.match(unregistered.error ?? '', /not a registered worker/);
  const elsewhere = await a.step(1, randomHidden(1, 22), { route: [hop(service.o.nodeId, '127.0.0.1:1')] });
  assert.match(elsewhere.error ?? '', /not a registered worker at that address/);
  a.peer.close();
  await pollUntil('span freed', () => service.spans.size === 0);
});

test('a step forwarded to a registered worker runs there (the hop proves its key) and comes back', async () => {
  const second = await startWorker('worker-2');
  try {
    const head = { modelHash, first: 2, last: 3 };
    const tail = { modelHash, first: 3, last: 4 };
    const a = await primary('pipeline');
    const a2 = await primary('pipeline', { identity: a.identity, port: second.server.port, results: a.results });
    await call(a.peer, 'load_span', { ...head, nCtx: 64, nSeqMax: 1 });
    await call(a2.peer, 'load_span', { ...tail, nCtx: 64, nSeqMax: 1 });
    await call(a.peer, 'open_seq', { ...head, seq: 5 });
    await call(a2.peer, 'open_seq', { ...tail, seq: 5 });
    const ref = reference.openSequence();
    const hidden = randomHidden(3, 31);
    const got = await a.step(5, hidden, { span: head, route: [{ nodeId: second.identity.id, addr: `127.0.0.1:${second.server.port}`, span: tail }] });
    assert.equal(got.error, undefined);
    assert.deepEqual(got.hidden, reference.step([{ seq: ref, hidden }]).hidden, 'two workers in a row equal the span run locally');
    reference.closeSequence(ref);
    for (const p of [a, a2]) p.peer.close();
  } finally {
    await second.server.close();
    second.service.dispose();
  }
  await pollUntil('span freed', () => service.spans.size === 0);
});

test('a primary gets no more sequences than the nSeqMax it loaded the span with', async () => {
  const a = await primary('greedy');
  await call(a.peer, 'load_span', { ...span, nCtx: 64, nSeqMax: 2 });
  await call(a.peer, 'open_seq', { ...span, seq: 1 });
  await call(a.peer, 'open_seq', { ...span, seq: 2 });
  await assert.rejects(call(a.peer, 'open_seq', { ...span, seq: 3 }), (e: unknown) => remoteCode('limit')(e) && /at most 2/.test((e as Error).message));
  await call(a.peer, 'close_seq', { ...span, seq: 1 });
  await call(a.peer, 'open_seq', { ...span, seq: 3 });
  assert.equal(service.info().openSequences, 2);
  // Re-opening an open sequence replaces it rather than counting twice.
  await call(a.peer, 'open_seq', { ...span, seq: 3 });
  assert.equal(service.info().openSequences, 2);
  a.peer.close();
  await pollUntil('span freed', () => service.spans.size === 0);
});

test('KV memory and span memory are capped on the worker, with a clear error', async () => {
  const tiny = await startWorker('worker-tiny', { maxKvBytes: 1 });
  const full = await startWorker('worker-full', { maxSpanBytes: 1 });
  try {
    const a = await primary('kv-hungry', { port: tiny.server.port });
    await call(a.peer, 'load_span', { ...span, nCtx: 64, nSeqMax: 8 });
    await assert.rejects(call(a.peer, 'open_seq', { ...span, seq: 1 }), (e: unknown) => remoteCode('limit')(e) && /KV cache/.test((e as Error).message));
    const b = await primary('span-hungry', { port: full.server.port });
    await assert.rejects(call(b.peer, 'load_span', { ...span, nCtx: 64, nSeqMax: 1 }), (e: unknown) => remoteCode('limit')(e) && /does not fit/.test((e as Error).message));
    assert.equal(full.service.spans.size, 0);
    a.peer.close();
    b.peer.close();
  } finally {
    for (const w of [tiny, full]) {
      await w.server.close();
      w.service.dispose();
    }
  }
});

test('open_seq with norm gains: applied to that sequence only (as a local run with them); gains of layers the span does not hold are refused', async () => {
  const p = await primary('primary-gains');
  await call(p.peer, 'load_span', { ...span, nCtx: 64, nSeqMax: 2 });
  const names = ['blk.2.attn_norm.weight', 'blk.3.ffn_norm.weight'];
  const gains = new Map(names.map((n, i) => [n, reference.norms.get(n)!.map((v) => v * (1.5 - i))]));
  const payload = new Uint8Array(new Float32Array([...gains.get(names[0]!)!, ...gains.get(names[1]!)!]).buffer);
  const answer = await call(p.peer, 'open_seq', { ...span, seq: 1, gains: names }, { payload });
  assert.equal(answer.header.gainsApplied, 2);
  await call(p.peer, 'open_seq', { ...span, seq: 2 });
  const x = randomHidden(3, 9);
  const adapted = reference.openSequence();
  reference.setNormOverrides(adapted, gains);
  const plain = reference.openSequence();
  try {
    assert.deepEqual((await p.step(1, x)).hidden, reference.step([{ seq: adapted, hidden: x }]).hidden);
    assert.deepEqual((await p.step(2, x)).hidden, reference.step([{ seq: plain, hidden: x }]).hidden, 'the other sequence runs on the base gains');
  } finally {
    reference.closeSequence(adapted);
    reference.closeSequence(plain);
  }
  const bad = new Uint8Array(N_EMBD * 4);
  await assert.rejects(call(p.peer, 'open_seq', { ...span, seq: 3, gains: ['blk.0.attn_norm.weight'] }, { payload: bad }), /does not hold/);
  await assert.rejects(call(p.peer, 'open_seq', { ...span, seq: 3, gains: names }, { payload: bad }), /malformed adapter gains/);
  p.peer.close();
});
