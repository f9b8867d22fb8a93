// How the mixture advances token by token over the specialists it kept: each gives its next-token logits and
// the combiner mixes them (SeparateSteps, any specialists: local, stacked or remote, all steps in flight at
// once), or one stacked model steps and mixes in one graph (FusedSteps in stacked.ts).
import type { Combiner, MixedDistribution } from './combine.ts';
import type { SpecialistSequence } from './specialist.ts';

export interface MixtureSteps {
  /** The mixture of the current next-token distributions with these weights (one per kept specialist). */
  mix(weights: Float64Array): Promise<MixedDistribution> | MixedDistribution;
  /**
   * Feed the token drawn. Resolves with the specialists that failed (indices into the list as it was, each
   * with why): they are out of every later step, and the caller drops their weights.
   */
  advance(token: number): Promise<{ index: number; reason: unknown }[]>;
}

export class SeparateSteps implements MixtureSteps {
  private seqs: SpecialistSequence[];
  private rows: Float32Array[];

  constructor(
    private readonly combiner: Combiner,
    seqs: readonly SpecialistSequence[],
  ) {
    this.seqs = [...seqs];
    this.rows = seqs.map((s) => s.logits);
  }

  mix(weights: Float64Array): MixedDistribution {
    return this.combiner.mix(this.rows, weights);
  }

  async advance(token: number): Promise<{ index: number; reason: unknown }[]> {
    const next = await Promise.allSettled(this.seqs.map((s) => s.next(token)));
    const failed: { index: number; reason: unknown }[] = [];
    const seqs: SpecialistSequence[] = [];
    const rows: Float32Array[] = [];
    next.forEach((r, index) => {
      if (r.status === 'fulfilled') {
        seqs.push(this.seqs[index]!);
        rows.push(r.value);
      } else {
        failed.push({ index, reason: r.reason });
        void this.seqs[index]!.close().catch(() => undefined);
      }
    });
    this.seqs = seqs;
    this.rows = rows;
    return failed;
  }
}
