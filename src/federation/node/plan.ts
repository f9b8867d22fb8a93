// Layer-span planning: contiguous spans in proportion to each participant's free memory (exo's rule),
// capped by what each can hold. The primary keeps the embeddings and the head and takes the first span;
// workers take the following spans in order.
import { ModelError } from '../../model/errors.ts';

export interface Participant {
  id: string;
  /** Bytes available for layers (after the participant's other needs). */
  freeBytes: number;
}

export interface PlannedSpan {
  id: string;
  first: number;
  last: number;
}

export class PlanError extends ModelError {}

/**
 * Split nLayer layers of layerBytes each (weights + KV cache) across participants, primary first.
 * `fixed` pins a participant's layer count (e.g. --local-layers on the primary).
 */
export function planSpans(nLayer: number, layerBytes: number, participants: readonly Participant[], fixed: ReadonlyMap<string, number> = new Map()): PlannedSpan[] {
  const capacity = participants.map((p) => Math.max(0, Math.floor(p.freeBytes / layerBytes)));
  const total = capacity.reduce((a, b) => a + b, 0);
  if (total < nLayer) {
    throw new PlanError('not enough memory in the federation for this model', `room for ${nLayer} layers`, `room for ${total}`, 'add a worker, free memory, or use a smaller quantisation');
  }
  const counts = participants.map(() => 0);
  let left = nLayer;
  participants.forEach((p, i) => {
    const f = fixed.get(p.id);
    if (f !== undefined) {
      counts[i] = Math.min(f, capacity[i]!, left);
      left -= counts[i]!;
    }
  });
  const free = participants.map((p, i) => (fixed.has(p.id) ? 0 : capacity[i]!));
  const freeTotal = free.reduce((a, b) => a + b, 0);
  if (left > 0 && freeTotal < left) {
    throw new PlanError('pinned layer counts leave too little room', `room for ${left} more layers`, `room for ${freeTotal}`, 'lower --local-layers or add a worker');
  }
  // Proportional shares, floored; hand out the remainder by largest fractional part, within capacity.
  const shares = free.map((c) => (freeTotal > 0 ? (left * c) / freeTotal : 0));
  const give = shares.map((s, i) => Math.min(Math.floor(s), free[i]!));
  let rest = left - give.reduce((a, b) => a + b, 0);
  const order = shares.map((s, i) => [s - Math.floor(s), i] as const).sort((a, b) => b[0] - a[0]);
  while (rest > 0) {
    let progressed = false;
    for (const [, i] of order) {
      if (rest > 0 && give[i]! < free[i]!) {
        give[i]!++;
        rest--;
        progressed = true;
      }
    }
    if (!progressed) break;
  }
  give.forEach((g, i) => (counts[i]! += g));
  const spans: PlannedSpan[] = [];
  let at = 0;
  participants.forEach((p, i) => {
    const n = counts[i]!;
    if (n > 0 || i === 0) spans.push({ id: p.id, first: at, last: at + n });
    at += n;
  });
  return spans;
}
