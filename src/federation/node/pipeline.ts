// The primary's pipeline: embeddings (+ its own layers) here, then layer spans on workers (one network
// traversal per hop: worker hands to worker, the last one returns to us), then the head here.
//
// Failure: when a hop fails, the primary bans that worker, re-plans its span onto another worker or itself,
// replays every open sequence's tokens to rebuild the KV caches, and retries the step. Greedy output is the
// same as an undisturbed run. Spans the primary took over go back to a worker when one has room again
// (`rebalance`, called on a timer by the primary): the same rebuild, with steps held meanwhile.
import type { SeqInput } from '../../model/batch.ts';
import type { Forward } from '../../model/batcher.ts';
import { ModelError } from '../../model/errors.ts';
import type { ModelPart, StepResult } from '../../model/model-part.ts';
import type { Logger } from '../../util/log.ts';
import type { Hop, SpanRef, StageTime } from '../protocol-dataplane.ts';
import { call, notify } from '../dataplane.ts';
import type { Peer } from '../transport/rpc.ts';
import { StepTimings } from './step-timings.ts';
import type { VerificationStats, Verifier } from './verify.ts';

export type Stage =
  | { kind: 'local'; span: SpanRef; part: ModelPart }
  | { kind: 'remote'; span: SpanRef; nodeId: string; addr: string; peer: Peer; cert?: string };

export class NoCapacityError extends ModelError {}

export interface PipelineOptions {
  /** Embeddings and layers [0, front.layout.last). */
  front: ModelPart;
  /** Layers after the front, in order. */
  stages: Stage[];
  /** The head (final norm + output); a part with no layers. */
  head: ModelPart;
  session: string;
  logger: Logger;
  /**
   * Find a new holder for a span: another worker (loaded, connected) or, unless `remoteOnly`, a local part;
   * throw NoCapacityError if none.
   */
  replace(span: SpanRef, exclude: ReadonlySet<string>, opts?: { remoteOnly?: boolean }): Promise<Stage>;
  stepTimeoutMs?: number;
  banMs?: number;
  /** Checks a sampled fraction of sequences against our own recomputation (verify.ts); a mismatch fails over. */
  verifier?: Verifier;
}

interface PendingStep {
  resolve: (r: { payload: Uint8Array; trace: StageTime[] }) => void;
  reject: (e: StepFailure) => void;
  nodes: string[];
  timer: NodeJS.Timeout;
}

class StepFailure extends Error {
  constructor(readonly nodeId: string | undefined, message: string) {
    super(message);
  }
}

export class PipelineForward implements Forward {
  readonly nVocab: number;
  readonly nCtx: number;
  readonly stages: Stage[];
  readonly banned = new Map<string, number>();
  /** Every recovery: which node failed and how long re-planning and replay took. */
  readonly recoveries: { nodeId: string; ms: number; replacement: string }[] = [];
  /** Where recent steps spent their time (primary compute, each worker's compute, the hops). */
  readonly timings = new StepTimings();
  private readonly o: PipelineOptions;
  private readonly history = new Map<number, number[]>();
  private readonly pending = new Map<number, PendingStep>();
  private nextStep = 1;
  private nextSeq = 1;
  private recovering: Promise<void> | undefined;
  /** Steps running now (a migration waits for them before it swaps a stage). */
  private readonly active = new Set<Promise<unknown>>();

  constructor(o: PipelineOptions) {
    this.o = o;
    this.stages = o.stages;
    this.nVocab = o.head.h.nVocab;
    this.nCtx = o.front.nCtx;
    for (const s of o.stages) if (s.kind === 'remote') this.watch(s);
    if (o.verifier) o.verifier.onMismatch = (nodeId, evidence) => this.verifyFailed(nodeId, evidence);
  }

  /** Workers checked against our own recomputation: counts and the last incident (for /v1/federation). */
  get verification(): VerificationStats | undefined {
    return this.o.verifier?.stats;
  }

