// The primary's pipeline: embeddings (+ its own layers) here, then layer spans on workers (one network
// traversal per hop: worker hands to worker, the last one returns to us), then the head here.
//
// Failure: any data-plane call to a worker (open_seq, step, close_seq, truncate_seq) that fails (connection
// closed, deadline missed, error, malformed result) bans that worker (bans.ts: exponential backoff, capped),
// closes our connection to it (so the worker frees every sequence of ours, at once or when it resumes),
// re-plans its span onto another worker or this node, replays every open sequence's tokens to rebuild the KV
// caches, and retries the call. A connection that closes while the pipeline is idle starts the same re-plan
// at once. Calls that arrive during a re-plan wait for it. Greedy output is the same as an undisturbed run.
//
// Spans the primary took over go back to a worker when one has room again (`rebalance`, called on a timer by
// the primary): the same rebuild, with calls held meanwhile. Numbers: dataplane-config.ts.
import type { SeqInput } from '../../model/batch.ts';
import type { Forward, SequenceOptions } from '../../model/batcher.ts';
import { ModelError } from '../../model/errors.ts';
import type { ModelPart, StepResult } from '../../model/model-part.ts';
import { overridesForSpan } from '../../train/adapter/overrides.ts';
import type { Logger } from '../../util/log.ts';
import { call } from '../dataplane.ts';
import { encodeGains } from '../protocol-adapters.ts';
import type { RequestOf, ResponseOf, SpanRef, StageTime } from '../protocol-dataplane.ts';
import type { Peer } from '../transport/rpc.ts';
import { Bans } from './bans.ts';
import { type DataPlaneConfig, lanDataPlane, validateDataPlane } from './dataplane-config.ts';
import { type RemoteStage, RemoteSteps, StageFailure } from './remote-steps.ts';
import { forwardStep } from './forward-step.ts';
import { StepTimings } from './step-timings.ts';
import type { VerificationStats, Verifier } from './verify.ts';

export { StageFailure, type RemoteStage } from './remote-steps.ts';

export type Stage = { kind: 'local'; span: SpanRef; part: ModelPart } | RemoteStage;

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
  /** Retry, ban and timeout numbers (default lanDataPlane()). */
  config?: DataPlaneConfig;
  /** Checks a sampled fraction of sequences against our own recomputation (verify.ts); a mismatch fails over. */
  verifier?: Verifier;
}

export class PipelineForward implements Forward {
  readonly nVocab: number;
  readonly nCtx: number;
  readonly stages: Stage[];
  readonly config: DataPlaneConfig;
  readonly banned: Bans;
  /** Every recovery: which node failed and how long re-planning and replay took. */
  readonly recoveries: { nodeId: string; ms: number; replacement: string; reason: string }[] = [];
  /** Where recent steps spent their time (primary compute, each worker's compute, the hops). */
  readonly timings = new StepTimings();
  private readonly options: PipelineOptions;
  private readonly remote: RemoteSteps;
  /** Tokens of every open sequence (the replay after a re-plan). */
  private readonly history = new Map<number, number[]>();
  /** Norm gains of sequences opened with an adapter (sent again to a stage that replaces a failed one). */
  private readonly gains = new Map<number, ReadonlyMap<string, Float32Array>>();
  private nextSeq = 1;
  /** A re-plan (or rebalance) under way: calls wait for it. */
  private recovering: Promise<void> | undefined;
  /** Calls running now (a re-plan waits for them before it swaps a stage). */
  private readonly active = new Set<Promise<unknown>>();
  /** Connections we closed ourselves (their 'close' is not news). */
  private readonly retired = new WeakSet<Peer>();
  private disposed = false;

  constructor(options: PipelineOptions) {
    this.options = options;
    this.config = validateDataPlane(options.config ?? lanDataPlane());
    this.banned = new Bans(this.config, options.logger);
    this.remote = new RemoteSteps(options.session, this.config, options.logger);
    this.stages = options.stages;
    this.nVocab = options.head.h.nVocab;
    this.nCtx = options.front.nCtx;
    for (const s of options.stages) if (s.kind === 'remote') this.watch(s);
    if (options.verifier) {
      options.verifier.onMismatch = (nodeId, evidence) => this.verifyFailed(nodeId, evidence);
      options.verifier.gainsOf = (seq) => this.gains.get(seq);
    }
  }

  /** Workers checked against our own recomputation: counts and the last incident (for /v1/federation). */
  get verification(): VerificationStats | undefined {
    return this.options.verifier?.stats;
  }

  /** A worker failed verification: ban it, re-plan its span and replay, as for a malformed result. */
  private verifyFailed(nodeId: string, evidence: string): void {
    if (!this.stages.some((s) => s.kind === 'remote' && s.nodeId === nodeId)) return; // already replaced
    this.failWorker(nodeId, `failed verification: ${evidence}`).catch((e: unknown) => this.options.logger.error('replan_after_verification_failed', { nodeId, error: (e as Error).message }));
  }

