// Failover at the pipeline level, with workers in this process (real WorkerService, real transport on
// loopback): a worker that answers malformed results, hangs a step, hangs open_seq, or drops its connection
// while the pipeline is idle is banned and replaced, and the greedy tokens stay those of a single-node run.
// Every sequence opened on any worker is closed at the end, the failed worker's included.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type Forward, type SequenceOptions, localForward } from '../../model/batcher.ts';
import { loadModelPart } from '../../model/load.ts';
import type { ModelPart } from '../../model/model-part.ts';
import { cachedModel } from '../../model/testing/cached-model.ts';
import { SHAPES } from '../../model/testing/make-model.ts';
import { silentLogger } from '../../util/log.ts';
import { call, defineMethods, notify } from '../dataplane.ts';
import { type SpanRef, type StageTime, StepMessage } from '../protocol-dataplane.ts';
import { type Peer, type TransportServer, connect, listen } from '../transport/rpc.ts';
import { localTestDataPlane } from './dataplane-config.ts';
import { hashFile } from './model-hash.ts';
import { NoCapacityError, PipelineForward, type RemoteStage, type Stage } from './pipeline.ts';
import { WorkerService } from './worker-service.ts';
import { createEphemeralIdentity, type Identity } from '../identity.ts';
import { StaticMembership } from './membership.ts';

const model = cachedModel({ shape: { ...SHAPES.smollm2, tiedEmbeddings: false }, nLayer: 4, type: 'Q8_0', seed: 1 });
const N_EMBD = SHAPES.smollm2.nEmbd;
const PROMPTS = [[1, 7, 42, 99, 3], [5, 11, 250, 8]];
const N_TOKENS = 6;
const dir = mkdtempSync(join(tmpdir(), 'sharedllm-pipeline-'));

type Fault = 'none' | 'ragged' | 'nan' | 'n-tokens' | 'skip-route' | 'hang-step' | 'hang-open' | 'ignore-gains';

/** A worker in this process; `fault` makes it misbehave (its other methods stay honest). */
interface TestWorker {
  name: string;
  service: WorkerService;
  server: TransportServer;
  fault: Fault;
}

const workers = new Map<string, TestWorker>();
/** Who the workers admit (authenticated HELLO): the test workers and each test primary. */
const membership = new StaticMembership();
let reference: ModelPart;
let expected: number[][];
let modelHash: string;
let sessions = 0;

async function startWorker(name: string): Promise<TestWorker> {
  const identity = createEphemeralIdentity();
  const service = new WorkerService({ nodeId: name, identity, membership, cacheDir: dir, modelFiles: [model], threads: 1, gpu: 'off', logger: silentLogger });
  const honest = service.methods();
  let fault: Fault = 'none';
  let server: TransportServer | undefined;
  const lie = (h: StepMessage, header: { stepId: number; nTokens: number; trace: StageTime[] }, payload: Float32Array, bytes = payload.byteLength) =>
    notify(server!.peerBySession(h.session)!, 'step_result', header, new Uint8Array(payload.buffer, 0, bytes));
  const step = (h: StepMessage): boolean => {
    const nTokens = h.groups.reduce((a, g) => a + g.n, 0);
    const trace = [...(h.trace ?? []), { nodeId: name, computeMs: 1 }];
    const good = new Float32Array(nTokens * N_EMBD).fill(0.5);
    switch (fault) {
      case 'ragged':
        lie(h, { stepId: h.stepId, nTokens, trace }, good, good.byteLength - 4 * 7);
        return true;
      case 'nan':
        good[3] = Number.NaN;
        lie(h, { stepId: h.stepId, nTokens, trace }, good);
        return true;
      case 'n-tokens':
        lie(h, { stepId: h.stepId, nTokens: nTokens + 1, trace }, good);
        return true;
      case 'skip-route':
        // The first hop answers for the rest of the route, naming them in the trace as if they had run.
        lie(h, { stepId: h.stepId, nTokens, trace: [...trace, ...h.route.map((r) => ({ nodeId: r.nodeId, computeMs: 1 }))] }, good);
        return true;
      case 'hang-step':
        return true;
      default:
        return false;
    }
  };
  server = await listen({
    host: '127.0.0.1',
    port: 0,
    session: name,
    auth: service.auth(),
    methods: {
      ...honest,
      open_seq: { ...honest.open_seq!, handler: (req) => {
        if (fault === 'hang-open') return new Promise(() => undefined);
        // A worker of a version without adapters: it ignores the gains (and does not say it applied them).
        if (fault === 'ignore-gains') return Promise.resolve(honest.open_seq!.handler({ ...req, header: { ...(req.header as object), gains: undefined } })).then(() => ({ header: { ok: true } }));
        return honest.open_seq!.handler(req);
      } },
      step: { ...honest.step!, handler: (req) => (step(StepMessage.parse(req.header)) ? undefined : honest.step!.handler(req)) },
    },
  });
  service.attach(server);
  membership.add({ nodeId: name, publicKey: identity.publicKey, role: 'worker', addrs: [`127.0.0.1:${server.port}`], models: [] });
  const w: TestWorker = {
    name, service, server,
    get fault() {
      return fault;
    },
    set fault(f: Fault) {
      fault = f;
    },
  };
  workers.set(name, w);
  return w;
}

