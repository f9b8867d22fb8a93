// The primary's side of a step through a chain of workers: send the hidden states to the first hop (the
// route names the rest), wait for the last hop's `step_result` under a deadline that scales with the work
// (step-deadline.ts), and check the answer before anyone uses it. Workers are checked, not trusted:
//
//   - the result comes from the last hop's own connection (a first hop cannot answer for the rest),
//   - its trace names every hop of the chain, in order (no hop skipped),
//   - nTokens and the payload match the step (tokens x n_embd f32), and every value is finite,
//   - claimed compute times are clamped to the wall time measured here (they feed /v1/federation).
//
// Any failure is a StageFailure naming the worker to blame (or none, after a deadline: the pipeline then
// pings the hops to find the hung one). The pipeline bans it, re-plans its span and replays.
import type { Logger } from '../../util/log.ts';
import { notify } from '../dataplane.ts';
import type { Hop, SpanRef, StageTime } from '../protocol-dataplane.ts';
import type { Peer } from '../transport/rpc.ts';
import type { DataPlaneConfig } from './dataplane-config.ts';
import { StepDeadline } from './step-deadline.ts';

/** A span held by a worker, as the pipeline uses it. */
export interface RemoteStage {
  kind: 'remote';
  span: SpanRef;
  nodeId: string;
  addr: string;
  peer: Peer;
  cert?: string;
}

export type FailureKind = 'closed' | 'timeout' | 'error' | 'malformed';

/** A worker failed a data-plane call (or, with no nodeId, a chain missed its deadline). */
export class StageFailure extends Error {
  constructor(
    readonly nodeId: string | undefined,
    readonly kind: FailureKind,
    message: string,
    /** The stages the failed call went to: a step's chain (to find the hung hop when nodeId is unknown), or one stage. */
    readonly chain: readonly RemoteStage[] = [],
  ) {
    super(message);
    this.name = 'StageFailure';
  }
}

interface PendingStep {
  chain: RemoteStage[];
  nTokens: number;
  nEmbd: number;
  sentAt: number;
  timer: NodeJS.Timeout;
  resolve: (r: { hidden: Float32Array; trace: StageTime[] }) => void;
  reject: (e: StageFailure) => void;
}

export class RemoteSteps {
  readonly deadline: StepDeadline;
  private readonly pending = new Map<number, PendingStep>();
  private nextStep = 1;

  constructor(
    private readonly session: string,
    config: DataPlaneConfig,
    private readonly logger: Logger,
  ) {
    this.deadline = new StepDeadline(config);
  }

