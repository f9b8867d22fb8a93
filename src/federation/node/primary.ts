// The primary node, composed of parts that each do one job: it registers with the coordinator, serves its
// workers the data-plane methods a primary serves (primaryMethods), finds and connects workers (WorkerPool),
// plans layer spans in proportion to free memory, its own and theirs (planLayers), loads them (workers from
// their own copy or streamed from here), and serves the model through a pipeline with failover
// (PipelineForward). The OpenAI API on top is started by the CLI (src/cli/node.ts).
import { randomBytes } from 'node:crypto';
import { getGgml } from '../../ggml/runtime.ts';
import { openGguf } from '../../gguf/reader.ts';
import { Batcher } from '../../model/batcher.ts';
import { type HParams, kvWidth, readHParams } from '../../model/hparams.ts';
import { loadModelPart } from '../../model/load.ts';
import type { ModelPart } from '../../model/model-part.ts';
import { CoordinatorClient } from '../coordinator/client.ts';
import { loadOrCreateIdentity } from '../identity.ts';
import type { NodeLease } from '../coordinator/lease.ts';
import type { Logger } from '../../util/log.ts';
import { spanText } from '../../util/log.ts';
import { softwareVersion } from '../coordinator/version.ts';
import { defineMethods } from '../dataplane.ts';
import { API_PREFIX } from '../protocol.ts';
import { AcceptResultSchema } from '../protocol-directory.ts';
import type { SpanRef } from '../protocol-dataplane.ts';
import type { MethodSpec } from '../transport/rpc.ts';
import { checkCoordinatorTrust, relayTls } from './coordinator-link.ts';
import { type DataPlaneConfig, lanDataPlane, validateDataPlane } from './dataplane-config.ts';
import { hashFile } from './model-hash.ts';
import { NoCapacityError, PipelineForward, type Stage } from './pipeline.ts';
import { type Participant, type PlannedSpan, planSpans } from './plan.ts';
import { SpanServer } from './span-source.ts';
import { type ConnectedWorker, WorkerPool } from './worker-pool.ts';
import { Verifier, defaultVerifyConfig } from './verify.ts';
import { GossipService, type GossipPeers } from './gossip-service.ts';
import { SpecialistSet } from './specialists.ts';
import { lanDirectoryConfig } from '../directory/config.ts';
import type { DirectoryConfig } from '../directory/config.ts';

export interface PrimaryOptions {
  model: string;
  /** Specialist GGUF files served beside the model, each whole on this node (specialists.ts). */
  specialists?: readonly string[];
  coordinatorUrl: string;
  joinToken?: string;
  coordinatorCa?: string;
  dataDir: string;
  cacheDir: string;
  name?: string;
  threads?: number;
  gpu?: 'auto' | 'off';
  nCtx?: number;
  /** Sequences served at once (KV caches reserved per span). */
  nSeqMax: number;
  /** Pin the number of layers this node runs itself. */
  localLayers?: number;
  /** Cap this node's memory for layers. */
  maxMemoryBytes?: number;
  /** Wait for at least this many workers before planning (0: start with whoever is there). */
  waitWorkers: number;
  waitMs: number;
  /** How often to try moving layers taken over during failover back to a worker (default 30 s). */
  rebalanceMs?: number;
  /** Retry, ban and timeout numbers of the data plane (default lanDataPlane(); `--network wan`: wanDataPlane()). */
  dataPlane?: DataPlaneConfig;
  /** Fraction of sequences whose workers are verified (verify.ts; default its config's rate; 0: off). */
  verifyRate?: number;
  /** Specialist directory and its gossip (default lanDirectoryConfig()). */
  directory?: DirectoryConfig;
  /** 'coordinator': no node-to-node gossip, the directory comes from the coordinator only (comparisons). */
  gossipPeers?: GossipPeers;
  logger: Logger;
  onProgress?: (what: string, done: number, total: number) => void;
}

export interface Primary {
  nodeId: string;
  h: HParams;
  modelHash: string;
  pipeline: PipelineForward;
  batcher: Batcher;
  /** This node's replica of the specialist directory and its gossip. */
  gossip: GossipService;
  /** The specialists this node serves beside its model. */
  specialists: SpecialistSet;
  /** Who holds which layers. */
  plan(): { nodeId: string; first: number; last: number; where: string }[];
  close(): Promise<void>;
}

