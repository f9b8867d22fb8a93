// `diloco join` as a node: it registers with the coordinator (role primary, no listener: it only calls out),
// finds the job (job-ref.ts), and loops: wait for a round, pull the round's weights tensor by tensor (each
// checked against the manifest's sha256), run H inner AdamW steps on its own shard (train/diloco/participant.ts),
// push the encoded delta tensor by tensor with hashes, commit. A lost server (killed, restarting) is found
// again at the coordinator with backoff; the trainer, its AdamW moments and the data position survive that.
import { performance } from 'node:perf_hooks';
import { getGgml } from '../../ggml/runtime.ts';
import type { Logger } from '../../util/log.ts';
import { hashString } from '../../train/corpus.ts';
import { BatchCursor } from '../../train/data.ts';
import { encodeDelta } from '../../train/diloco/wire.ts';
import { decodeTensor, encodedBytes } from '../../train/diloco/compress.ts';
import { innerRound } from '../../train/diloco/participant.ts';
import type { TensorMap } from '../../train/params.ts';
import { Trainer } from '../../train/trainer.ts';
import { CoordinatorClient } from '../coordinator/client.ts';
import type { NodeLease } from '../coordinator/lease.ts';
import { softwareVersion } from '../coordinator/version.ts';
import { call } from '../dataplane.ts';
import { loadOrCreateIdentity } from '../identity.ts';
import { connectBest } from '../node/connect-best.ts';
import { checkCoordinatorTrust, relayTls } from '../node/coordinator-link.ts';
import { sha256 } from '../node/model-hash.ts';
import { DILOCO_WIRE_VERSION, type DilocoJobResponse } from '../protocol-diloco.ts';
import { RemoteError, type Peer } from '../transport/rpc.ts';
import { corpusTokens, modelFromHeader } from './base-model.ts';
import type { DilocoNetConfig } from './config.ts';
import { DilocoError } from './errors.ts';
import { type PublishedJob, publishedJobs } from './job-ref.ts';

export interface DilocoJoinOptions {
  coordinatorUrl: string;
  joinToken?: string;
  coordinatorCa?: string;
  dataDir: string;
  jobId?: string;
  corpus: string[];
  threads?: number;
  net: DilocoNetConfig;
  logger: Logger;
  name?: string;
}

export interface JoinSummary {
  jobId: string;
  rounds: number[];
  accepted: number;
}

const v = DILOCO_WIRE_VERSION;

