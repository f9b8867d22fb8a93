// The primary's workers: wait for them at the coordinator, connect to each by its best candidate and probe
// what it holds and can take (`info`), have it load a span, and find a replacement for a span whose worker
// failed. Connections this pool opens but does not hand out are closed here (a worker frees a primary's
// sequences when its connection closes).
import type { CoordinatorClient } from '../coordinator/client.ts';
import { call } from '../dataplane.ts';
import type { NodeView } from '../protocol.ts';
import type { InfoResponse, LoadSpanResponse, SpanRef } from '../protocol-dataplane.ts';
import type { ClientTls, MethodSpec, Peer } from '../transport/rpc.ts';
import type { Logger } from '../../util/log.ts';
import { type ConnectBestOptions, connectBest } from './connect-best.ts';
import type { DataPlaneConfig } from './dataplane-config.ts';
import type { RemoteStage } from './remote-steps.ts';

export interface WorkerPoolOptions {
  client: CoordinatorClient;
  /** The primary's session (announced in HELLO; names its sequences on workers). */
  session: string;
  /** What the primary serves on each connection (step results, span streaming). */
  methods: Record<string, MethodSpec>;
  logger: Logger;
  config: DataPlaneConfig;
  /** Every span is loaded with this context and this many sequences. */
  nCtx: number;
  nSeqMax: number;
  joinToken?: string;
  /** This primary's identity (and the join token), proven in every connection's HELLO. */
  auth: ConnectBestOptions['auth'];
  relayTls?: ClientTls;
}

/** A worker we are connected to, with what it said about itself. */
export interface ConnectedWorker {
  view: NodeView;
  peer: Peer;
  addr: string;
  info: InfoResponse;
  cert?: string;
}

export class WorkerPool {
  constructor(private readonly options: WorkerPoolOptions) {}

  /** Workers alive at the coordinator: at least `min` of them, or whoever is there after `waitMs`. */
  async waitForWorkers(min: number, waitMs: number): Promise<NodeView[]> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const workers = await this.alive();
      if (workers.length >= min || Date.now() >= deadline) {
        if (workers.length < min) this.options.logger.warn('fewer workers than asked for; starting anyway', { want: min, have: workers.length });
        return workers;
      }
      await new Promise((r) => setTimeout(r, this.options.config.workerPollMs));
    }
  }

  /** Connect to each worker; those that cannot be reached are left out (logged). */
  async connectAll(views: readonly NodeView[]): Promise<ConnectedWorker[]> {
    const out: ConnectedWorker[] = [];
    for (const view of views) {
      try {
        const w = await this.connect(view);
        out.push(w);
        this.options.logger.info('worker connected', { nodeId: view.nodeId, addr: w.addr, freeMemoryBytes: w.info.freeMemoryBytes });
      } catch (e) {
        this.options.logger.warn('worker unreachable; leaving it out', { nodeId: view.nodeId, error: (e as Error).message });
      }
    }
    return out;
  }

  /** Connect by the best candidate and ask the worker what it holds and has room for. */
  async connect(view: NodeView): Promise<ConnectedWorker> {
    const { session, methods, logger, joinToken, relayTls, config, auth } = this.options;
    const { peer, addr, cert } = await connectBest(view, { session, methods, logger, auth, timeoutMs: config.connectTimeoutMs, ...(joinToken ? { joinToken } : {}), ...(relayTls ? { relayTls } : {}) });
    try {
      const { header: info } = await call(peer, 'info', {}, { timeoutMs: config.callTimeoutMs });
      return { view, peer, addr, info, ...(cert ? { cert } : {}) };
    } catch (e) {
      peer.close();
      throw e;
    }
  }

  /** Have a connected worker hold `span`; the stage the pipeline uses. Closes the connection if it fails. */
  async load(w: ConnectedWorker, span: SpanRef): Promise<RemoteStage> {
    let r: LoadSpanResponse;
    try {
      ({ header: r } = await call(w.peer, 'load_span', { ...span, nCtx: this.options.nCtx, nSeqMax: this.options.nSeqMax }, { timeoutMs: this.options.config.loadSpanTimeoutMs }));
    } catch (e) {
      w.peer.close();
      throw e;
    }
    this.options.logger.info('span placed', { nodeId: w.view.nodeId, first: span.first, last: span.last, source: r.source, bytes: r.bytes, loadMs: r.loadMs });
    return { kind: 'remote', span, nodeId: w.view.nodeId, addr: w.addr, peer: w.peer, ...(w.cert ? { cert: w.cert } : {}) };
  }

  /** A worker alive at the coordinator, not in `exclude`, with room for `spanBytes`, now holding `span`. */
  async replacement(span: SpanRef, spanBytes: number, exclude: ReadonlySet<string>): Promise<RemoteStage | undefined> {
    for (const view of (await this.alive()).filter((w) => !exclude.has(w.nodeId))) {
      try {
        const w = await this.connect(view);
        if (w.info.freeMemoryBytes < spanBytes) {
          w.peer.close();
          continue;
        }
        return await this.load(w, span);
      } catch (e) {
        this.options.logger.warn('replacement worker failed', { nodeId: view.nodeId, error: (e as Error).message });
      }
    }
    return undefined;
  }

  private alive(): Promise<NodeView[]> {
    return this.options.client.listNodes({ role: 'worker', state: 'alive' }).catch(() => []);
  }
}