export async function startPrimary(o: PrimaryOptions): Promise<Primary> {
  const config = validateDataPlane(o.dataPlane ?? lanDataPlane());
  const identity = loadOrCreateIdentity(o.dataDir);
  const nodeId = identity.id;
  // Unguessable: a worker serves a step for the sequences of the session the step names, so only this primary
  // and the workers on its routes (who see it in step headers) can address this primary's caches.
  const session = `${nodeId}-${randomBytes(12).toString('hex')}`;
  // Every data-plane connection proves this identity (and the join token) in HELLO; see transport/hello-auth.ts.
  const auth = { identity, nodeId, ...(o.joinToken ? { token: o.joinToken } : {}) };
  const modelHash = hashFile(o.model, o.cacheDir, (d, t) => o.onProgress?.('hashing model', d, t));
  const file = openGguf(o.model);
  const h = readHParams(file.metadata, o.model);
  const layerBytes0 = file.tensorsForLayers(0, 1).reduce((n, t) => n + t.byteSize, 0);
  file.dispose();
  const nCtx = o.nCtx ?? Math.min(h.nCtxTrain, 4096);
  const kvPerLayer = 2 * kvWidth(h) * nCtx * 2 * o.nSeqMax;
  const layerBytes = layerBytes0 + kvPerLayer;
  const ggml = getGgml({ gpu: o.gpu ?? 'auto', ...(o.threads ? { threads: o.threads } : {}) });
  const spans = new SpanServer(o.model, modelHash);
  const specialists = await SpecialistSet.load(o.specialists ?? [], {
    base: o.model, cacheDir: o.cacheDir, nSeqMax: o.nSeqMax, logger: o.logger, gpu: o.gpu ?? 'auto',
    ...(o.threads ? { threads: o.threads } : {}), ...(o.nCtx !== undefined ? { nCtx: o.nCtx } : {}), ...(o.onProgress ? { onProgress: o.onProgress } : {}),
  });

  const client = new CoordinatorClient({ url: o.coordinatorUrl, ...(o.joinToken ? { joinToken: o.joinToken } : {}), ...(o.coordinatorCa ? { caFile: o.coordinatorCa } : {}) });
  await checkCoordinatorTrust(client);
  const tlsToRelay = relayTls(o.coordinatorUrl, o.coordinatorCa);
  const lease: NodeLease = client.join({
    identity,
    logger: o.logger,
    registration: {
      nodeId, role: 'primary', name: o.name ?? `primary-${nodeId.slice(0, 6)}`, candidates: [],
      freeMemoryBytes: ggml.memory().free, threads: ggml.threads, backend: ggml.backendName,
      models: [
        { hash: `sha256:${modelHash}`, name: h.name.slice(0, 200) || 'model', nLayers: h.nLayer },
        ...specialists.all.map((s) => ({ hash: s.contentHash, name: s.stem.slice(0, 200), nLayers: s.nLayer })),
      ],
      version: softwareVersion(),
    },
  });
  await lease.registered;
  // The directory: gossiped over the connections this primary opens (to workers; gossip-service.ts).
  const gossip = new GossipService({
    nodeId, identity, dataDir: o.dataDir, client, config: o.directory ?? lanDirectoryConfig(), logger: o.logger,
    ...(o.gossipPeers ? { peers: o.gossipPeers } : {}),
    ...(o.joinToken ? { joinToken: o.joinToken } : {}), ...(tlsToRelay ? { relayTls: tlsToRelay } : {}),
  });
  // Serving records for the specialists whose manifests the directory holds, now and as manifests arrive.
  gossip.onRound(() => specialists.announce(gossip.directory, identity, o.logger));
  gossip.start();

  let pipeline: PipelineForward | undefined;
  const pool = new WorkerPool({
    client, session, logger: o.logger, config, auth, nCtx, nSeqMax: o.nSeqMax, methods: { ...primaryMethods(() => pipeline, spans), ...gossip.methods() },
    ...(o.joinToken ? { joinToken: o.joinToken } : {}), ...(tlsToRelay ? { relayTls: tlsToRelay } : {}),
  });
  const connected = await pool.connectAll(await pool.waitForWorkers(o.waitWorkers, o.waitMs));
  // Our own room for layers: free memory minus the embeddings and head we hold anyway.
  const own = Math.min(o.maxMemoryBytes ?? Number.MAX_SAFE_INTEGER, ggml.memory().free) - 2 * h.nVocab * h.nEmbd * 2;
  const plan = planLayers(nodeId, h.nLayer, layerBytes, own, connected, o.localLayers);
  o.logger.info('plan', { spans: plan.map((p) => `${p.id}:[${p.first},${p.last})`).join(' ') });

  const load = (layout: { embeddings: boolean; first: number; last: number; head: boolean }) =>
    loadModelPart(o.model, { gpu: o.gpu ?? 'auto', ...(o.threads ? { threads: o.threads } : {}), layout, nCtx, nSeqMax: o.nSeqMax, onProgress: (d, t) => o.onProgress?.(`loading layers ${spanText(layout.first, layout.last)}`, d, t) }).then((m) => m.part);
  const front: ModelPart = await load({ embeddings: true, first: 0, last: plan[0]!.last, head: false });
  const head: ModelPart = await load({ embeddings: false, first: h.nLayer, last: h.nLayer, head: true });
  const stages: Stage[] = await Promise.all(plan.slice(1).map((p) => pool.load(connected.find((c) => c.view.nodeId === p.id)!, { modelHash, first: p.first, last: p.last })));
  for (const c of connected) if (!plan.some((p) => p.id === c.view.nodeId)) c.peer.close();

  // A failed worker's span: another worker with room, else (unless only a worker will do) this node.
  const replace = async (span: SpanRef, exclude: ReadonlySet<string>, opts: { remoteOnly?: boolean } = {}): Promise<Stage> => {
    const spanBytes = (span.last - span.first) * layerBytes;
    const remote = await pool.replacement(span, spanBytes, exclude);
    if (remote) return remote;
    if (!opts.remoteOnly && ggml.memory().free > spanBytes) {
      return { kind: 'local', span, part: await load({ embeddings: false, first: span.first, last: span.last, head: false }) };
    }
    throw new NoCapacityError('no capacity left for layers', `a worker or local memory for ${span.last - span.first} layers`, 'none', 'add a worker (sharedllm node --role worker ...) or free memory on this machine');
  };

  const rate = o.verifyRate ?? defaultVerifyConfig().rate;
  const verifier = rate > 0 ? new Verifier({ config: { rate }, logger: o.logger, load: (s) => load({ embeddings: false, first: s.first, last: s.last, head: false }) }) : undefined;
  pipeline = new PipelineForward({ front, stages, head, session, logger: o.logger, replace, config, ...(verifier ? { verifier } : {}) });
  const batcher = new Batcher(pipeline, 512, Math.max(1, stages.length + 1));
  const rebalance = setInterval(() => void pipeline?.rebalance(), Math.max(1_000, o.rebalanceMs ?? 30_000));
  rebalance.unref();
  return {
    nodeId,
    h,
    modelHash,
    pipeline,
    batcher,
    gossip,
    specialists,
    plan: () => [
      { nodeId, first: 0, last: front.layout.last, where: 'primary' },
      ...pipeline!.stages.map((s) => ({ nodeId: s.kind === 'remote' ? s.nodeId : nodeId, first: s.span.first, last: s.span.last, where: s.kind === 'remote' ? s.addr : 'primary' })),
    ],
    async close() {
      clearInterval(rebalance);
      // Withdraw our serving records: stored here, and told to the coordinator while it is up (best effort).
      for (const record of specialists.withdraw(gossip.directory, identity)) {
        await client.call('POST', `${API_PREFIX}/specialists/serving`, record, AcceptResultSchema).catch(() => undefined);
      }
      await gossip.close();
      await specialists.dispose();
      await lease.leave().catch(() => undefined);
      verifier?.dispose();
      pipeline!.dispose();
      front.dispose();
      head.dispose();
      spans.dispose();
      client.close();
    },
  };
}

