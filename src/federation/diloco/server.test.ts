// A DiLoCo job over the real data plane in one process: a coordinator, `diloco serve`'s server, a hostile
// member calling the methods by hand, and an honest participant. The hostile calls (a NaN delta, a tensor
// whose bytes do not match their hash, a delta for a round not open) are refused with a reason and the job
// goes on; a participant whose shard cannot make one batch refuses to start; the honest one trains the job.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { silentLogger } from '../../util/log.ts';
import { defaultDilocoConfig } from '../../train/diloco/config.ts';
import { PRESETS } from '../../train/config.ts';
import { makeTinyJob, type TinyJob } from '../../train/diloco/tiny-job.testing.ts';
import { encodeDelta } from '../../train/diloco/wire.ts';
import { localTestConfig } from '../config.ts';
import { CoordinatorClient } from '../coordinator/client.ts';
import { type RunningCoordinator, startCoordinator } from '../coordinator/coordinator.ts';
import { tempDir } from '../coordinator/testing.ts';
import { call } from '../dataplane.ts';
import { createEphemeralIdentity } from '../identity.ts';
import { connectBest } from '../node/connect-best.ts';
import { sha256 } from '../node/model-hash.ts';
import { RemoteError } from '../transport/rpc.ts';
import { localTestDilocoNet } from './config.ts';
import { publishedJobs } from './job-ref.ts';
import { runDilocoParticipant } from './participant.ts';
import { type DilocoServeHandle, startDilocoServer } from './server.ts';
import { pollUntil } from '../../util/poll.ts';

const dir = tempDir('diloco-server-');
let coordinator: RunningCoordinator;
let server: DilocoServeHandle;
let job: TinyJob;
const out = join(dir.path, 'out');
const net = localTestDilocoNet();

before(async () => {
  job = makeTinyJob(join(dir.path, 'job'), { participants: 1 });
  coordinator = await startCoordinator({ host: '127.0.0.1', port: 0, dataDir: join(dir.path, 'coord'), config: localTestConfig(), logger: silentLogger });
  server = await startDilocoServer({
    init: job.init, out, rounds: 2, diloco: { ...defaultDilocoConfig(), compression: 'int8' }, weightsDtype: 'f16', minReplicas: 1, roundTimeoutMs: 60_000,
    inner: { ...PRESETS.tiny.optim, batch: 2, lr: 3e-3, warmup: 1, innerSteps: 2, ctx: 32 }, evalCorpus: [job.heldOut], evalTokens: 256, keepEvery: 0,
    coordinatorUrl: coordinator.url, dataDir: join(dir.path, 'serve'), rpcPort: 0, threads: 1, net, logger: silentLogger,
  });
});
after(async () => {
  await server?.close();
  await coordinator?.close();
  dir.cleanup();
});