/** The primary's connection to a worker holding `span`, as a pipeline stage. */
async function stageOn(w: TestWorker, span: SpanRef, session: string, identity: Identity, pipeline: () => PipelineForward | undefined): Promise<RemoteStage> {
  const peer: Peer = await connect(`127.0.0.1:${w.server.port}`, {
    session,
    auth: { identity },
    methods: defineMethods({
      step_result: (h, { payload, peer: from }) => void pipeline()?.onStepResult(h, payload, from),
      step_error: (h, { peer: from }) => void pipeline()?.onStepError(h, from),
    }),
  });
  await call(peer, 'load_span', { ...span, nCtx: 64, nSeqMax: 4 });
  return { kind: 'remote', span, nodeId: w.name, addr: `127.0.0.1:${w.server.port}`, peer };
}

/** The primary's own parts of the last pipeline built (to check that they hold no sequence either). */
let own: ModelPart[] = [];

/**
 * Front [0,2) and head here; [2,3) and [3,4) on `route` (worker names); `spares` replace failed ones, then
 * this node (unless `localRoom` is false: then there is no capacity left).
 */
async function pipelineOver(route: [string, string], spares: string[], localRoom = true): Promise<PipelineForward> {
  const session = `test-primary-${++sessions}`;
  // Each pipeline is a primary of its own (sequences belong to the primary's key).
  const identity = createEphemeralIdentity();
  membership.add({ nodeId: identity.id, publicKey: identity.publicKey, role: 'primary', addrs: [], models: [modelHash] });
  let pipeline: PipelineForward | undefined;
  const get = () => pipeline;
  const part = (first: number, last: number, embeddings: boolean, head: boolean) => loadModelPart(model, { gpu: 'off', threads: 1, nCtx: 64, nSeqMax: 4, layout: { embeddings, first, last, head } }).then((m) => m.part);
  const spans: SpanRef[] = [{ modelHash, first: 2, last: 3 }, { modelHash, first: 3, last: 4 }];
  const stages: Stage[] = await Promise.all(route.map((name, i) => stageOn(workers.get(name)!, spans[i]!, session, identity, get)));
  own = [await part(0, 2, true, false), await part(4, 4, false, true)];
  pipeline = new PipelineForward({
    front: own[0]!,
    head: own[1]!,
    stages,
    session,
    logger: silentLogger,
    config: localTestDataPlane(),
    replace: async (span, exclude) => {
      const name = spares.find((s) => !exclude.has(s));
      if (name) return stageOn(workers.get(name)!, span, session, identity, get);
      if (!localRoom) throw new NoCapacityError('no capacity left for layers', 'a worker or local memory', 'none', 'add a worker');
      return { kind: 'local', span, part: await part(span.first, span.last, false, false) };
    },
  });
  return pipeline;
}