/**
 * What a primary serves its workers: the last hop's result and a hop's error (checked by the pipeline,
 * which knows the connection they came on), and span streaming for workers without a copy of the model.
 */
export function primaryMethods(pipeline: () => PipelineForward | undefined, spans: SpanServer): Record<string, MethodSpec> {
  return defineMethods({
    step_result: (h, { payload, peer }) => void pipeline()?.onStepResult(h, payload, peer),
    step_error: (h, { peer }) => void pipeline()?.onStepError(h, peer),
    span_manifest: (h) => ({ header: spans.manifest(h) }),
    span_tensor: (h) => ({ header: { ok: true }, payload: spans.tensor(h.modelHash, h.name) }),
  });
}

/** Layer spans in proportion to free memory: this node first (embeddings and head on top), then the workers. */
export function planLayers(nodeId: string, nLayer: number, layerBytes: number, ownBytes: number, workers: readonly ConnectedWorker[], localLayers?: number): PlannedSpan[] {
  const participants: Participant[] = [{ id: nodeId, freeBytes: ownBytes }, ...workers.map((c) => ({ id: c.view.nodeId, freeBytes: c.info.freeMemoryBytes }))];
  const fixed = new Map<string, number>(localLayers !== undefined ? [[nodeId, localLayers]] : []);
  return planSpans(nLayer, layerBytes, participants, fixed);
}