  /** A worker failed verification: ban it, re-plan its span and replay, as for a failed step. */
  private verifyFailed(nodeId: string, evidence: string): void {
    void (async () => {
      while (this.recovering) await this.recovering.catch(() => undefined); // one re-plan at a time
      if (!this.stages.some((s) => s.kind === 'remote' && s.nodeId === nodeId)) return; // already replaced
      await this.recover(new StepFailure(nodeId, `failed verification: ${evidence}`));
    })().catch((e: unknown) => this.o.logger.error('replan_after_verification_failed', { nodeId, error: (e as Error).message }));
  }

  /** Data-plane methods the primary serves to its workers (results, errors); add span serving in primary.ts. */
  onStepResult(stepId: number, payload: Uint8Array, trace: StageTime[] = []): void {
    const p = this.pending.get(stepId);
    if (!p) return;
    clearTimeout(p.timer);
    this.pending.delete(stepId);
    p.resolve({ payload, trace });
  }

  onStepError(stepId: number, nodeId: string, message: string): void {
    const p = this.pending.get(stepId);
    if (!p) return;
    clearTimeout(p.timer);
    this.pending.delete(stepId);
    p.reject(new StepFailure(nodeId, message));
  }

  async openSequence(): Promise<number> {
    await this.recovering;
    const seq = this.nextSeq++;
    this.o.front.openSequence(seq);
    this.o.head.openSequence(seq);
    for (const s of this.stages) await this.openOn(s, seq);
    this.history.set(seq, []);
    return seq;
  }

  async closeSequence(seq: number): Promise<void> {
    this.history.delete(seq);
    this.o.verifier?.sequenceClosed(seq);
    this.o.front.closeSequence(seq);
    this.o.head.closeSequence(seq);
    for (const s of this.stages) {
      if (s.kind === 'local') s.part.closeSequence(seq);
      else await call(s.peer, 'close_seq', { ...s.span, seq }).catch(() => undefined);
    }
  }

  async step(inputs: readonly SeqInput[]): Promise<StepResult> {
    for (let attempt = 0; ; attempt++) {
      await this.recovering;
      const running = this.run(inputs);
      this.active.add(running);
      try {
        const r = await running;
        for (const i of inputs) this.history.get(i.seq)?.push(...(i.tokens ?? []));
        return r;
      } catch (e) {
        if (!(e instanceof StepFailure) || attempt >= 3) throw e;
        await this.recover(e);
      } finally {
        this.active.delete(running);
      }
    }
  }

  /**
   * Move spans this node took over during failover back to workers with room (the coordinator is asked
   * again); steps wait while a span moves. Returns how many moved. Call it from time to time.
   */
  async rebalance(): Promise<number> {
    if (this.recovering || !this.stages.some((s) => s.kind === 'local')) return 0;
    let moved = 0;
    this.recovering = (async () => {
      await Promise.allSettled([...this.active]);
      for (let idx = 0; idx < this.stages.length; idx++) {
        const old = this.stages[idx]!;
        if (old.kind !== 'local') continue;
        const t0 = performance.now();
        const next = await this.o.replace(old.span, this.excluded(), { remoteOnly: true }).catch(() => undefined);
        if (next?.kind !== 'remote') continue;
        this.stages[idx] = next;
        this.watch(next);
        try {
          await this.rebuild(next);
        } catch (e) {
          // The worker failed while taking the span: keep it here (caches rebuilt again), try later.
          this.o.logger.warn('moving a span back failed; it stays here', { nodeId: next.nodeId, error: (e as Error).message });
          this.banned.set(next.nodeId, Date.now() + (this.o.banMs ?? 60_000));
          this.stages[idx] = old;
          next.peer.close();
          await this.rebuild(old);
          continue;
        }
        old.part.dispose();
        moved++;
        this.o.logger.info('span moved back to a worker', { nodeId: next.nodeId, first: next.span.first, last: next.span.last, ms: Math.round(performance.now() - t0), sequences: this.history.size });
      }
    })()
      .catch((e: unknown) => this.o.logger.error('rebalance failed', { error: (e as Error).message }))
      .finally(() => {
        this.recovering = undefined;
      });
    await this.recovering;
    return moved;
  }

