// Continuous batching: steps of concurrent sequences that arrive while a step is running are merged into
// the next one, so one graph (one pass over the weights, one network traversal per hop in a pipeline)
// serves every active sequence. This is what makes 8 concurrent generations cheaper than 8 serial ones.
import type { SeqInput } from './batch.ts';
import type { StepResult } from './model-part.ts';
import type { ModelPart } from './model-part.ts';

/** What a sequence runs with, for its whole life. */
export interface SequenceOptions {
  /**
   * Per-user norm adapter: norm tensor name -> gains (n_embd floats) replacing the base's for this sequence
   * only. Sequences with different gains still share every step (the graph picks each row's gains).
   */
  normOverrides?: ReadonlyMap<string, Float32Array>;
}

/** Anything that runs a step: a local model part, or a pipeline of parts across nodes. */
export interface Forward {
  readonly nVocab: number;
  readonly nCtx: number;
  openSequence(opts?: SequenceOptions): Promise<number> | number;
  closeSequence(seq: number): Promise<void> | void;
  step(inputs: readonly SeqInput[]): Promise<StepResult> | StepResult;
}

/** A local model part (embeddings, all layers, head) as a Forward. */
export function localForward(part: ModelPart): Forward {
  return {
    nVocab: part.h.nVocab,
    nCtx: part.nCtx,
    openSequence: (opts) => {
      const seq = part.openSequence();
      try {
        if (opts?.normOverrides) part.setNormOverrides(seq, opts.normOverrides);
      } catch (e) {
        part.closeSequence(seq);
        throw e;
      }
      return seq;
    },
    closeSequence: (s) => part.closeSequence(s),
    step: (inputs) => part.step(inputs),
  };
}

interface Pending {
  input: SeqInput;
  resolve: (logits: Float32Array[]) => void;
  reject: (e: unknown) => void;
}

export class Batcher {
  readonly forward: Forward;
  /** At most this many tokens in one step (a long prompt runs alone, in one step). */
  readonly maxBatchTokens: number;
  /** Steps in flight at once: 1 for a local model; a pipeline keeps one per stage busy. */
  readonly maxInFlight: number;
  private queue: Pending[] = [];
  private running = 0;

  constructor(forward: Forward, maxBatchTokens = 512, maxInFlight = 1) {
    this.forward = forward;
    this.maxBatchTokens = maxBatchTokens;
    this.maxInFlight = maxInFlight;
  }

  /** Queue one sequence's tokens; resolves with its logits rows when the merged step has run. */
  submit(input: SeqInput): Promise<Float32Array[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      if (this.running < this.maxInFlight) void this.loop();
    });
  }

  private async loop(): Promise<void> {
    this.running++;
    try {
      while (this.queue.length > 0) {
        // Let other sequences that are about to submit (same tick) join this step.
        await new Promise((r) => setImmediate(r));
        const batch = this.take();
        if (batch.length === 0) break;
        try {
          const result = await this.forward.step(batch.map((p) => p.input));
          batch.forEach((p, i) => p.resolve(result.logits[i] ?? []));
        } catch (e) {
          if (batch.length === 1) batch[0]!.reject(e);
          else {
            // One bad input must not fail the others: run them one by one to find it.
            for (const p of batch) {
              try {
                const r = await this.forward.step([p.input]);
                p.resolve(r.logits[0] ?? []);
              } catch (e2) {
                p.reject(e2);
              }
            }
          }
        }
      }
    } finally {
      this.running--;
    }
  }

  private take(): Pending[] {
    const out: Pending[] = [];
    const seen = new Set<number>();
    let tokens = 0;
    const rest: Pending[] = [];
    for (const p of this.queue) {
      const n = p.input.tokens?.length ?? 1;
      // one entry per sequence per step; keep the token budget unless the batch would be empty
      if (seen.has(p.input.seq) || (out.length > 0 && tokens + n > this.maxBatchTokens)) rest.push(p);
      else {
        out.push(p);
        seen.add(p.input.seq);
        tokens += n;
      }
    }
    this.queue = rest;
    return out;
  }
}
