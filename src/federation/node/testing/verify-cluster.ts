// An in-process pipeline for verification tests and bench/verify.ts: a primary (front + head parts and a
// PipelineForward) and workers (WorkerService over loopback TCP), one span per worker, spare workers for
// re-planning. A worker can be made to lie: its span's output is perturbed on chosen steps (before it
// fingerprints it, as a worker with wrong weights or a skipped layer would).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openGguf } from '../../../gguf/reader.ts';
import { readHParams } from '../../../model/hparams.ts';
import { loadModelPart } from '../../../model/load.ts';
import type { ModelPart } from '../../../model/model-part.ts';
import { type Logger, silentLogger } from '../../../util/log.ts';
import { mulberry32 } from '../../../util/random.ts';
import { call, defineMethods } from '../../dataplane.ts';
import type { SpanRef } from '../../protocol-dataplane.ts';
import { type Peer, type TransportServer, connect, listen } from '../../transport/rpc.ts';
import { hashFile } from '../model-hash.ts';
import { NoCapacityError, PipelineForward, type Stage } from '../pipeline.ts';
import { type VerifyConfig, Verifier } from '../verify.ts';
import { WorkerService } from '../worker-service.ts';
import { createEphemeralIdentity } from '../../identity.ts';
import { StaticMembership } from '../membership.ts';

export interface Lie {
  /** Perturb the output of a step when this returns true (called once per step, counting from 1). */
  on: (step: number) => boolean;
  /** Noise added to each coordinate, as a fraction of the token's RMS. */
  size: number;
}

export interface ClusterWorker {
  nodeId: string;
  addr: string;
  /** In-process workers only. */
  service?: WorkerService;
  server?: TransportServer;
  /** Steps this worker ran, and how many it altered. */
  steps: number;
  lies: number;
  lie?: Lie;
  /** When it first altered a step (performance.now()), and the cluster's pipeline step count then. */
  firstLie?: { at: number; step: number };
}

export interface VerifyCluster {
  pipeline: PipelineForward;
  verifier: Verifier;
  workers: ClusterWorker[];
  front: ModelPart;
  head: ModelPart;
  /** Greedy decode of `n` tokens after `prompt`; returns the generated ids. */
  generate(prompt: readonly number[], n: number): Promise<number[]>;
  /** The same for several sequences stepped together (one pipeline step carries all of them). */
  generateBatch(prompts: readonly (readonly number[])[], n: number): Promise<number[][]>;
  /** Pipeline steps run so far. */
  readonly steps: number;
  close(): Promise<void>;
}

export interface VerifyClusterOptions {
  model: string;
  /** Layer spans of the remote chain, in order; layers before the first stay on the primary. */
  spans: readonly [number, number][];
  /** Spare workers (for re-planning after a ban). */
  spares?: number;
  verify: Partial<VerifyConfig>;
  nCtx?: number;
  logger?: Logger;
  /**
   * Workers running elsewhere (other processes, e.g. with other CPU kernels): node id and loopback address,
   * used instead of in-process ones (they cannot be made to lie).
   */
  external?: { nodeId: string; addr: string }[];
  /** Run without a verifier (the pipeline as before; benchmarks' baseline). */
  noVerifier?: boolean;
  /** Sampling randomness (tests pass a seeded one). */
  random?: () => number;
}

