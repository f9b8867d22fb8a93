// Local specialists loaded as one stacked model (src/model/stacked-model.ts) as the mixture sees them: each
// is a Specialist (so the router, the trail and every API path treat it like any other), and the generator
// opens them together: one prefill for all, then, when every specialist it keeps is in the stack, one graph a
// token that steps them all and mixes their distributions (FusedSteps). Mixed with specialists outside the
// stack (remote ones), the stack still steps once a token for all its members (MemberSequence.next).
import type { Ggml } from '../../ggml/runtime.ts';
import { SequenceError } from '../errors.ts';
import { StackedBatcher } from '../stacked-batcher.ts';
import type { StackedMix, StackedModel } from '../stacked-model.ts';
import type { Combiner, MixedDistribution } from './combine.ts';
import { promptLogLikelihood } from './likelihood.ts';
import type { Specialist, SpecialistSequence } from './specialist.ts';
import type { MixtureSteps } from './steps.ts';

/** A stacked model shared by the mixture's requests; its members are Specialists. */
export class StackedGroup {
  readonly model: StackedModel;
  readonly tokenizerHash: string;
  /** Decode steps of concurrent sequences, one graph for all. */
  readonly batcher: StackedBatcher;
  private readonly ggml: Ggml;

  constructor(model: StackedModel, ggml: Ggml, tokenizerHash: string) {
    this.model = model;
    this.batcher = new StackedBatcher(model);
    this.ggml = ggml;
    this.tokenizerHash = tokenizerHash;
  }

  /** Member `index` of the stack (its load order) as a Specialist named `id`. */
  member(index: number, id: string): StackedSpecialist {
    if (!Number.isInteger(index) || index < 0 || index >= this.model.k) throw new SequenceError('no such stacked model', `0 <= index < ${this.model.k}`, String(index), 'this is a bug in the caller');
    return new StackedSpecialist(this, index, id);
  }

  /** One sequence over the whole stack, prefilled with the prompt; a view for each member in `indices`. */
  open(prompt: readonly number[], indices: readonly number[]): MemberSequence[] {
    const shared = new GroupSequence(this.model, this.batcher, indices.length);
    try {
      const rows = this.model.prefill(shared.seq, Int32Array.from(prompt)); // [member][token] logits
      shared.rows = rows.map((r) => r.at(-1)!);
      return indices.map((m) => new MemberSequence(shared, m, promptLogLikelihood(this.ggml, rows[m]!, prompt)));
    } catch (e) {
      shared.closeAll();
      throw e;
    }
  }
}

export class StackedSpecialist implements Specialist {
  constructor(
    readonly group: StackedGroup,
    readonly index: number,
    readonly id: string,
  ) {}

  get tokenizerHash(): string {
    return this.group.tokenizerHash;
  }

  get nVocab(): number {
    return this.group.model.nVocab;
  }

  get nCtx(): number {
    return this.group.model.nCtx;
  }

  async start(prompt: readonly number[]): Promise<SpecialistSequence> {
    return this.group.open(prompt, [this.index])[0]!;
  }
}

/** The stack's sequence behind its members' views: closed when the last view is. */
export class GroupSequence {
  readonly model: StackedModel;
  readonly seq: number;
  /** Every member's latest next-token logits. */
  rows: Float32Array[] = [];
  private readonly batcher: StackedBatcher;
  /** Tokens fed after the prompt (views feed the same text), and the step of the last one. */
  private fed: number[] = [];
  private stepping: Promise<void> = Promise.resolve();
  private open: number;

  constructor(model: StackedModel, batcher: StackedBatcher, views: number) {
    this.model = model;
    this.batcher = batcher;
    this.seq = model.openSequence();
    this.open = views;
  }

  /** Step `round` (1, 2, ...) with `token`: run for the first view to ask, shared with the others. */
  async rowsAfter(round: number, token: number): Promise<Float32Array[]> {
    if (round === this.fed.length + 1) {
      this.fed.push(token);
      this.stepping = this.batcher.submit({ seq: this.seq, token }).then((r) => {
        if ('rows' in r) this.rows = r.rows;
      });
    } else if (round !== this.fed.length || this.fed[round - 1] !== token) {
      throw new SequenceError('stacked specialists fed different texts', `token ${this.fed[round - 1] ?? '(next)'} at step ${round}`, `token ${token}`, 'feed every member of a stack the same tokens');
    }
    await this.stepping;
    return this.rows;
  }