  private async run(inputs: readonly SeqInput[], wantLogits = true): Promise<StepResult> {
    const t0 = performance.now();
    const groups = inputs.map((i) => ({ seq: i.seq, n: i.tokens!.length }));
    let hidden = this.o.front.step(inputs.map((i) => ({ seq: i.seq, tokens: i.tokens! }))).hidden!;
    let remoteWallMs = 0;
    const remote: StageTime[] = [];
    for (let k = 0; k < this.stages.length; ) {
      const s = this.stages[k]!;
      if (s.kind === 'local') {
        hidden = s.part.step(split(groups, hidden, this.o.front.h.nEmbd)).hidden!;
        k++;
        continue;
      }
      let end = k;
      while (end < this.stages.length && this.stages[end]!.kind === 'remote') end++;
      const r0 = performance.now();
      const r = await this.remote(this.stages.slice(k, end) as Extract<Stage, { kind: 'remote' }>[], groups, hidden);
      remoteWallMs += performance.now() - r0;
      remote.push(...r.trace);
      hidden = r.hidden;
      k = end;
    }
    const headIn = split(groups, hidden, this.o.front.h.nEmbd).map((x, i) => ({ ...x, logits: wantLogits ? (inputs[i]!.logits ?? 'last') : ('none' as const) }));
    const out = this.o.head.step(headIn);
    const totalMs = performance.now() - t0;
    this.timings.record({ totalMs, localMs: totalMs - remoteWallMs, remoteWallMs, remote, tokens: groups.reduce((a, g) => a + g.n, 0) });
    return out;
  }