export async function runDilocoParticipant(o: DilocoJoinOptions, signal?: AbortSignal): Promise<JoinSummary> {
  const identity = loadOrCreateIdentity(o.dataDir);
  const nodeId = identity.id;
  const client = new CoordinatorClient({ url: o.coordinatorUrl, ...(o.joinToken ? { joinToken: o.joinToken } : {}), ...(o.coordinatorCa ? { caFile: o.coordinatorCa } : {}) });
  await checkCoordinatorTrust(client);
  const lease: NodeLease = client.join({
    identity,
    logger: o.logger,
    registration: {
      nodeId, role: 'primary', name: o.name ?? `diloco-participant-${nodeId.slice(0, 6)}`, candidates: [],
      freeMemoryBytes: 0, threads: o.threads ?? 1, backend: 'cpu', models: [], version: softwareVersion(),
    },
  });
  await lease.registered;
  const ggml = getGgml({ gpu: 'off', ...(o.threads ? { threads: o.threads } : {}) });
  const auth = { identity, nodeId, ...(o.joinToken ? { token: o.joinToken } : {}) };
  const tlsToRelay = relayTls(o.coordinatorUrl, o.coordinatorCa);
  const session = `${nodeId}-diloco`;

  let peer: Peer | undefined;
  let jobId = o.jobId;
  let trainer: Trainer | undefined;
  let cursor: BatchCursor | undefined;
  let shardTokens = 0;
  let lastDone: number | undefined;
  const summary: JoinSummary = { jobId: jobId ?? '', rounds: [], accepted: 0 };
  let delay = o.net.retryBaseMs;
  let lostSince: number | undefined;

  const findJob = async (): Promise<PublishedJob | undefined> => {
    const jobs = publishedJobs(await client.listNodes({ role: 'primary', state: 'alive' }));
    const mine = jobs.filter((j) => jobId === undefined || j.jobId === jobId);
    if (mine.length > 1 && jobId === undefined) {
      throw new DilocoError('no_job', 'several DiLoCo jobs at the coordinator', 'one job, or --job ID', mine.map((j) => j.jobId).join(', '), 'pick one with --job ID');
    }
    return mine[0];
  };

  try {
    for (;;) {
      if (signal?.aborted) break;
      try {
        if (!peer || peer.closed) {
          const job = await findJob();
          if (!job) throw new DilocoError('no_job', 'no DiLoCo job at the coordinator', jobId ? `job ${jobId}` : 'a node running sharedllm diloco serve', 'none', 'start sharedllm diloco serve, or check --coordinator-url and --job');
          const c = await connectBest(job.view, { session, methods: {}, logger: o.logger, auth, timeoutMs: o.net.connectTimeoutMs, ...(o.joinToken ? { joinToken: o.joinToken } : {}), ...(tlsToRelay ? { relayTls: tlsToRelay } : {}) });
          peer = c.peer;
          if (jobId === undefined) o.logger.info('diloco_job_found', { message: `joining DiLoCo job ${job.jobId} at ${c.addr}`, jobId: job.jobId });
          jobId = summary.jobId = job.jobId;
        }
        const p = peer;
        const { header: job } = await call(p, 'diloco_job', { v, ...(lastDone === undefined ? {} : { afterRound: lastDone }), waitMs: o.net.pollWaitMs }, { timeoutMs: o.net.pollWaitMs + o.net.callTimeoutMs });
        lostSince = undefined;
        delay = o.net.retryBaseMs;
        if (job.jobId !== jobId) throw new DilocoError('wrong_job', 'the server runs another job now', `job ${jobId}`, `job ${job.jobId}`, 'start diloco join again to join the new job');
        if (job.state === 'done') {
          o.logger.info('diloco_job_done', { message: `job ${jobId} is done after ${job.rounds} rounds; this participant handed in ${summary.accepted} accepted deltas`, jobId });
          break;
        }
        // The long poll ran out (ask again), unless a restarted server lost the delta we handed in (train it again).
        if (lastDone !== undefined && (job.round < lastDone || (job.round === lastDone && job.handedIn !== false))) continue;
        if (!trainer) {
          ({ trainer, cursor, shardTokens } = await setup(p, job, o, nodeId, ggml));
        }
        const tPull = performance.now();
        const global = await pullWeights(p, job, o.net);
        const pullMs = performance.now() - tPull;
        o.logger.info('weights_pulled', { round: job.round, tensors: job.tensors.length });
        trainer.step = job.round * job.inner.innerSteps; // the schedule follows the job's rounds
        const t0 = performance.now();
        const inner = innerRound(trainer, cursor!, global, job.inner.innerSteps);
        const computeMs = performance.now() - t0;
        const innerLoss = inner.losses.reduce((a, b) => a + b, 0) / inner.losses.length;
        const wire = encodeDelta(inner.delta, job.tensors, job.compression, job.round, nodeId);
        const tPush = performance.now();
        for (const t of wire.tensors) {
          await call(p, 'diloco_push', { v, jobId: job.jobId, round: job.round, name: t.name, dtype: t.dtype, ne: t.ne, sha256: sha256(t.data) }, { payload: t.data, timeoutMs: o.net.tensorTimeoutMs });
        }
        const transferMs = pullMs + performance.now() - tPush;
        const { header: verdict } = await call(p, 'diloco_commit', { v, jobId: job.jobId, round: job.round, tensors: wire.tensors.length, innerLoss, computeMs, transferMs, shardTokens }, { timeoutMs: o.net.callTimeoutMs });
        lastDone = job.round;
        summary.rounds.push(job.round);
        if (verdict.status === 'accepted') summary.accepted++;
        const level = verdict.status === 'accepted' ? 'info' : 'warn';
        o.logger[level]('delta_committed', { message: `round ${job.round}: delta ${verdict.status}${verdict.reason ? ` (${verdict.reason})` : ''}`, round: job.round, status: verdict.status, innerLoss, computeMs: Math.round(computeMs) });
      } catch (e) {
        if (e instanceof DilocoError && (e.code === 'bad_shard' || e.code === 'wrong_job')) throw e;
        const code = (e as { code?: unknown }).code;
        if ((e instanceof RemoteError || e instanceof DilocoError) && (code === 'stale_round' || code === 'late_round' || code === 'bad_hash')) {
          o.logger.warn('round_moved_on', { message: `${e.message}: asking for the open round again`, code });
          continue;
        }
        // The server is gone or restarting (or not there yet): find it again, backing off, for at most jobLostMs.
        peer?.close();
        peer = undefined;
        lostSince ??= performance.now();
        if (performance.now() - lostSince > o.net.jobLostMs) {
          throw new DilocoError('no_job', `lost the DiLoCo job for ${Math.round(o.net.jobLostMs / 1000)} s`, jobId ? `job ${jobId} at the coordinator` : 'a job', (e as Error).message, 'check that sharedllm diloco serve runs and is reachable');
        }
        o.logger.warn('diloco_retry', { message: `${(e as Error).message}; trying again in ${delay} ms`, delayMs: delay });
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(o.net.retryMaxMs, delay * 2);
      }
    }
    return summary;
  } finally {
    peer?.close();
    trainer?.dispose();
    await lease.leave().catch(() => undefined);
    client.close();
  }
}

