// The primary node: registers with the coordinator, finds workers, plans layer spans in proportion to free
// memory (its own and theirs), loads them (workers from their own copy or streamed from here), and serves the
// model through a pipeline with failover. The OpenAI API on top is started by the CLI (src/cli/node.ts).
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
import { softwareVersion } from '../coordinator/version.ts';
import type { NodeView } from '../protocol.ts';
import { call, defineMethods } from '../dataplane.ts';
import type { InfoResponse, SpanRef } from '../protocol-dataplane.ts';
import type { MethodSpec, Peer } from '../transport/rpc.ts';
import { connectBest } from './connect-best.ts';
import { checkCoordinatorTrust, relayTls } from './coordinator-link.ts';
import { hashFile } from './model-hash.ts';
import { NoCapacityError, PipelineForward, type Stage } from './pipeline.ts';
import { type Participant, planSpans } from './plan.ts';
import { SpanServer } from './span-source.ts';
import { Verifier, defaultVerifyConfig } from './verify.ts';

export interface PrimaryOptions {
  model: string;
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
  /** Fraction of sequences whose workers are verified (verify.ts; default its config's rate; 0: off). */
  verifyRate?: number;
  logger: Logger;
  onProgress?: (what: string, done: number, total: number) => void;
}

export interface Primary {
  nodeId: string;
  h: HParams;
  modelHash: string;
  pipeline: PipelineForward;
  batcher: Batcher;
  /** Who holds which layers. */
  plan(): { nodeId: string; first: number; last: number; where: string }[];
  close(): Promise<void>;
}

