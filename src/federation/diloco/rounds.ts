// The server's round keeper, with no network in it: who fetched the open round's weights (enrolled), the
// tensors each participant pushed, the deltas committed, the deadline. The data-plane handlers (server.ts)
// call it; unit tests drive it with a fake clock.
//
// A round completes when at least `minReplicas` deltas were accepted and every enrolled participant has
// handed one in (or been refused), or at the deadline with at least `minReplicas`; a participant enrolled but
// silent at the deadline is dropped for that round. With fewer than `minReplicas` at the deadline the round is
// extended by another timeout (logged, counted). A delta for a round already over is discarded (late).
// Every event lands in the RoundEvents that `finish` receives, and from there in the metrics line.
import { performance } from 'node:perf_hooks';
import type { Logger } from '../../util/log.ts';
import type { DilocoServer, Refusal } from '../../train/diloco/round.ts';
import { type WireDelta, type WireTensor, checkDelta } from '../../train/diloco/wire.ts';
import { DILOCO_WIRE_VERSION, type DilocoCommitResponse } from '../protocol-diloco.ts';
import { sha256 } from '../node/model-hash.ts';
import { DilocoError } from './errors.ts';

/** What happened in one round: the metrics line's counts. */
export interface RoundEvents {
  round: number;
  /** Participants whose delta went into the aggregate. */
  accepted: string[];
  /** Deltas refused or quarantined (wrong shape, dtype, size, round, NaN/Inf, empty shard), with the reason. */
  refused: Refusal[];
  /** Enrolled (fetched the weights) but no delta by the deadline. */
  dropped: string[];
  /** Deltas or tensors for a round already over, discarded. */
  late: { participant: string; round: number }[];
  /** Participants seen for the first time (by this server process). */
  joined: string[];
  /** Deadline extensions for too few deltas. */
  extended: number;
  /** Tensors whose bytes failed their hash (sent again by the participant). */
  hashMismatches: number;
  /** Weights bytes sent to participants, and delta bytes accepted. */
  bytesOut: number;
  bytesIn: number;
  /** Mean of what the accepted participants reported: inner training loss, inner compute time. */
  innerLoss?: number;
  computeMs?: number;
  transferMs?: number;
  /** From the round's opening to its completion, and the aggregation plus outer step alone. */
  roundMs: number;
  aggregateMs: number;
  stepped: boolean;
}

export interface RoundKeeperOptions {
  server: DilocoServer;
  rounds: number;
  minReplicas: number;
  roundTimeoutMs: number;
  logger: Logger;
  /** Called after each round's outer step (evaluate, write, checkpoint); the next round opens when it resolves. */
  finish: (events: RoundEvents) => Promise<void> | void;
  now?: () => number;
}

interface Submitted {
  wire: WireDelta;
  innerLoss: number | undefined;
  computeMs: number | undefined;
  transferMs: number | undefined;
}

export type KeeperState = 'open' | 'finishing' | 'done';

/** waitUntilDone() looks again this often even if no round opened (a wake-up it missed cannot stall it). */
const DONE_RECHECK_MS = 60_000;

export class RoundKeeper {
  state: KeeperState;
  private readonly o: RoundKeeperOptions;
  private readonly now: () => number;
  private openedAt = 0;
  private deadline = 0;
  private enrolled = new Set<string>();
  private uploads = new Map<string, Map<string, WireTensor>>();
  private submitted = new Map<string, Submitted>();
  private refused: Refusal[] = [];
  private late: { participant: string; round: number }[] = [];
  private lateKeys = new Set<string>();
  private joined: string[] = [];
  private readonly seen = new Set<string>();
  private extended = 0;
  private hashMismatches = 0;
  private bytesOut = 0;
  private readonly waiters = new Set<() => void>();

  constructor(o: RoundKeeperOptions) {
    this.o = o;
    this.now = o.now ?? (() => performance.now());
    this.state = o.server.round >= o.rounds ? 'done' : 'open';
    this.open();
  }

  /** The open round (== rounds once done). */
  get round(): number {
    return this.o.server.round;
  }

  deadlineInMs(): number {
    return Math.max(0, this.deadline - this.now());
  }

  /** Whether the open round holds a delta of `participant`, accepted or refused. */
  handedIn(participant: string): boolean {
    return this.submitted.has(participant) || this.refused.some((r) => r.participant === participant);
  }