/** The model's shape and tokenizer from the server, this participant's shard, and its trainer. */
async function setup(peer: Peer, job: DilocoJobResponse, o: DilocoJoinOptions, nodeId: string, ggml: ReturnType<typeof getGgml>) {
  const { header, payload } = await call(peer, 'diloco_model', { v, jobId: job.jobId }, { timeoutMs: o.net.tensorTimeoutMs });
  if (sha256(payload) !== header.sha256) throw new DilocoError('bad_hash', 'the model header failed its hash check', header.sha256, sha256(payload), 'retry');
  const base = modelFromHeader(payload, job.inner.ctx);
  const tokens = corpusTokens(o.corpus, base.tokenizer, `the corpus ${o.corpus.join(', ')}`);
  const need = job.inner.batch * job.inner.ctx + 1;
  if (tokens.length < need) {
    throw new DilocoError('bad_shard', `this participant's data shard is too small to train on (${o.corpus.join(', ')})`, `at least ${need} tokens (${job.inner.batch} rows of ${job.inner.ctx}, plus one)`, `${tokens.length} tokens`, 'give --corpus more text');
  }
  const seed = hashString(nodeId);
  const optim = { ...job.inner, steps: job.inner.totalSteps, seed };
  const zeros: TensorMap = new Map(job.tensors.map((t) => [t.name, new Float32Array(t.ne.reduce((a, b) => a * b, 1))]));
  const trainer = new Trainer(ggml, base.model, optim, zeros);
  const cursor = new BatchCursor(tokens, job.inner.batch, job.inner.ctx, seed);
  o.logger.info('diloco_ready', { message: `shard of ${tokens.length} tokens; ${job.inner.innerSteps} inner steps a round`, tokens: tokens.length });
  return { trainer, cursor, shardTokens: tokens.length };
}

/** The open round's weights, each tensor checked against the manifest's size and sha256. */
async function pullWeights(peer: Peer, job: DilocoJobResponse, net: DilocoNetConfig): Promise<TensorMap> {
  const out: TensorMap = new Map();
  for (const t of job.tensors) {
    const { header, payload } = await call(peer, 'diloco_weights', { v, jobId: job.jobId, round: job.round, name: t.name }, { timeoutMs: net.tensorTimeoutMs });
    const n = t.ne.reduce((a, b) => a * b, 1);
    const dtype = job.weightsDtype ?? 'f32';
    const bytes = encodedBytes(n, dtype);
    const got = sha256(payload);
    if (payload.byteLength !== bytes || got !== t.sha256 || header.sha256 !== t.sha256) {
      throw new DilocoError('bad_hash', `weights tensor ${t.name} of round ${job.round} failed its check`, `${bytes} bytes (${dtype}) with sha256 ${t.sha256}`, `${payload.byteLength} bytes with sha256 ${got}`, 'the transfer was damaged; the round is retried');
    }
    const w = decodeTensor(payload, n, dtype);
    if (!w.every(Number.isFinite)) throw new DilocoError('bad_hash', `weights tensor ${t.name} of round ${job.round} holds NaN or Inf`, 'finite weights', 'non-finite values', 'the server is faulty; the round is retried');
    out.set(t.name, w);
  }
  return out;
}