  /** One traversal of a chain of workers: hidden states (token-major, groups in order) in, out. */
  run(chain: RemoteStage[], groups: { seq: number; n: number }[], hidden: Float32Array, nEmbd: number, salt?: number): Promise<{ hidden: Float32Array; trace: StageTime[] }> {
    const stepId = this.nextStep++;
    const first = chain[0]!;
    const route: Hop[] = chain.slice(1).map((s) => ({ addr: s.addr, nodeId: s.nodeId, span: s.span, ...(s.cert ? { cert: s.cert } : {}) }));
    const nTokens = groups.reduce((a, g) => a + g.n, 0);
    const timeoutMs = this.deadline.deadlineMs(nTokens);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(stepId);
        reject(new StageFailure(undefined, 'timeout', `no answer from ${chain.map((s) => s.nodeId).join(' -> ')} within ${timeoutMs} ms (${nTokens} tokens)`, chain));
      }, timeoutMs);
      this.pending.set(stepId, { chain, nTokens, nEmbd, sentAt: performance.now(), timer, resolve, reject });
      try {
        notify(first.peer, 'step', { session: this.session, stepId, span: first.span, groups, nEmbd, route, ...(salt === undefined ? {} : { salt }) }, new Uint8Array(hidden.buffer, hidden.byteOffset, hidden.byteLength));
      } catch (e) {
        this.settle(stepId, new StageFailure(first.nodeId, 'closed', `cannot send the step to ${first.nodeId}: ${(e as Error).message}`, chain));
      }
    });
  }

  /** `step_result` arrived on connection `from`. */
  onResult(result: { stepId: number; nTokens: number; trace?: StageTime[] | undefined }, payload: Uint8Array, from: Peer): void {
    const p = this.pending.get(result.stepId);
    if (!p) return; // late (after its deadline) or not ours
    const last = p.chain.at(-1)!;
    const sender = p.chain.find((s) => s.peer === from);
    if (!sender) {
      this.logger.warn('step result from a connection outside the chain; ignored', { stepId: result.stepId, remote: from.remote });
      return;
    }
    const bad = (nodeId: string, why: string) => this.settle(result.stepId, new StageFailure(nodeId, 'malformed', `malformed step result (${why})`, p.chain));
    if (sender !== last) return bad(sender.nodeId, `${sender.nodeId} answered for the hops after it (${p.chain.map((s) => s.nodeId).join(' -> ')})`);
    const names = (result.trace ?? []).map((t) => t.nodeId);
    const missing = p.chain.findIndex((s, i) => names[i] !== s.nodeId);
    if (missing >= 0 || names.length !== p.chain.length) {
      const culprit = p.chain[missing >= 0 ? missing : p.chain.length - 1]!;
      return bad(culprit.nodeId, `trace ${JSON.stringify(names)} does not name the route ${JSON.stringify(p.chain.map((s) => s.nodeId))} in order`);
    }
    if (result.nTokens !== p.nTokens) return bad(last.nodeId, `nTokens ${result.nTokens}, the step had ${p.nTokens}`);
    const want = p.nTokens * p.nEmbd * 4;
    if (payload.byteLength !== want) return bad(last.nodeId, `${payload.byteLength} payload bytes, want ${p.nTokens} tokens x ${p.nEmbd} x 4 = ${want}`);
    const hidden = new Float32Array(payload.buffer.slice(payload.byteOffset, payload.byteOffset + payload.byteLength));
    for (let i = 0; i < hidden.length; i++) {
      if (!Number.isFinite(hidden[i]!)) return bad(last.nodeId, `non-finite value ${hidden[i]} at ${i}`);
    }
    const wallMs = performance.now() - p.sentAt;
    this.deadline.record(p.nTokens, wallMs);
    clearTimeout(p.timer);
    this.pending.delete(result.stepId);
    p.resolve({ hidden, trace: clampTrace(result.trace ?? [], wallMs) });
  }

  /** `step_error` arrived on connection `from`: `nodeId` says which hop failed. */
  onError(error: { stepId: number; nodeId: string; message: string }, from: Peer): void {
    const p = this.pending.get(error.stepId);
    if (!p) return;
    const sender = p.chain.find((s) => s.peer === from);
    if (!sender) return;
    // A hop may only blame a hop of this chain; otherwise it is the one at fault.
    const blamed = p.chain.some((s) => s.nodeId === error.nodeId) ? error.nodeId : sender.nodeId;
    this.settle(error.stepId, new StageFailure(blamed, 'error', error.message, p.chain));
  }

  /** A worker's connection closed: its steps fail now rather than at their deadline. */
  peerClosed(nodeId: string): void {
    for (const [id, p] of this.pending) if (p.chain.some((s) => s.nodeId === nodeId)) this.settle(id, new StageFailure(nodeId, 'closed', `connection to ${nodeId} closed`, p.chain));
  }

  /** After a deadline with nobody to blame: the first hop of `chain` that does not answer a PING in time. */
  async findHung(chain: readonly RemoteStage[], pingTimeoutMs: number): Promise<string | undefined> {
    for (const s of chain) {
      try {
        await s.peer.rtt({ timeoutMs: pingTimeoutMs });
      } catch {
        return s.nodeId;
      }
    }
    // Every hop answers pings, yet the step got lost: blame the first hop (it took the step and sent nothing).
    this.logger.warn('a step missed its deadline but every hop answers pings; blaming the first hop', { nodeId: chain[0]?.nodeId });
    return chain[0]?.nodeId;
  }

  /** Steps waiting now. */
  get inFlight(): number {
    return this.pending.size;
  }

  dispose(): void {
    for (const id of [...this.pending.keys()]) this.settle(id, new StageFailure(undefined, 'closed', 'the pipeline was closed'));
  }

  private settle(stepId: number, failure: StageFailure): void {
    const p = this.pending.get(stepId);
    if (!p) return;
    clearTimeout(p.timer);
    this.pending.delete(stepId);
    p.reject(failure);
  }
}

/**
 * Compute times are the workers' claims: none may exceed the wall time measured here, nor may their sum
 * (the hops ran one after another). Over-claims are scaled down to fit.
 */
export function clampTrace(trace: readonly StageTime[], wallMs: number): StageTime[] {
  // Only the times change: the other fields (the hops' fingerprints, for the verifier) pass through.
  const clamped = trace.map((t) => ({ ...t, computeMs: Math.min(Math.max(0, t.computeMs), wallMs) }));
  const sum = clamped.reduce((a, t) => a + t.computeMs, 0);
  if (sum <= wallMs || sum === 0) return clamped;
  const scale = wallMs / sum;
  return clamped.map((t) => ({ ...t, computeMs: t.computeMs * scale }));
}