test('hostile calls are refused with a reason; a tiny shard refuses to start; an honest participant trains the job', async () => {
  // A member calling by hand: registered at the coordinator, connected over the authenticated data plane.
  const identity = createEphemeralIdentity();
  const client = new CoordinatorClient({ url: coordinator.url });
  const lease = client.join({ identity, logger: silentLogger, registration: { nodeId: identity.id, role: 'primary', name: 'hostile', candidates: [], freeMemoryBytes: 0, threads: 1, backend: 'cpu', models: [], version: '0.0.0' } });
  await lease.registered;
  const [published] = publishedJobs(await client.listNodes({ role: 'primary', state: 'alive' }));
  assert.equal(published?.jobId, server.jobId, 'the job is published at the coordinator');
  const { peer } = await connectBest(published!.view, { session: 'hostile', methods: {}, logger: silentLogger, auth: { identity, nodeId: identity.id } });
  try {
    const { header: info } = await call(peer, 'diloco_job', { v: 1, waitMs: 0 });
    assert.equal(info.round, 0);
    assert.equal(info.compression, 'int8');
    assert.equal(info.weightsDtype, 'f16');
    const name = info.tensors[0]!.name;
    const { payload } = await call(peer, 'diloco_weights', { v: 1, jobId: info.jobId, round: 0, name });
    assert.equal(sha256(payload), info.tensors[0]!.sha256, 'the weights match the manifest\'s hash');
    assert.equal(payload.byteLength, 2 * info.tensors[0]!.ne.reduce((a, b) => a * b, 1), 'f16 weights: 2 bytes a value');
    const nan = new Map(info.tensors.map((t) => [t.name, new Float32Array(t.ne.reduce((a, b) => a * b, 1)).fill(Number.NaN)]));
    const wire = encodeDelta(nan, info.tensors, 'int8', 0, identity.id);
    const t0 = wire.tensors[0]!;
    await assert.rejects(call(peer, 'diloco_push', { v: 1, jobId: info.jobId, round: 0, name: t0.name, dtype: 'int8', ne: t0.ne, sha256: '0'.repeat(64) }, { payload: t0.data }), (e: RemoteError) => e.code === 'bad_hash');
    await assert.rejects(call(peer, 'diloco_push', { v: 1, jobId: info.jobId, round: 5, name: t0.name, dtype: 'int8', ne: t0.ne, sha256: sha256(t0.data) }, { payload: t0.data }), (e: RemoteError) => e.code === 'stale_round');
    await assert.rejects(call(peer, 'diloco_model', { v: 1, jobId: 'f'.repeat(16) }), (e: RemoteError) => e.code === 'wrong_job');
    for (const t of wire.tensors) await call(peer, 'diloco_push', { v: 1, jobId: info.jobId, round: 0, name: t.name, dtype: t.dtype, ne: t.ne, sha256: sha256(t.data) }, { payload: t.data });
    const { header: verdict } = await call(peer, 'diloco_commit', { v: 1, jobId: info.jobId, round: 0, tensors: wire.tensors.length, shardTokens: 1000 });
    assert.equal(verdict.status, 'refused');
    assert.match(verdict.reason!, /non-finite|NaN/);
  } finally {
    peer.close();
    await lease.leave();
    client.close();
  }

  // A shard too small for one batch of 2 rows of 32 tokens: refused before training.
  const tiny = join(dir.path, 'tiny-shard');
  mkdirSync(tiny, { recursive: true });
  writeFileSync(join(tiny, 'a.txt'), 'Too short.');
  await assert.rejects(runDilocoParticipant({ coordinatorUrl: coordinator.url, dataDir: join(dir.path, 'p-tiny'), corpus: [tiny], threads: 1, net, logger: silentLogger }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'bad_shard');
    assert.match(e.message, /too small to train on.*expected at least 65 tokens/);
    return true;
  });

  const summary = await runDilocoParticipant({ coordinatorUrl: coordinator.url, dataDir: join(dir.path, 'p-ok'), corpus: job.shards, threads: 1, net, logger: silentLogger });
  assert.deepEqual(summary.rounds, [0, 1]);
  assert.equal(summary.accepted, 2);
  await server.done;
  // The server's heartbeats report the rounds to the coordinator (its dashboard draws the loss curves).
  const watcher = new CoordinatorClient({ url: coordinator.url });
  try {
    const training = await pollUntil('the rounds in the server\'s heartbeat', async () => (await watcher.listNodes({ role: 'primary', state: 'alive' })).find((n) => n.training?.round === 2)?.training);
    assert.equal(training.jobId, server.jobId);
    assert.deepEqual(training.metrics.map((m) => [m.round, m.participants]), [[0, 1], [1, 1]], 'one honest delta a round');
    assert.ok(training.metrics.every((m) => typeof m.heldOutLoss === 'number'));
  } finally {
    watcher.close();
  }
  const rounds = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; refused?: { code: string }[]; hashMismatches?: number; accepted?: string[] }).filter((l) => l.kind === 'round');
  assert.equal(rounds.length, 2);
  assert.deepEqual(rounds[0]!.refused!.map((r) => r.code), ['non-finite']);
  assert.equal(rounds[0]!.hashMismatches, 1);
  assert.equal(rounds[0]!.accepted!.length, 1);
});