async function greedy(fwd: Forward, prompt: readonly number[], opts?: SequenceOptions): Promise<number[]> {
  const seq = await fwd.openSequence(opts);
  try {
    const out: number[] = [];
    let logits = (await fwd.step([{ seq, tokens: Int32Array.from(prompt) }])).logits[0]![0]!;
    for (let i = 0; i < N_TOKENS; i++) {
      let best = 0;
      for (let v = 1; v < logits.length; v++) if (logits[v]! > logits[best]!) best = v;
      out.push(best);
      if (i + 1 < N_TOKENS) logits = (await fwd.step([{ seq, tokens: Int32Array.of(best) }])).logits[0]![0]!;
    }
    return out;
  } finally {
    await fwd.closeSequence(seq);
  }
}

/** Both prompts at once (a failover must rebuild the other sequence too). */
const both = (fwd: Forward) => Promise.all(PROMPTS.map((p) => greedy(fwd, p)));

async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 300 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), what);
}

/** No worker holds a sequence any more (the failed one frees ours when we close its connection). */
async function noSequencesLeft(): Promise<void> {
  for (const w of workers.values()) await until(`${w.name} holds no sequences (has ${w.service.info().openSequences})`, () => w.service.info().openSequences === 0);
}

before(async () => {
  modelHash = hashFile(model, dir);
  for (const name of ['w-a', 'w-b', 'w-spare', 'w-x']) await startWorker(name);
  reference = (await loadModelPart(model, { gpu: 'off', threads: 1, nCtx: 64, nSeqMax: 2 })).part;
  expected = await both(localForward(reference));
});

after(async () => {
  for (const w of workers.values()) {
    await w.server.close();
    w.service.dispose();
  }
  reference.dispose();
  rmSync(dir, { recursive: true, force: true });
});

test('an undisturbed pipeline gives the single-node greedy tokens and leaves no sequence open', async () => {
  const p = await pipelineOver(['w-a', 'w-b'], ['w-spare']);
  try {
    assert.deepEqual(await both(p), expected);
    assert.equal(p.recoveries.length, 0);
    await noSequencesLeft();
  } finally {
    p.dispose();
  }
});

for (const [fault, position] of [['ragged', 1], ['nan', 1], ['n-tokens', 1], ['skip-route', 0]] as const) {
  test(`a malformed result (${fault}) bans the worker and fails over; the tokens do not change`, async () => {
    const x = workers.get('w-x')!;
    x.fault = fault;
    const route: [string, string] = position === 0 ? ['w-x', 'w-b'] : ['w-a', 'w-x'];
    const p = await pipelineOver(route, ['w-spare']);
    try {
      assert.deepEqual(await both(p), expected);
      assert.ok(p.banned.has('w-x'), `w-x banned: ${JSON.stringify(p.banned.list())}`);
      assert.deepEqual(p.recoveries.map((r) => [r.nodeId, r.replacement]), [['w-x', 'w-spare']]);
      assert.match(p.recoveries[0]!.reason, /malformed/);
      assert.ok(!p.stages.some((s) => s.kind === 'remote' && s.nodeId === 'w-x'));
      await noSequencesLeft();
    } finally {
      x.fault = 'none';
      p.dispose();
    }
  });
}

test('a hung step misses its deadline: the hop that took it is banned and replaced', async () => {
  const x = workers.get('w-x')!;
  x.fault = 'hang-step';
  const p = await pipelineOver(['w-x', 'w-b'], ['w-spare']);
  try {
    assert.deepEqual(await both(p), expected);
    assert.deepEqual(p.recoveries.map((r) => r.nodeId), ['w-x']);
    assert.match(p.recoveries[0]!.reason, /no answer .* within \d+ ms/);
    await noSequencesLeft();
  } finally {
    x.fault = 'none';
    p.dispose();
  }
});