  /** One fused step: feed `token`, mix with `weights` (one per member of the stack). */
  async stepMixed(token: number, weights: Float64Array): Promise<StackedMix> {
    this.fed.push(token);
    const r = await this.batcher.submit({ seq: this.seq, token, weights });
    if (!('mix' in r)) throw new SequenceError('a mixed step without its mixture', 'the mixture', 'rows', 'this is a bug');
    return r.mix;
  }

  release(): void {
    if (--this.open === 0) this.closeAll();
  }

  closeAll(): void {
    this.open = 0;
    this.model.closeSequence(this.seq);
  }
}

/** One member's view of a GroupSequence. */
export class MemberSequence implements SpecialistSequence {
  readonly shared: GroupSequence;
  readonly index: number;
  readonly promptLogLikelihood: number;
  private round = 0;
  private closed = false;

  constructor(shared: GroupSequence, index: number, promptLogLikelihood: number) {
    this.shared = shared;
    this.index = index;
    this.promptLogLikelihood = promptLogLikelihood;
  }

  get logits(): Float32Array {
    return this.shared.rows[this.index]!;
  }

  async next(token: number): Promise<Float32Array> {
    return (await this.shared.rowsAfter(++this.round, token))[this.index]!;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.shared.release();
  }
}

/** Opens every specialist on the prompt: the members of a stack together (one prefill), the others alone. */
export async function startAll(specialists: readonly Specialist[], prompt: readonly number[], signal?: AbortSignal): Promise<PromiseSettledResult<SpecialistSequence>[]> {
  const out: Promise<SpecialistSequence>[] = [];
  const groups = new Map<StackedGroup, { at: number; index: number }[]>();
  specialists.forEach((s, at) => {
    if (s instanceof StackedSpecialist) groups.set(s.group, [...(groups.get(s.group) ?? []), { at, index: s.index }]);
  });
  const opened = new Map<number, Promise<SpecialistSequence>>();
  for (const [group, members] of groups) {
    let views: Promise<MemberSequence[]>;
    try {
      views = Promise.resolve(group.open(prompt, members.map((m) => m.index)));
    } catch (e) {
      views = Promise.reject(e);
    }
    members.forEach((m, i) => opened.set(m.at, views.then((v) => v[i]!)));
  }
  specialists.forEach((s, at) => out.push(opened.get(at) ?? s.start(prompt, signal)));
  return Promise.allSettled(out);
}

/**
 * The mixture's steps when every specialist kept is a member of one stack: one graph a token steps the whole
 * stack and mixes (members not kept get weight 0). The first mix, after the prefill, is the combiner's.
 */
export class FusedSteps implements MixtureSteps {
  private pending: number | undefined;

  constructor(
    private readonly combiner: Combiner,
    private readonly views: readonly MemberSequence[],
  ) {}

  /** The fused steps for these sequences, or undefined when they are not all views of one stacked sequence. */
  static of(combiner: Combiner, seqs: readonly SpecialistSequence[]): FusedSteps | undefined {
    const views = seqs.filter((s): s is MemberSequence => s instanceof MemberSequence);
    if (views.length === 0 || views.length !== seqs.length || views.some((v) => v.shared !== views[0]!.shared)) return undefined;
    return new FusedSteps(combiner, views);
  }

  async mix(weights: Float64Array): Promise<MixedDistribution> {
    const token = this.pending;
    if (token === undefined) return this.combiner.mix(this.views.map((v) => v.logits), weights);
    this.pending = undefined;
    const shared = this.views[0]!.shared;
    const full = new Float64Array(shared.model.k);
    this.views.forEach((v, i) => (full[v.index] = weights[i]!));
    const r = await shared.stepMixed(token, full);
    return {
      logits: r.logits,
      weights,
      likelihoods: (t) => {
        const all = r.likelihoods(t); // every member's p(t)
        return Float64Array.from(this.views, (v) => all[v.index]!);
      },
    };
  }

  async advance(token: number): Promise<{ index: number; reason: unknown }[]> {
    this.pending = token;
    return [];
  }
}