  /**
   * Resolves once a round after `afterRound` is open (or the job is done), or round `afterRound` is open
   * without a delta of `participant` (a restarted server lost it), or after `waitMs`.
   */
  waitForRound(afterRound: number | undefined, waitMs: number, participant?: string): Promise<void> {
    const ready = () =>
      this.state === 'done' ||
      (this.state === 'open' && (afterRound === undefined || this.round > afterRound || (participant !== undefined && this.round === afterRound && !this.handedIn(participant))));
    if (ready() || waitMs <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      const check = () => {
        if (ready()) done();
      };
      const timer = setTimeout(done, waitMs);
      this.waiters.add(check);
    });
  }

  /** Resolves once the last round is written. */
  async waitUntilDone(): Promise<void> {
    while (this.state !== 'done') await this.waitForRound(this.round, DONE_RECHECK_MS);
  }

  /** A participant fetches a tensor of the open round's weights: it is enrolled in this round. */
  enrol(participant: string, round: number, bytes: number): void {
    this.expectOpen(participant, round, 'weights');
    this.meet(participant);
    this.enrolled.add(participant);
    this.bytesOut += bytes;
  }

  /** One tensor of a participant's delta; returns the count of tensors it has pushed this round. */
  push(participant: string, round: number, tensor: WireTensor, hash: string): number {
    this.expectOpen(participant, round, 'delta');
    this.meet(participant);
    if (this.submitted.has(participant)) {
      throw new DilocoError('stale_round', `${participant} pushed a tensor after committing round ${round}`, 'one delta per round', 'a second one', 'wait for the next round');
    }
    const got = sha256(tensor.data);
    if (got !== hash) {
      this.hashMismatches++;
      this.o.logger.warn('tensor_hash_mismatch', { participant, round, tensor: tensor.name, expected: hash, actual: got });
      throw new DilocoError('bad_hash', `tensor ${tensor.name} failed its hash check`, hash, got, 'the bytes were damaged in transit: send the tensor again');
    }
    let mine = this.uploads.get(participant);
    if (!mine) this.uploads.set(participant, (mine = new Map()));
    mine.set(tensor.name, tensor);
    return mine.size;
  }

  /** The participant's delta is complete: check it now (a refusal is answered at once), maybe end the round. */
  commit(participant: string, round: number, info: { shardTokens: number; innerLoss?: number | undefined; computeMs?: number | undefined; transferMs?: number | undefined }): DilocoCommitResponse {
    if (round < this.round || (round === this.round && this.state !== 'open')) {
      this.markLate(participant, round);
      return { v: DILOCO_WIRE_VERSION, status: 'late', reason: `round ${round} is over (the open round is ${this.round}): the delta is discarded` };
    }
    this.meet(participant);
    if (round > this.round) return this.refuse(participant, 'round', `its delta is for round ${round}, the open round is ${this.round}`);
    if (this.submitted.has(participant)) return this.refuse(participant, 'duplicate', `a second delta in round ${round}`);
    const tensors = [...(this.uploads.get(participant)?.values() ?? [])];
    this.uploads.delete(participant);
    if (info.shardTokens === 0) return this.refuse(participant, 'empty-shard', 'its data shard is empty (0 training tokens): its delta carries no training');
    const wire: WireDelta = { round, participant, tensors };
    const c = checkDelta(wire, { round, shapes: this.o.server.shapes });
    if (!c.ok) return this.refuse(participant, c.code, c.reason.replace(/^delta from \S+ refused: /, ''));
    this.submitted.set(participant, { wire, innerLoss: info.innerLoss, computeMs: info.computeMs, transferMs: info.transferMs });
    this.o.logger.info('delta_accepted', { participant, round, bytes: c.bytes, have: this.submitted.size, enrolled: this.enrolled.size });
    queueMicrotask(() => this.completeLater());
    return { v: DILOCO_WIRE_VERSION, status: 'accepted' };
  }

  /** Called every tick: the deadline ends the round, or extends it when too few deltas came. */
  async tick(): Promise<void> {
    if (this.state !== 'open' || this.now() < this.deadline) return;
    if (this.submitted.size >= this.o.minReplicas) return this.complete('deadline');
    this.extended++;
    this.deadline = this.now() + this.o.roundTimeoutMs;
    this.o.logger.warn('round_extended', {
      message: `round ${this.round}: ${this.submitted.size} of the ${this.o.minReplicas} deltas needed by the deadline; waiting another ${Math.round(this.o.roundTimeoutMs / 1000)} s`,
      round: this.round, have: this.submitted.size, need: this.o.minReplicas, extensions: this.extended,
    });
  }

  /** maybeComplete() off the caller's stack; a failure to write the round is logged, the job goes on. */
  private completeLater(): void {
    this.maybeComplete().catch((e: unknown) => this.o.logger.error('round_finish_failed', { message: `round ${this.round - 1}: ${(e as Error).message}`, round: this.round - 1 }));
  }

  private async maybeComplete(): Promise<void> {
    if (this.state !== 'open' || this.submitted.size < this.o.minReplicas) return;
    const refusedNow = new Set(this.refused.map((r) => r.participant));
    if ([...this.enrolled].every((p) => this.submitted.has(p) || refusedNow.has(p))) await this.complete('all');
  }

  private async complete(why: 'all' | 'deadline'): Promise<void> {
    this.state = 'finishing';
    const refusedNow = new Set(this.refused.map((r) => r.participant));
    const dropped = [...this.enrolled].filter((p) => !this.submitted.has(p) && !refusedNow.has(p));
    for (const p of dropped) this.o.logger.warn('participant_dropped', { message: `${p} sent no delta for round ${this.round} by the deadline: dropped from this round`, participant: p, round: this.round });
    const subs = [...this.submitted.values()];
    const t0 = this.now();
    const outcome = this.o.server.completeRound(subs.map((s) => s.wire), this.o.minReplicas);
    const aggregateMs = this.now() - t0;
    const meanOf = (xs: (number | undefined)[]) => {
      const ok = xs.filter((x): x is number => x !== undefined && Number.isFinite(x));
      return ok.length > 0 ? ok.reduce((a, b) => a + b, 0) / ok.length : undefined;
    };
    const accepted = new Set(outcome.accepted);
    const used = subs.filter((s) => accepted.has(s.wire.participant));
    const innerLoss = meanOf(used.map((s) => s.innerLoss));
    const computeMs = meanOf(used.map((s) => s.computeMs));
    const transferMs = meanOf(used.map((s) => s.transferMs));
    const events: RoundEvents = {
      round: outcome.round, accepted: outcome.accepted, refused: [...this.refused, ...outcome.refused], dropped, late: this.late,
      joined: this.joined, extended: this.extended, hashMismatches: this.hashMismatches, bytesOut: this.bytesOut, bytesIn: outcome.bytes,
      ...(innerLoss === undefined ? {} : { innerLoss }), ...(computeMs === undefined ? {} : { computeMs }), ...(transferMs === undefined ? {} : { transferMs }),
      roundMs: t0 - this.openedAt, aggregateMs, stepped: outcome.stepped,
    };
    this.o.logger.info('round_complete', { round: outcome.round, why, accepted: outcome.accepted.length, dropped: dropped.length, refused: events.refused.length, late: this.late.length });
    try {
      await this.o.finish(events);
    } finally {
      this.state = this.round >= this.o.rounds ? 'done' : 'open';
      this.open();
      for (const w of [...this.waiters]) w();
    }
  }

  private open(): void {
    this.openedAt = this.now();
    this.deadline = this.openedAt + this.o.roundTimeoutMs;
    this.enrolled = new Set();
    this.uploads = new Map();
    this.submitted = new Map();
    this.refused = [];
    this.late = [];
    this.joined = [];
    this.extended = 0;
    this.hashMismatches = 0;
    this.bytesOut = 0;
  }

  private meet(participant: string): void {
    if (this.seen.has(participant)) return;
    this.seen.add(participant);
    this.joined.push(participant);
    this.o.logger.info('participant_joined', { message: `${participant} joined in round ${this.round}`, participant, round: this.round });
  }

  private expectOpen(participant: string, round: number, what: string): void {
    if (round < this.round || (round === this.round && this.state === 'finishing')) {
      if (what === 'delta') this.markLate(participant, round);
      throw new DilocoError(what === 'delta' ? 'late_round' : 'stale_round', `round ${round} is over`, `round ${this.round}`, `round ${round}`, what === 'delta' ? 'the delta is discarded; poll diloco_job for the next round' : 'poll diloco_job for the open round');
    }
    if (round > this.round || this.state !== 'open') {
      throw new DilocoError('stale_round', `round ${round} is not open`, `round ${this.round}${this.state === 'done' ? ' (the job is done)' : ''}`, `round ${round}`, 'poll diloco_job for the open round');
    }
  }

  private markLate(participant: string, round: number): void {
    const key = `${participant}/${round}`;
    if (this.lateKeys.has(key)) return;
    this.lateKeys.add(key);
    this.late.push({ participant, round });
    this.o.logger.warn('late_delta', { message: `${participant} sent a delta for round ${round}, which is over (open: ${this.round}): discarded`, participant, round, open: this.round });
  }

  private refuse(participant: string, code: Refusal['code'], why: string): DilocoCommitResponse {
    const reason = `delta from ${participant} refused: ${why}`;
    this.refused.push({ participant, code, reason });
    this.o.logger.warn('delta_refused', { message: reason, participant, round: this.round, code });
    queueMicrotask(() => this.completeLater());
    return { v: DILOCO_WIRE_VERSION, status: 'refused', reason };
  }
}
