// Continuous batching for a stacked model: the decode steps of concurrent sequences that arrive while a step
// is running (or in the same tick) go into the next graph together, as Batcher does for one model: one pass
// over the K models' weights serves every sequence in flight (src/model/stacked-model.ts decode()).
import { STACKED_CONFIG, type StackedDecodeInput, type StackedDecodeResult, type StackedModel } from './stacked-model.ts';

interface Pending {
  input: StackedDecodeInput;
  resolve: (r: StackedDecodeResult) => void;
  reject: (e: unknown) => void;
}

export class StackedBatcher {
  readonly model: StackedModel;
  private queue: Pending[] = [];
  private running = false;

  constructor(model: StackedModel) {
    this.model = model;
  }

  /** Queue one sequence's token; resolves with its result once the merged step has run. */
  submit(input: StackedDecodeInput): Promise<StackedDecodeResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      if (!this.running) void this.loop();
    });
  }

  private async loop(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0) {
        // Let the other sequences about to submit (same tick) join this step.
        await new Promise((r) => setImmediate(r));
        const batch = this.take();
        try {
          const out = this.model.decode(batch.map((p) => p.input));
          batch.forEach((p, i) => p.resolve(out[i]!));
        } catch (e) {
          if (batch.length === 1) batch[0]!.reject(e);
          else {
            // One bad input must not fail the others: run them one by one to find it (a failed step
            // advances no sequence).
            for (const p of batch) {
              try {
                p.resolve(this.model.decode([p.input])[0]!);
              } catch (e2) {
                p.reject(e2);
              }
            }
          }
        }
      }
    } finally {
      this.running = false;
    }
  }

  /** One entry per sequence, at most STACKED_CONFIG.maxSeqs; the rest wait for the next step. */
  private take(): Pending[] {
    const out: Pending[] = [];
    const rest: Pending[] = [];
    const seen = new Set<number>();
    for (const p of this.queue) {
      if (seen.has(p.input.seq) || out.length >= STACKED_CONFIG.maxSeqs) rest.push(p);
      else {
        out.push(p);
        seen.add(p.input.seq);
      }
    }
    this.queue = rest;
    return out;
  }
}