export async function startPrimary(o: PrimaryOptions): Promise<Primary> {
  const identity = loadOrCreateIdentity(o.dataDir);
  const nodeId = identity.id;
  // Unguessable: a worker serves a step for the sequences of the session the step names, so only this primary
  // and the workers on its routes (who see it in step headers) can address this primary's caches.
  const session = `${nodeId}-${randomBytes(12).toString('hex')}`;
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

  const client = new CoordinatorClient({ url: o.coordinatorUrl, ...(o.joinToken ? { joinToken: o.joinToken } : {}), ...(o.coordinatorCa ? { caFile: o.coordinatorCa } : {}) });
  await checkCoordinatorTrust(client);
  const tlsToRelay = relayTls(o.coordinatorUrl, o.coordinatorCa);
  const lease: NodeLease = client.join({
    identity,
    logger: o.logger,
    registration: {
      nodeId, role: 'primary', name: o.name ?? `primary-${nodeId.slice(0, 6)}`, candidates: [],
      freeMemoryBytes: ggml.memory().free, threads: ggml.threads, backend: ggml.backendName,
      models: [{ hash: `sha256:${modelHash}`, name: h.name.slice(0, 200) || 'model', nLayers: h.nLayer }], version: softwareVersion(),
    },
  });
  await lease.registered;

  let pipeline: PipelineForward | undefined;
  const methods: Record<string, MethodSpec> = defineMethods({
    step_result: (h, { payload }) => void pipeline?.onStepResult(h.stepId, payload, h.trace),
    step_error: (h) => void pipeline?.onStepError(h.stepId, h.nodeId, h.message),
    span_manifest: (h) => ({ header: spans.manifest(h) }),
    span_tensor: (h) => ({ header: { ok: true }, payload: spans.tensor(h.modelHash, h.name) }),
  });

  const workers = await waitForWorkers(client, o);
  const connected: { view: NodeView; peer: Peer; addr: string; info: InfoResponse; cert?: string }[] = [];
  for (const w of workers) {
    try {
      const { peer, addr, cert } = await connectBest(w, { session, methods, logger: o.logger, ...(o.joinToken ? { joinToken: o.joinToken } : {}), ...(tlsToRelay ? { relayTls: tlsToRelay } : {}) });
      const { header: info } = await call(peer, 'info', {}, { timeoutMs: 10_000 });
      connected.push({ view: w, peer, addr, info, ...(cert ? { cert } : {}) });
      o.logger.info('worker connected', { nodeId: w.nodeId, addr, freeMemoryBytes: info.freeMemoryBytes });
    } catch (e) {
      o.logger.warn('worker unreachable; leaving it out', { nodeId: w.nodeId, error: (e as Error).message });
    }
  }
  // Our own room for layers: free memory minus the embeddings and head we hold anyway.
  const own = Math.min(o.maxMemoryBytes ?? Number.MAX_SAFE_INTEGER, ggml.memory().free) - 2 * h.nVocab * h.nEmbd * 2;
  const participants: Participant[] = [{ id: nodeId, freeBytes: own }, ...connected.map((c) => ({ id: c.view.nodeId, freeBytes: c.info.freeMemoryBytes }))];
  const fixed = new Map<string, number>(o.localLayers !== undefined ? [[nodeId, o.localLayers]] : []);
  const plan = planSpans(h.nLayer, layerBytes, participants, fixed);
  o.logger.info('plan', { spans: plan.map((p) => `${p.id}:[${p.first},${p.last})`).join(' ') });

  const load = (layout: { embeddings: boolean; first: number; last: number; head: boolean }) =>
    loadModelPart(o.model, { gpu: o.gpu ?? 'auto', ...(o.threads ? { threads: o.threads } : {}), layout, nCtx, nSeqMax: o.nSeqMax, onProgress: (d, t) => o.onProgress?.(`loading layers ${layout.first}-${layout.last}`, d, t) }).then((m) => m.part);
  const mine = plan[0]!;
  const front: ModelPart = await load({ embeddings: true, first: 0, last: mine.last, head: false });
  const head: ModelPart = await load({ embeddings: false, first: h.nLayer, last: h.nLayer, head: true });
  const stages: Stage[] = await Promise.all(
    plan.slice(1).map(async (p) => {
      const c = connected.find((x) => x.view.nodeId === p.id)!;
      const span: SpanRef = { modelHash, first: p.first, last: p.last };
      const { header: r } = await call(c.peer, 'load_span', { ...span, nCtx, nSeqMax: o.nSeqMax }, { timeoutMs: 30 * 60_000 });
      o.logger.info('span placed', { nodeId: p.id, first: p.first, last: p.last, source: r.source, bytes: r.bytes, loadMs: r.loadMs });
      return { kind: 'remote' as const, span, nodeId: p.id, addr: c.addr, peer: c.peer, ...(c.cert ? { cert: c.cert } : {}) };
    }),
  );
  for (const c of connected) if (!plan.some((p) => p.id === c.view.nodeId)) c.peer.close();

  const replace = async (span: SpanRef, exclude: ReadonlySet<string>, opts: { remoteOnly?: boolean } = {}): Promise<Stage> => {
    const spanBytes = (span.last - span.first) * layerBytes;
    const alive = (await client.listNodes({ role: 'worker', state: 'alive' }).catch(() => [])).filter((w) => !exclude.has(w.nodeId));
    for (const w of alive) {
      try {
        const { peer, addr, cert } = await connectBest(w, { session, methods, logger: o.logger, ...(o.joinToken ? { joinToken: o.joinToken } : {}), ...(tlsToRelay ? { relayTls: tlsToRelay } : {}) });
        const { header: info } = await call(peer, 'info', {}, { timeoutMs: 10_000 });
        if (info.freeMemoryBytes < spanBytes) {
          peer.close();
          continue;
        }
        await call(peer, 'load_span', { ...span, nCtx, nSeqMax: o.nSeqMax }, { timeoutMs: 30 * 60_000 });
        return { kind: 'remote', span, nodeId: w.nodeId, addr, peer, ...(cert ? { cert } : {}) };
      } catch (e) {
        o.logger.warn('replacement worker failed', { nodeId: w.nodeId, error: (e as Error).message });
      }
    }
    if (!opts.remoteOnly && ggml.memory().free > spanBytes) {
      return { kind: 'local', span, part: await load({ embeddings: false, first: span.first, last: span.last, head: false }) };
    }
    throw new NoCapacityError('no capacity left for layers', `a worker or local memory for ${span.last - span.first} layers`, 'none', 'add a worker (sharedllm node --role worker ...) or free memory on this machine');
  };

  const rate = o.verifyRate ?? defaultVerifyConfig().rate;
  const verifier = rate > 0 ? new Verifier({ config: { rate }, logger: o.logger, load: (s) => load({ embeddings: false, first: s.first, last: s.last, head: false }) }) : undefined;
  pipeline = new PipelineForward({ front, stages, head, session, logger: o.logger, replace, ...(verifier ? { verifier } : {}) });
  const batcher = new Batcher(pipeline, 512, Math.max(1, stages.length + 1));
  const rebalance = setInterval(() => void pipeline?.rebalance(), Math.max(1_000, o.rebalanceMs ?? 30_000));
  rebalance.unref();
  return {
    nodeId,
    h,
    modelHash,
    pipeline,
    batcher,
    plan: () => [
      { nodeId, first: 0, last: front.layout.last, where: 'primary' },
      ...pipeline!.stages.map((s) => ({ nodeId: s.kind === 'remote' ? s.nodeId : nodeId, first: s.span.first, last: s.span.last, where: s.kind === 'remote' ? s.addr : 'primary' })),
    ],
    async close() {
      clearInterval(rebalance);
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

async function waitForWorkers(client: CoordinatorClient, o: PrimaryOptions): Promise<NodeView[]> {
  const deadline = Date.now() + o.waitMs;
  for (;;) {
    const workers = await client.listNodes({ role: 'worker', state: 'alive' }).catch(() => [] as NodeView[]);
    if (workers.length >= o.waitWorkers || Date.now() >= deadline) {
      if (workers.length < o.waitWorkers) o.logger.warn('fewer workers than asked for; starting anyway', { want: o.waitWorkers, have: workers.length });
      return workers;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}
