// Where a pipeline step's time goes, measured rather than guessed: for the last `capacity` steps, the
// primary's own compute (embeddings + its layers + the head), each worker's compute (reported by the worker
// in the step's trace, its own clock), and the rest of the remote wall time (network, framing, queueing).
import type { StageTime } from '../protocol-dataplane.ts';

export interface StepTiming {
  /** Wall time of the whole step at the primary. */
  totalMs: number;
  /** Compute on the primary (front, local stages, head). */
  localMs: number;
  /** Wall time spent waiting for remote chains. */
  remoteWallMs: number;
  /** Compute per worker, in route order. */
  remote: StageTime[];
  /** Tokens in the step (all sequences). */
  tokens: number;
}

export interface TimingSummary {
  steps: number;
  /** Medians over the recorded steps (ms). */
  totalMs: number;
  localMs: number;
  /** Median compute per worker, by node id. */
  workerMs: Record<string, number>;
  /** Median of (remote wall time - the workers' compute): what the hops cost. */
  hopsMs: number;
}

export class StepTimings {
  private readonly ring: StepTiming[] = [];
  private next = 0;

  constructor(readonly capacity = 256) {}

  record(t: StepTiming): void {
    if (this.ring.length < this.capacity) this.ring.push(t);
    else this.ring[this.next] = t;
    this.next = (this.next + 1) % this.capacity;
  }

  clear(): void {
    this.ring.length = 0;
    this.next = 0;
  }

  /** Medians over the recorded steps; `filter` picks steps (e.g. one-token decode steps only). */
  summary(filter: (t: StepTiming) => boolean = () => true): TimingSummary {
    const steps = this.ring.filter(filter);
    const per = new Map<string, number[]>();
    for (const s of steps) for (const r of s.remote) (per.get(r.nodeId) ?? per.set(r.nodeId, []).get(r.nodeId)!).push(r.computeMs);
    return {
      steps: steps.length,
      totalMs: median(steps.map((s) => s.totalMs)),
      localMs: median(steps.map((s) => s.localMs)),
      workerMs: Object.fromEntries([...per].map(([id, v]) => [id, median(v)])),
      hopsMs: median(steps.map((s) => s.remoteWallMs - s.remote.reduce((a, r) => a + r.computeMs, 0))),
    };
  }
}

function median(xs: number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