  /** Data-plane methods the primary serves to its workers: a chain's result, a hop's error (see primary.ts). */
  onStepResult(result: { stepId: number; nTokens: number; trace?: StageTime[] | undefined }, payload: Uint8Array, from: Peer): void {
    this.remote.onResult(result, payload, from);
  }

  onStepError(error: { stepId: number; nodeId: string; message: string }, from: Peer): void {
    this.remote.onError(error, from);
  }

  /** Open sequences (those whose tokens a re-plan replays). */
  get openSequences(): number {
    return this.history.size;
  }

  async openSequence(opts?: SequenceOptions): Promise<number> {
    const seq = this.nextSeq++;
    this.options.front.openSequence(seq);
    this.options.head.openSequence(seq);
    try {
      if (opts?.normOverrides) {
        this.gains.set(seq, opts.normOverrides);
        for (const part of [this.options.front, this.options.head]) part.setNormOverrides(seq, opts.normOverrides);
      }
      await this.guarded(async () => {
        for (const s of this.stages) await this.openOn(s, seq);
        this.history.set(seq, []);
      });
    } catch (e) {
      await this.closeSequence(seq);
      throw e;
    }
    return seq;
  }

  /** Close everywhere. Never throws: a worker that fails to close is failed over (closing our connection
   *  to it frees the sequence there too). */
  async closeSequence(seq: number): Promise<void> {
    this.history.delete(seq); // a re-plan under way stops replaying it (one replaying it now finishes first)
    this.gains.delete(seq);
    this.options.verifier?.sequenceClosed(seq);
    // Inline, not a helper: no await may come between the last check and the call starting (see guarded).
    while (this.recovering) await this.recovering.catch(() => undefined);
    for (const part of [this.options.front, this.options.head]) part.closeSequence(seq);
    await this.track(
      Promise.all(
        this.stages.map(async (s) => {
          if (s.kind === 'local') return s.part.closeSequence(seq);
          await this.callStage(s, 'close_seq', { ...s.span, seq }).catch((e: unknown) => this.failInBackground(e));
        }),
      ),
    );
  }

  async step(inputs: readonly SeqInput[]): Promise<StepResult> {
    try {
      return await this.guarded(async () => {
        const r = await this.run(inputs);
        for (const i of inputs) {
          const h = this.history.get(i.seq);
          if (h) for (const t of i.tokens ?? []) h.push(t);
        }
        return r;
      });
    } catch (e) {
      await this.rollback(inputs);
      throw e;
    }
  }

  /**
   * Ban a worker and re-plan its span as if a call to it had failed (e.g. a verifier found it computing
   * something else). Resolves when the pipeline runs without it.
   */
  failWorker(nodeId: string, reason: string): Promise<void> {
    return this.failover(new StageFailure(nodeId, 'malformed', reason));
  }

  /**
   * Move spans this node took over during failover back to workers with room (the coordinator is asked
   * again); calls wait while a span moves. Returns how many moved. Call it from time to time.
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
        const next = await this.options.replace(old.span, this.excluded(), { remoteOnly: true }).catch(() => undefined);
        if (next?.kind !== 'remote') continue;
        this.stages[idx] = next;
        this.watch(next);
        try {
          await this.rebuild();
        } catch (e) {
          // The move failed: keep the span here (caches rebuilt again), try later. The new worker is banned
          // unless the failure names another one, which is then failed over once this rebalance is done.
          const other = e instanceof StageFailure && e.nodeId !== undefined && e.nodeId !== next.nodeId;
          if (!other) this.banned.ban(next.nodeId, `failed while taking a span back: ${(e as Error).message}`);
          this.retire(next);
          this.stages[idx] = old;
          if (other) this.failInBackground(e);
          await this.rebuild();
          continue;
        }
        old.part.dispose();
        moved++;
        this.options.logger.info('span moved back to a worker', { nodeId: next.nodeId, first: next.span.first, last: next.span.last, ms: Math.round(performance.now() - t0), sequences: this.history.size });
      }
    })()
      .catch((e: unknown) => {
        this.options.logger.error('rebalance failed', { error: (e as Error).message });
        this.failInBackground(e); // a rebuild that failed half-way: the re-plan rebuilds everything
      })
      .finally(() => {
        this.recovering = undefined;
      });
    await this.recovering;
    return moved;
  }

  dispose(): void {
    this.disposed = true;
    this.remote.dispose();
    for (const s of this.stages) {
      if (s.kind === 'local') s.part.dispose();
      else this.retire(s);
    }
  }

  // ---- calls, failover -------------------------------------------------------------------------------

  /** Wait until no re-plan is under way (several may follow each other). */
  private async whenSettled(): Promise<void> {
    while (this.recovering) await this.recovering.catch(() => undefined);
  }