export async function startVerifyCluster(opts: VerifyClusterOptions): Promise<VerifyCluster> {
  const logger = opts.logger ?? silentLogger;
  const nCtx = opts.nCtx ?? 256;
  const dir = mkdtempSync(join(tmpdir(), 'sharedllm-verify-'));
  const modelHash = hashFile(opts.model, dir);
  const load = (layout: { embeddings: boolean; first: number; last: number; head: boolean }) =>
    loadModelPart(opts.model, { gpu: 'off', threads: 1, nCtx, nSeqMax: 4, layout }).then((m) => m.part);
  const file = openGguf(opts.model);
  const nLayer = readHParams(file.metadata, opts.model).nLayer;
  file.dispose();
  const front = await load({ embeddings: true, first: 0, last: opts.spans[0]![0], head: false });
  const head = await load({ embeddings: false, first: nLayer, last: nLayer, head: true });
  const session = 'primary-verify';
  // Workers admit members only (authenticated HELLO): this primary and the in-process workers.
  const identity = createEphemeralIdentity();
  const membership = new StaticMembership([{ nodeId: identity.id, publicKey: identity.publicKey, role: 'primary', addrs: [], models: [modelHash] }]);

  let pipeline: PipelineForward | undefined;
  const methods = defineMethods({
    step_result: (h, { payload, peer }) => void pipeline?.onStepResult(h, payload, peer),
    step_error: (h, { peer }) => void pipeline?.onStepError(h, peer),
  });

  const workers: ClusterWorker[] = [];
  for (const e of opts.external ?? []) workers.push({ ...e, steps: 0, lies: 0 });
  for (let i = 0; !opts.external && i < opts.spans.length + (opts.spares ?? 1); i++) {
    const nodeId = `worker-${i + 1}`;
    const workerIdentity = createEphemeralIdentity();
    const service = new WorkerService({ nodeId, identity: workerIdentity, membership, cacheDir: dir, modelFiles: [opts.model], threads: 1, gpu: 'off', logger });
    const server = await listen({ host: '127.0.0.1', port: 0, methods: service.methods(), session: nodeId, auth: service.auth() });
    service.attach(server);
    membership.add({ nodeId, publicKey: workerIdentity.publicKey, role: 'worker', addrs: [`127.0.0.1:${server.port}`], models: [] });
    workers.push({ nodeId, addr: `127.0.0.1:${server.port}`, service, server, steps: 0, lies: 0 });
  }
  const rnd = mulberry32(7);
  let steps = 0;
  /** Load a span on a worker and wrap its part so that the worker can lie. */
  const place = async (w: ClusterWorker, span: SpanRef): Promise<Extract<Stage, { kind: 'remote' }>> => {
    const peer: Peer = await connect(w.addr, { session, methods, auth: { identity } });
    await call(peer, 'load_span', { ...span, nCtx, nSeqMax: 4 });
    for (const held of w.service?.spans.values() ?? []) {
      const part = held.part;
      const honest = part.step.bind(part);
      part.step = (inputs) => {
        const r = honest(inputs);
        w.steps++;
        if (w.lie?.on(w.steps) && r.hidden) {
          w.lies++;
          w.firstLie ??= { at: performance.now(), step: steps };
          perturb(r.hidden, part.h.nEmbd, w.lie.size, rnd);
        }
        return r;
      };
    }
    return { kind: 'remote', span, nodeId: w.nodeId, addr: w.addr, peer };
  };
  const stages: Stage[] = [];
  for (const [i, [first, last]] of opts.spans.entries()) stages.push(await place(workers[i]!, { modelHash, first, last }));
  const used = new Set(stages.map((s) => (s.kind === 'remote' ? s.nodeId : '')));
  const replace = async (span: SpanRef, exclude: ReadonlySet<string>): Promise<Stage> => {
    const w = workers.find((x) => !exclude.has(x.nodeId) && !used.has(x.nodeId));
    if (!w) throw new NoCapacityError('no spare worker', 'a spare', 'none', 'start the cluster with more spares');
    used.add(w.nodeId);
    return place(w, span);
  };
  const verifier = new Verifier({ config: opts.verify, logger, load: (span) => load({ embeddings: false, first: span.first, last: span.last, head: false }), ...(opts.random ? { random: opts.random } : {}) });
  pipeline = new PipelineForward({ front, stages, head, session, logger, replace, ...(opts.noVerifier ? {} : { verifier }) });

  const generateBatch = async (prompts: readonly (readonly number[])[], n: number): Promise<number[][]> => {
    const seqs: number[] = [];
    const out: number[][] = prompts.map(() => []);
    try {
      for (const _ of prompts) seqs.push(await pipeline!.openSequence());
      let tokens = prompts.map((p) => Int32Array.from(p));
      for (let i = 0; i < n; i++) {
        const r = await pipeline!.step(seqs.map((seq, k) => ({ seq, tokens: tokens[k]!, logits: 'last' as const })));
        steps++;
        tokens = r.logits.map((l, k) => {
          const next = argmax(l[0]!);
          out[k]!.push(next);
          return Int32Array.of(next);
        });
      }
    } finally {
      for (const seq of seqs) await pipeline!.closeSequence(seq);
    }
    return out;
  };
  return {
    pipeline, verifier, workers, front, head, generateBatch,
    get steps() {
      return steps;
    },
    generate: (prompt, n) => generateBatch([prompt], n).then((r) => r[0]!),
    async close() {
      verifier.dispose();
      pipeline!.dispose();
      front.dispose();
      head.dispose();
      for (const w of workers) {
        await w.server?.close();
        w.service?.dispose();
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Add noise of `size` x the token's RMS to every coordinate (uniform in [-size, size] x RMS). */
export function perturb(hidden: Float32Array, nEmbd: number, size: number, rnd: () => number): void {
  for (let base = 0; base < hidden.length; base += nEmbd) {
    let ss = 0;
    for (let c = 0; c < nEmbd; c++) ss += hidden[base + c]! ** 2;
    const rms = Math.sqrt(ss / nEmbd);
    for (let c = 0; c < nEmbd; c++) hidden[base + c]! += (rnd() * 2 - 1) * size * rms;
  }
}

export function argmax(v: Float32Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i]! > v[best]!) best = i;
  return best;
}