  /** One traversal of a chain of workers. */
  private remote(chain: Extract<Stage, { kind: 'remote' }>[], groups: { seq: number; n: number }[], hidden: Float32Array): Promise<{ hidden: Float32Array; trace: StageTime[] }> {
    const stepId = this.nextStep++;
    const first = chain[0]!;
    const route: Hop[] = chain.slice(1).map((s) => ({ addr: s.addr, nodeId: s.nodeId, span: s.span, ...(s.cert ? { cert: s.cert } : {}) }));
    const nTokens = groups.reduce((a, g) => a + g.n, 0);
    const timeoutMs = this.o.stepTimeoutMs ?? 30_000 + nTokens * 200;
    const salt = this.o.verifier?.salt();
    return new Promise<{ payload: Uint8Array; trace: StageTime[] }>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(stepId);
        reject(new StepFailure(undefined, `no answer from the pipeline within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(stepId, { resolve, reject, nodes: chain.map((s) => s.nodeId), timer });
      try {
        notify(first.peer, 'step', { session: this.o.session, stepId, span: first.span, groups, nEmbd: this.o.front.h.nEmbd, route, ...(salt === undefined ? {} : { salt }) }, new Uint8Array(hidden.buffer, hidden.byteOffset, hidden.byteLength));
      } catch (e) {
        this.onStepError(stepId, first.nodeId, (e as Error).message);
      }
    }).then(({ payload: p, trace }) => {
      const out = new Float32Array(p.buffer.slice(p.byteOffset, p.byteOffset + p.byteLength));
      if (salt !== undefined && groups.every((g) => this.o.front.hasSequence(g.seq))) {
        const positions = groups.map((g) => ({ ...g, pos0: this.o.front.sequenceLength(g.seq) - g.n }));
        this.o.verifier?.observe({ chain: chain.map((s) => ({ nodeId: s.nodeId, span: s.span })), groups: positions, nEmbd: this.o.front.h.nEmbd, salt, input: hidden, output: out, trace });
      }
      return { hidden: out, trace };
    });
  }

  private watch(s: Extract<Stage, { kind: 'remote' }>): void {
    s.peer.on('close', () => {
      for (const [id, p] of this.pending) if (p.nodes.includes(s.nodeId)) this.onStepError(id, s.nodeId, `connection to ${s.nodeId} closed`);
    });
  }

  private async openOn(s: Stage, seq: number): Promise<void> {
    if (s.kind === 'local') {
      if (s.part.hasSequence(seq)) s.part.closeSequence(seq);
      s.part.openSequence(seq);
    } else await call(s.peer, 'open_seq', { ...s.span, seq }, { timeoutMs: 10_000 }).catch((e: unknown) => {
      throw new StepFailure(s.nodeId, (e as Error).message);
    });
  }

  private recover(f: StepFailure): Promise<void> {
    this.recovering ??= this.doRecover(f).finally(() => {
      this.recovering = undefined;
    });
    return this.recovering;
  }

  private async doRecover(f: StepFailure): Promise<void> {
    const t0 = performance.now();
    const failed = f.nodeId ?? (await this.findDead());
    const idx = this.stages.findIndex((s) => s.kind === 'remote' && s.nodeId === failed);
    if (idx < 0) throw new ModelError('step failed', 'a failing worker in the pipeline', failed ?? 'none found', f.message);
    const old = this.stages[idx] as Extract<Stage, { kind: 'remote' }>;
    this.banned.set(old.nodeId, Date.now() + (this.o.banMs ?? 60_000));
    old.peer.close();
    this.o.logger.warn('worker failed; re-planning its span', { nodeId: old.nodeId, first: old.span.first, last: old.span.last, reason: f.message });
    const replacement = await this.o.replace(old.span, this.excluded());
    this.stages[idx] = replacement;
    if (replacement.kind === 'remote') this.watch(replacement);
    await this.rebuild(replacement);
    const ms = performance.now() - t0;
    const name = replacement.kind === 'remote' ? replacement.nodeId : 'primary (local)';
    this.recoveries.push({ nodeId: old.nodeId, ms, replacement: name });
    this.o.logger.info('recovered', { failed: old.nodeId, replacement: name, ms: Math.round(ms), sequences: this.history.size });
  }

  /** Workers not to use: banned ones (bans end: a restarted worker may serve again) and those in the pipeline. */
  private excluded(): Set<string> {
    const now = Date.now();
    for (const [id, until] of this.banned) if (until <= now) this.banned.delete(id);
    return new Set([...this.banned.keys(), ...this.stages.flatMap((s) => (s.kind === 'remote' ? [s.nodeId] : []))]);
  }

  /** Rebuild every open sequence's caches after `fresh` joined: reset all stages, replay its tokens (one prefill step). */
  private async rebuild(fresh: Stage): Promise<void> {
    for (const [seq, tokens] of this.history) {
      for (const s of [this.o.front, this.o.head]) s.truncate(seq, 0);
      for (const s of this.stages) {
        if (s === fresh) await this.openOn(s, seq);
        else if (s.kind === 'local') s.part.truncate(seq, 0);
        else await call(s.peer, 'truncate_seq', { ...s.span, seq, n: 0 });
      }
      if (tokens.length > 0) await this.run([{ seq, tokens: Int32Array.from(tokens) }], false);
    }
  }

  /** After a timeout: the first hop that does not answer a ping is the one that failed. */
  private async findDead(): Promise<string | undefined> {
    for (const s of this.stages) {
      if (s.kind !== 'remote') continue;
      try {
        await Promise.race([s.peer.rtt(), new Promise((_, rej) => setTimeout(() => rej(new Error('timeout')), 3000))]);
      } catch {
        return s.nodeId;
      }
    }
    return undefined;
  }

  dispose(): void {
    for (const p of this.pending.values()) clearTimeout(p.timer);
    for (const s of this.stages) {
      if (s.kind === 'local') s.part.dispose();
      else s.peer.close();
    }
  }
}

/** Cut a token-major hidden buffer into one input per group. */
function split(groups: { seq: number; n: number }[], hidden: Float32Array, nEmbd: number): { seq: number; hidden: Float32Array }[] {
  let off = 0;
  return groups.map((g) => {
    const h = hidden.subarray(off, off + g.n * nEmbd);
    off += g.n * nEmbd;
    return { seq: g.seq, hidden: h };
  });
}