  /** Count `p` as running: a re-plan waits for it before it swaps a stage. */
  private async track<T>(p: Promise<T>): Promise<T> {
    this.active.add(p);
    try {
      return await p;
    } finally {
      this.active.delete(p);
    }
  }

  /** Run `op` when no re-plan is under way; when a worker fails it, fail over and run it again. */
  private async guarded<T>(op: () => Promise<T>): Promise<T> {
    for (let failovers = 0; ; failovers++) {
      // Inline, not an async helper: the call must be counted as active in the same tick as the last check,
      // or a re-plan starting in between would swap a stage under it.
      while (this.recovering) await this.recovering.catch(() => undefined);
      try {
        return await this.track(op());
      } catch (e) {
        if (!(e instanceof StageFailure) || this.disposed) throw e;
        if (failovers >= this.config.maxFailovers) {
          throw new NoCapacityError('the pipeline kept failing', `a working worker within ${this.config.maxFailovers} failovers`, e.message, 'check the workers\' logs and the network; add a worker (sharedllm node --role worker ...)');
        }
        await this.failover(e);
      }
    }
  }

  /** A data-plane call to a worker; any failure is that worker's StageFailure. */
  private async callStage<M extends 'open_seq' | 'close_seq' | 'truncate_seq'>(s: RemoteStage, method: M, request: RequestOf<M>, payload?: Uint8Array): Promise<ResponseOf<M>> {
    try {
      return (await call(s.peer, method, request, { timeoutMs: this.config.callTimeoutMs, ...(payload ? { payload } : {}) })).header;
    } catch (e) {
      throw new StageFailure(s.nodeId, s.peer.closed ? 'closed' : 'error', `${method} on ${s.nodeId}: ${(e as Error).message}`, [s]);
    }
  }

  private failInBackground(e: unknown): void {
    if (!(e instanceof StageFailure) || this.disposed) return;
    this.failover(e).catch((err: unknown) => this.options.logger.error('re-plan failed', { nodeId: e.nodeId, error: (err as Error).message }));
  }

  /**
   * Re-plan for `f` and wait for it. One re-plan runs at a time: a failure reported during another (or during
   * a rebalance) is handled after it (and costs nothing if that one already replaced the worker).
   */
  private failover(f: StageFailure): Promise<void> {
    if (this.recovering) return this.recovering.catch(() => undefined).then(() => this.failover(f));
    const replan = this.replan(f).finally(() => {
      if (this.recovering === replan) this.recovering = undefined;
    });
    this.recovering = replan;
    return replan;
  }

  private async replan(first: StageFailure): Promise<void> {
    let failure: StageFailure | undefined = first;
    for (let round = 0; failure !== undefined; round++) {
      const t0 = performance.now();
      // A deadline names nobody: if a hop of that chain was replaced meanwhile, that explains it; else ping.
      if (failure.nodeId === undefined && failure.chain.some((s) => !this.stages.includes(s))) return;
      const nodeId = failure.nodeId ?? (await this.remote.findHung(failure.chain, this.config.pingTimeoutMs));
      const idx = this.stageOf(failure, nodeId);
      if (idx < 0) return; // already replaced (a call failed on the old connection during an earlier re-plan)
      const old = this.stages[idx] as RemoteStage;
      this.shutOut(old, failure.message);
      // Calls through the failed worker fail at once now; wait for the others before swapping its stage.
      await Promise.allSettled([...this.active]);
      this.options.logger.warn('worker failed; re-planning its span', { nodeId: old.nodeId, first: old.span.first, last: old.span.last, kind: failure.kind, reason: failure.message });
      const replacement = await this.options.replace(old.span, this.excluded());
      this.stages[idx] = replacement;
      if (replacement.kind === 'remote') this.watch(replacement);
      const reason = failure.message;
      failure = undefined;
      try {
        await this.rebuild();
      } catch (e) {
        // The replacement (or another worker) failed during the replay: re-plan that one too.
        if (!(e instanceof StageFailure)) throw e;
        failure = e;
        if (round >= this.config.maxFailovers) {
          // Give up for now, but leave no half-rebuilt cache in use: with the failed stage closed, the next
          // call fails over again and rebuilds everything.
          const bad = this.stageOf(e, e.nodeId);
          if (bad >= 0 && this.stages[bad]!.kind === 'remote') this.shutOut(this.stages[bad] as RemoteStage, e.message);
          throw e;
        }
      }
      const ms = performance.now() - t0;
      const name = replacement.kind === 'remote' ? replacement.nodeId : 'primary (local)';
      this.recoveries.push({ nodeId: old.nodeId, ms, replacement: name, reason: reason.slice(0, 500) });
      this.options.logger.info('recovered', { failed: old.nodeId, replacement: name, ms: Math.round(ms), sequences: this.history.size });
    }
  }