test('open_seq on a worker that does not answer fails over instead of failing the request', async () => {
  const x = workers.get('w-x')!;
  x.fault = 'hang-open';
  const p = await pipelineOver(['w-a', 'w-x'], ['w-spare']);
  try {
    assert.deepEqual(await both(p), expected);
    assert.deepEqual(p.recoveries.map((r) => r.nodeId), ['w-x']);
    assert.match(p.recoveries[0]!.reason, /open_seq/);
  } finally {
    x.fault = 'none';
    p.dispose();
  }
  await noSequencesLeft();
});

test('a worker whose connection closes while the pipeline is idle is replaced before the next request', async () => {
  const p = await pipelineOver(['w-a', 'w-x'], []);
  try {
    assert.deepEqual(await both(p), expected);
    // The worker leaves: its end of our connection closes while nothing runs.
    workers.get('w-x')!.server.peers().forEach((peer) => peer.close());
    await until('re-planned without a request', () => p.recoveries.length === 1);
    assert.deepEqual(p.recoveries.map((r) => [r.nodeId, r.replacement]), [['w-x', 'primary (local)']]);
    assert.deepEqual(await both(p), expected);
    await noSequencesLeft();
  } finally {
    p.dispose();
  }
});

test('requests that arrive during a re-plan wait for it, then run on the new plan', async () => {
  const p = await pipelineOver(['w-a', 'w-x'], ['w-spare']);
  try {
    const replan = p.failWorker('w-x', 'test: verifier mismatch');
    const results = both(p); // starts while the re-plan runs
    await replan;
    assert.deepEqual(await results, expected);
    assert.deepEqual(p.recoveries.map((r) => [r.nodeId, r.replacement]), [['w-x', 'w-spare']]);
    await noSequencesLeft();
  } finally {
    p.dispose();
  }
});

test('an open that fails for good (no capacity left) closes what it opened, here and on every worker', async () => {
  const x = workers.get('w-x')!;
  x.fault = 'hang-open';
  const p = await pipelineOver(['w-a', 'w-x'], [], false);
  try {
    await assert.rejects(p.openSequence(), NoCapacityError);
    assert.deepEqual(own.map((part) => part.openSequences), [[], []], 'the primary\'s own parts hold no sequence');
    assert.equal(p.openSequences, 0);
    await noSequencesLeft();
  } finally {
    x.fault = 'none';
    p.dispose();
  }
});

test('a sequence with a norm adapter gets the single-node adapted tokens; each worker gets its own layers\' gains', async () => {
  const gains = new Map([...reference.norms].map(([name, g], i) => [name, g.map((v) => v * (i % 2 === 0 ? 1.5 : 0.6))]));
  const adapted = await greedy(localForward(reference), PROMPTS[0]!, { normOverrides: gains });
  assert.notDeepEqual(adapted, expected[0], 'the gains change the tokens');
  const p = await pipelineOver(['w-a', 'w-b'], ['w-spare']);
  try {
    // The adapted sequence and a base one, batched through the same pipeline.
    const [mine, base] = await Promise.all([greedy(p, PROMPTS[0]!, { normOverrides: gains }), greedy(p, PROMPTS[1]!)]);
    assert.deepEqual([mine, base], [adapted, expected[1]]);
    assert.equal(p.recoveries.length, 0);
    await noSequencesLeft();
  } finally {
    p.dispose();
  }
});

test('a worker that ignores the gains (an older version) is failed over; the adapted tokens do not change', async () => {
  const gains = new Map([...reference.norms].map(([name, g], i) => [name, g.map((v) => v * (i % 2 === 0 ? 1.5 : 0.6))]));
  const adapted = await greedy(localForward(reference), PROMPTS[0]!, { normOverrides: gains });
  const x = workers.get('w-x')!;
  x.fault = 'ignore-gains';
  const p = await pipelineOver(['w-a', 'w-x'], ['w-spare']);
  try {
    assert.deepEqual(await greedy(p, PROMPTS[0]!, { normOverrides: gains }), adapted);
    assert.deepEqual(p.recoveries.map((r) => r.nodeId), ['w-x']);
    assert.match(p.recoveries[0]!.reason, /did not apply the adapter/);
    await noSequencesLeft();
  } finally {
    x.fault = 'none';
    p.dispose();
  }
});
