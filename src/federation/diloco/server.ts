// `diloco serve` as a node: it reads the base model, resumes from its checkpoint when there is one, listens
// on the data plane (every connection an authenticated member of the federation), publishes the job at the
// coordinator (job-ref.ts), and runs the rounds (rounds.ts). After each round's outer step it writes, in --out:
//
//   model.gguf       the global weights after the round (F32; round-NNNN.gguf too every --keep-every rounds)
//   metrics.jsonl    one JSON line per round (RoundEvents, held-out loss and perplexity, time split), and one
//                    'start' line per process start (fresh or resumed)
//   state.ckpt       the server's state (checkpoint.ts), written last: a restart opens the round after it
import { randomBytes } from 'node:crypto';
import { appendFileSync, copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { getGgml } from '../../ggml/runtime.ts';
import type { Logger } from '../../util/log.ts';
import type { Compression, DilocoConfig } from '../../train/diloco/config.ts';
import { encodeTensor } from '../../train/diloco/compress.ts';
import { DilocoServer } from '../../train/diloco/round.ts';
import { exportGguf } from '../../train/export.ts';
import { evaluateTokens } from '../../train/evaluate.ts';
import { paramSpecs } from '../../train/params.ts';
import { tokenizerGgufMetadata } from '../../train/tokenizer-gguf.ts';
import type { OptimConfig } from '../../train/config.ts';
import { CoordinatorClient } from '../coordinator/client.ts';
import type { NodeLease } from '../coordinator/lease.ts';
import { softwareVersion } from '../coordinator/version.ts';
import { defineMethods } from '../dataplane.ts';
import { loadOrCreateIdentity } from '../identity.ts';
import { checkCoordinatorTrust, dataPlaneTls } from '../node/coordinator-link.ts';
import { CoordinatorMembership } from '../node/membership.ts';
import { sha256 } from '../node/model-hash.ts';
import { DILOCO_WIRE_VERSION, type DilocoJobResponse, type InnerSettings } from '../protocol-diloco.ts';
import { MAX_REPORTED_ROUNDS, type TrainingProgress } from '../protocol.ts';
import type { Peer } from '../transport/rpc.ts';
import { type TransportServer, listen } from '../transport/rpc.ts';
import { corpusTokens, loadBaseModel } from './base-model.ts';
import { loadServerCheckpoint, saveServerCheckpoint } from './checkpoint.ts';
import type { DilocoNetConfig } from './config.ts';
import { DilocoError } from './errors.ts';
import { jobRef } from './job-ref.ts';
import { type RoundEvents, RoundKeeper } from './rounds.ts';

export interface DilocoServeOptions {
  init: string;
  out: string;
  rounds: number;
  diloco: DilocoConfig;
  /** How the weights travel to participants (f32: exact). */
  weightsDtype: Compression;
  minReplicas: number;
  roundTimeoutMs: number;
  /** Inner AdamW settings the participants use (steps: the job's rounds x innerSteps). */
  inner: Omit<OptimConfig, 'steps' | 'seed'> & { innerSteps: number; ctx: number };
  /** Held-out text scored after every round (absent: no held-out loss in the metrics). */
  evalCorpus?: string[];
  evalTokens: number;
  /** Keep a copy round-NNNN.gguf every this many rounds (0: only model.gguf). */
  keepEvery: number;
  jobId?: string;
  coordinatorUrl: string;
  joinToken?: string;
  coordinatorCa?: string;
  dataDir: string;
  rpcPort: number;
  bindHost?: string;
  lanAddr?: string;
  threads?: number;
  net: DilocoNetConfig;
  logger: Logger;
  name?: string;
}

export interface DilocoServeHandle {
  jobId: string;
  port: number;
  /** The round this process started at (0, or where the checkpoint left off). */
  startRound: number;
  /** Resolves when the last round is written (and the linger for participants is over). */
  done: Promise<void>;
  close(): Promise<void>;
}

export const CHECKPOINT_FILE = 'state.ckpt';
export const METRICS_FILE = 'metrics.jsonl';
export const MODEL_FILE = 'model.gguf';

export async function startDilocoServer(o: DilocoServeOptions): Promise<DilocoServeHandle> {
  mkdirSync(o.out, { recursive: true });
  const ggml = getGgml({ gpu: 'off', ...(o.threads ? { threads: o.threads } : {}) });
  const base = loadBaseModel(ggml, o.init, o.inner.ctx);
  const shapes = paramSpecs(base.model).map((s) => ({ name: s.name, ne: s.ne }));
  const server = new DilocoServer(o.diloco, shapes, base.params);
  const ckPath = join(o.out, CHECKPOINT_FILE);
  let jobId = o.jobId ?? randomBytes(8).toString('hex');
  const resumed = existsSync(ckPath);
  if (resumed) {
    const ck = loadServerCheckpoint(ckPath);
    if (o.jobId !== undefined && o.jobId !== ck.jobId) {
      throw new DilocoError('bad_checkpoint', `the checkpoint in ${o.out} belongs to another job`, `job ${o.jobId}`, `job ${ck.jobId}`, 'pass that job id, or another --out for a new job');
    }
    try {
      server.setState(ck.state);
    } catch (e) {
      throw new DilocoError('bad_checkpoint', `the checkpoint ${ckPath} is of another model`, `the tensors of ${o.init}`, (e as Error).message, 'resume with the --init it was started with, or use another --out');
    }
    jobId = ck.jobId;
  }
  const evalStream = o.evalCorpus ? corpusTokens(o.evalCorpus, base.tokenizer, 'the --eval-corpus') : undefined;
  const heldOut = evalStream?.subarray(0, Math.min(evalStream.length, o.evalTokens + 1));
  const modelPath = join(o.out, MODEL_FILE);
  const tokenizerMeta = tokenizerGgufMetadata(base.tokenizer);
  const writeModel = (path: string) => exportGguf(path, { model: base.model, params: server.params, tokenizer: tokenizerMeta, type: 'F32', name: `${base.name}-diloco` });
  const evaluate = (): number | undefined => (heldOut && heldOut.length > 1 ? evaluateTokens(modelPath, heldOut, { nCtx: base.model.nCtx, gpu: 'off' }).nll : undefined);
  const metric = (line: Record<string, unknown>) => appendFileSync(join(o.out, METRICS_FILE), `${JSON.stringify({ jobId, ...line })}\n`);

  const startRound = server.round;
  writeModel(modelPath);
  const startLoss = evaluate();
  // What the heartbeats report to the coordinator (its dashboard draws the loss curves): the latest rounds.
  const progress: TrainingProgress = { jobId, round: startRound, rounds: o.rounds, metrics: [] };
  metric({ kind: 'start', round: startRound, resumed, ...(startLoss === undefined ? {} : { heldOutLoss: startLoss, perplexity: Math.exp(startLoss) }), time: new Date().toISOString() });
  o.logger.info('diloco_start', { message: resumed ? `resumed job ${jobId} at round ${startRound} from ${ckPath}` : `job ${jobId}: ${o.rounds} rounds of ${o.inner.innerSteps} inner steps`, jobId, round: startRound, resumed, heldOutLoss: startLoss });

  const inner: InnerSettings = {
    innerSteps: o.inner.innerSteps, batch: o.inner.batch, ctx: o.inner.ctx, lr: o.inner.lr, warmup: o.inner.warmup, minLrRatio: o.inner.minLrRatio,
    beta1: o.inner.beta1, beta2: o.inner.beta2, eps: o.inner.eps, weightDecay: o.inner.weightDecay, clip: o.inner.clip, totalSteps: o.rounds * o.inner.innerSteps,
  };
  const finish = (e: RoundEvents): void => {
    const t0 = performance.now();
    writeModel(modelPath);
    if (o.keepEvery > 0 && (e.round + 1) % o.keepEvery === 0) copyFileSync(modelPath, join(o.out, `round-${String(e.round).padStart(4, '0')}.gguf`));
    const t1 = performance.now();
    const loss = evaluate();
    const t2 = performance.now();
    saveServerCheckpoint(ckPath, { jobId, state: server.getState() });
    const accepted = Math.max(1, e.accepted.length);
    metric({
      kind: 'round', ...e, ...(loss === undefined ? {} : { heldOutLoss: loss, perplexity: Math.exp(loss) }),
      bytesInPerParticipant: e.bytesIn / accepted, bytesOutPerParticipant: e.bytesOut / Math.max(1, e.accepted.length + e.dropped.length + e.refused.length),
      modelBytes: [...server.params.values()].reduce((n, v) => n + 4 * v.length, 0),
      writeMs: t1 - t0, evalMs: t2 - t1, checkpointMs: performance.now() - t2, time: new Date().toISOString(),
    });
    progress.round = e.round + 1;
    progress.metrics = [...progress.metrics, {
      round: e.round, participants: e.accepted.length,
      ...(e.innerLoss === undefined ? {} : { innerLoss: e.innerLoss }), ...(loss === undefined ? {} : { heldOutLoss: loss }),
    }].slice(-MAX_REPORTED_ROUNDS);
    o.logger.info('round_written', { message: `round ${e.round}: ${e.accepted.length} deltas${loss === undefined ? '' : `, held-out loss ${loss.toFixed(4)}`}`, round: e.round, heldOutLoss: loss });
  };
  const keeper = new RoundKeeper({ server, rounds: o.rounds, minReplicas: o.minReplicas, roundTimeoutMs: o.roundTimeoutMs, logger: o.logger, finish });

  // Weights of the open round, tensor by tensor with their hashes (computed once per round).
  let weights: { round: number; tensors: Map<string, { bytes: Uint8Array; sha256: string }> } | undefined;
  const roundWeights = () => {
    if (weights?.round !== server.round) {
      const tensors = new Map<string, { bytes: Uint8Array; sha256: string }>();
      for (const [name, v] of server.params) {
        const bytes = encodeTensor(v, o.weightsDtype);
        tensors.set(name, { bytes, sha256: sha256(bytes) });
      }
      weights = { round: server.round, tensors };
    }
    return weights.tensors;
  };
  const jobInfo = (participant: string): DilocoJobResponse => ({
    v: DILOCO_WIRE_VERSION, jobId, state: keeper.state === 'done' ? 'done' : 'running', round: keeper.round, rounds: o.rounds,
    compression: o.diloco.compression, weightsDtype: o.weightsDtype, inner, deadlineInMs: keeper.deadlineInMs(), handedIn: keeper.handedIn(participant),
    tensors: keeper.state === 'done' ? [] : shapes.map((s) => ({ name: s.name, ne: [...s.ne], sha256: roundWeights().get(s.name)!.sha256 })),
  });
  const checkJob = (id: string) => {
    if (id !== jobId) throw new DilocoError('wrong_job', 'this server runs another job', jobId, id, 'find the job again at the coordinator');
  };
  const who = (peer: Peer): string => {
    const id = peer.identity?.nodeId;
    if (id === undefined) throw new DilocoError('unauthenticated', 'a call on a connection without a proven identity', 'an authenticated HELLO', 'none', 'connect as a registered node');
    return id;
  };
  const headerSha = sha256(base.header);
  const methods = defineMethods({
    diloco_job: async (h, { peer }) => {
      const participant = who(peer);
      await keeper.waitForRound(h.afterRound, Math.min(h.waitMs, o.net.pollWaitMs), participant);
      return { header: jobInfo(participant) };
    },
    diloco_model: (h) => {
      checkJob(h.jobId);
      return { header: { v: DILOCO_WIRE_VERSION, sha256: headerSha, bytes: base.header.byteLength }, payload: base.header };
    },
    diloco_weights: (h, { peer }) => {
      checkJob(h.jobId);
      const participant = who(peer);
      if (!server.params.has(h.name)) throw new DilocoError('stale_round', `no tensor ${h.name} in this model`, 'a name from the round\'s manifest', h.name, 'ask diloco_job for the manifest');
      keeper.enrol(participant, h.round, 0); // refuses a round that is not open
      const t = roundWeights().get(h.name)!;
      keeper.enrol(participant, h.round, t.bytes.byteLength);
      return { header: { v: DILOCO_WIRE_VERSION, round: h.round, name: h.name, sha256: t.sha256 }, payload: t.bytes };
    },
    diloco_push: (h, { peer, payload }) => {
      checkJob(h.jobId);
      const received = keeper.push(who(peer), h.round, { name: h.name, dtype: h.dtype, ne: h.ne, data: payload }, h.sha256);
      return { header: { v: DILOCO_WIRE_VERSION, received } };
    },
    diloco_commit: (h, { peer }) => {
      checkJob(h.jobId);
      return { header: keeper.commit(who(peer), h.round, { shardTokens: h.shardTokens, innerLoss: h.innerLoss, computeMs: h.computeMs, transferMs: h.transferMs }) };
    },
  });

  // The data plane: only members the coordinator lists as alive (with the key they registered) get in.
  const identity = loadOrCreateIdentity(o.dataDir);
  const nodeId = identity.id;
  const client = new CoordinatorClient({ url: o.coordinatorUrl, ...(o.joinToken ? { joinToken: o.joinToken } : {}), ...(o.coordinatorCa ? { caFile: o.coordinatorCa } : {}) });
  await checkCoordinatorTrust(client);
  const membership = new CoordinatorMembership(client, { ttlMs: o.net.membershipTtlMs, minRefreshMs: o.net.membershipMinRefreshMs, logger: o.logger });
  const bindHost = o.bindHost ?? '0.0.0.0';
  const tls = await dataPlaneTls(o.coordinatorUrl, o.dataDir, o.lanAddr ? [o.lanAddr.replace(/:\d+$/, '')] : []);
  const transport: TransportServer = await listen({
    host: bindHost, port: o.rpcPort, methods, session: nodeId, logger: o.logger, ...(tls ? { tls } : {}),
    auth: {
      identity, nodeId, ...(o.joinToken ? { token: o.joinToken } : {}),
      verifyPeer: async (remote) => {
        if ((await membership.member(remote.nodeId, remote.publicKey)) === undefined) {
          throw new DilocoError('no_job', `${remote.nodeId} is not a member of this federation`, 'a node the coordinator lists as alive with that key', 'unknown', 'register with the coordinator first (sharedllm diloco join does)');
        }
      },
    },
  });
  const lanAddr = o.lanAddr ?? `127.0.0.1:${transport.port}`;
  const freeMemoryBytes = ggml.memory().free;
  const lease: NodeLease = client.join({
    identity,
    logger: o.logger,
    status: () => ({ freeMemoryBytes, load: 0, training: progress }),
    registration: {
      nodeId, role: 'primary', name: o.name ?? `diloco-${jobId.slice(0, 8)}`, candidates: [{ kind: 'lan', addr: lanAddr, priority: 100 }],
      freeMemoryBytes: ggml.memory().free, threads: ggml.threads, backend: ggml.backendName,
      models: [jobRef(jobId, base.name, base.model.nLayer)], version: softwareVersion(), ...(tls ? { dataPlaneCert: tls.cert } : {}),
    },
  });
  await lease.registered;
  o.logger.info('diloco_serving', { message: `diloco job ${jobId} serving on ${lanAddr} (round ${keeper.round} of ${o.rounds})`, jobId, port: transport.port, addr: lanAddr });

  let ticking = false;
  const tick = setInterval(() => {
    if (ticking) return;
    ticking = true;
    void keeper.tick().catch((e: unknown) => o.logger.error('round_failed', { error: (e as Error).message })).finally(() => (ticking = false));
  }, o.net.tickMs);
  const done = keeper.waitUntilDone().then(() => new Promise<void>((resolve) => setTimeout(resolve, o.net.doneLingerMs)));
  let closed = false;
  return {
    jobId,
    port: transport.port,
    startRound,
    done,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(tick);
      await lease.leave().catch(() => undefined);
      await transport.close();
      client.close();
    },
  };
}