  /** Where the stage that failed is now, or -1: the very stage (not a later one on the same worker). */
  private stageOf(failure: StageFailure, nodeId: string | undefined): number {
    const culprit = failure.chain.find((s) => s.nodeId === nodeId);
    return culprit ? this.stages.indexOf(culprit) : this.stages.findIndex((s) => s.kind === 'remote' && s.nodeId === nodeId);
  }

  /** Ban a failed worker and close our connection to it (once: a stage left in place after a re-plan that
   *  found no capacity is banned and closed already). */
  private shutOut(s: RemoteStage, reason: string): void {
    if (this.retired.has(s.peer)) return;
    this.banned.ban(s.nodeId, reason);
    this.retire(s);
  }

  /** Workers not to use: banned ones (bans end: a restarted worker may serve again) and those in the pipeline. */
  private excluded(): Set<string> {
    return new Set([...this.banned.active(), ...this.stages.flatMap((s) => (s.kind === 'remote' ? [s.nodeId] : []))]);
  }

  /** Watch a worker's connection: a close we did not ask for re-plans at once, even with no call running. */
  private watch(s: RemoteStage): void {
    s.peer.on('close', () => {
      this.remote.peerClosed(s.nodeId);
      if (this.retired.has(s.peer) || this.disposed || !this.stages.includes(s)) return;
      this.failInBackground(new StageFailure(s.nodeId, 'closed', `connection to ${s.nodeId} closed`, [s]));
    });
  }

  /** Close our connection to a worker we stop using: the worker frees every sequence we had there. */
  private retire(s: RemoteStage): void {
    this.retired.add(s.peer);
    s.peer.close();
  }

  // ---- caches ----------------------------------------------------------------------------------------

  /** Open (or re-open, empty) `seq` on a stage. */
  private async openOn(s: Stage, seq: number): Promise<void> {
    const gains = this.gains.get(seq);
    if (s.kind === 'remote') {
      // Each worker gets the gains of its own layers only.
      const names = gains ? [...overridesForSpan(gains, s.span.first, s.span.last, false).keys()] : [];
      if (names.length === 0) {
        await this.callStage(s, 'open_seq', { ...s.span, seq });
        return;
      }
      const answer = await this.callStage(s, 'open_seq', { ...s.span, seq, gains: names }, encodeGains(gains!, names));
      if (answer.gainsApplied !== names.length) {
        throw new StageFailure(s.nodeId, 'malformed', `open_seq on ${s.nodeId}: the worker did not apply the adapter's ${names.length} norm gains (an older version?)`, [s]);
      }
      return;
    }
    if (s.part.hasSequence(seq)) s.part.closeSequence(seq);
    s.part.openSequence(seq);
    if (gains) s.part.setNormOverrides(seq, gains);
  }

  /** Rebuild every open sequence's caches after a stage changed: empty them everywhere, replay the tokens. */
  private async rebuild(): Promise<void> {
    for (const [seq, tokens] of this.history) {
      for (const part of [this.options.front, this.options.head]) part.truncate(seq, 0);
      for (const s of this.stages) await this.openOn(s, seq);
      if (tokens.length > 0) await this.run([{ seq, tokens: Int32Array.from(tokens) }], false);
    }
  }

  /**
   * A step that failed for good may have advanced some caches: cut every stage back to the tokens the
   * sequence really has, so the caller may retry it (the batcher re-runs a failed batch one by one). A worker
   * that cannot is failed over (the re-plan rebuilds everything from the history).
   */
  private async rollback(inputs: readonly SeqInput[]): Promise<void> {
    await this.whenSettled();
    for (const { seq } of inputs) {
      const n = this.history.get(seq)?.length;
      if (n === undefined) continue;
      for (const part of [this.options.front, this.options.head]) if (part.hasSequence(seq)) part.truncate(seq, Math.min(n, part.sequenceLength(seq)));
      for (const s of this.stages) {
        if (s.kind === 'local') {
          if (s.part.hasSequence(seq)) s.part.truncate(seq, Math.min(n, s.part.sequenceLength(seq)));
        } else {
          await this.callStage(s, 'truncate_seq', { ...s.span, seq, n }).catch((e: unknown) => this.failInBackground(e));
        }
      }
    }
  }

  private async run(inputs: readonly SeqInput[], wantLogits = true): Promise<StepResult> {
    const { out, timing } = await forwardStep({ front: this.options.front, head: this.options.head, stages: this.stages, remote: this.remote, verifier: this.options.verifier }, inputs, wantLogits);
    this.timings.record(timing);
    return out;
  }
}
