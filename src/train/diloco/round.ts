// The server side of one DiLoCo round, with no I/O: check every arrived delta, aggregate the accepted ones,
// apply the outer Nesterov step to the global weights. The one-process simulation calls this directly; a
// `diloco serve` over the data plane would call it with the deltas its participants pushed (the seam).
import type { TensorMap } from '../params.ts';
import { aggregate } from './aggregate.ts';
import type { DilocoConfig } from './config.ts';
import { type Delta, cloneDelta } from './delta.ts';
import { NesterovOuter } from './outer.ts';
import { type RefusalCode, type TensorShape, type WireDelta, checkDelta } from './wire.ts';

export interface Refusal {
  participant: string;
  code: RefusalCode;
  reason: string;
}

export interface RoundOutcome {
  round: number;
  accepted: string[];
  refused: Refusal[];
  /** Wire bytes of the accepted deltas. */
  bytes: number;
  /** False when too few deltas were accepted: the weights did not move. */
  stepped: boolean;
  /** Krum's choice, as indices into `accepted`. */
  selected?: number[];
}

/** Everything a restarted server needs to continue exactly: the round, the weights, the outer momentum. */
export interface DilocoServerState {
  round: number;
  params: TensorMap;
  momentum: Map<string, Float32Array> | undefined;
  previous: Delta | undefined;
}

export class DilocoServer {
  readonly config: DilocoConfig;
  readonly shapes: readonly TensorShape[];
  /** The global weights (updated in place by each outer step). */
  readonly params: TensorMap;
  /** Rounds completed (the next round's number). */
  round = 0;
  private readonly outer: NesterovOuter;
  /** Centered clipping starts from the previous aggregate. */
  private previous: Delta | undefined;

  constructor(config: DilocoConfig, shapes: readonly TensorShape[], init: TensorMap) {
    this.config = config;
    this.shapes = shapes;
    this.params = new Map([...init].map(([k, v]) => [k, Float32Array.from(v)]));
    this.outer = new NesterovOuter(config.outer);
  }

  getState(): DilocoServerState {
    return { round: this.round, params: cloneDelta(this.params), momentum: this.outer.getState(), previous: this.previous && cloneDelta(this.previous) };
  }

  setState(st: DilocoServerState): void {
    for (const [name, v] of this.params) {
      const from = st.params.get(name);
      if (!from || from.length !== v.length) throw new Error(`DilocoServer.setState: tensor ${name} missing or of the wrong size`);
      v.set(from);
    }
    this.outer.setState(st.momentum);
    this.previous = st.previous && cloneDelta(st.previous);
    this.round = st.round;
  }

  /** Complete the current round with the deltas that arrived; at least `minReplicas` must be accepted. */
  completeRound(arrived: readonly WireDelta[], minReplicas = 1): RoundOutcome {
    const round = this.round;
    const accepted: { participant: string; delta: Delta }[] = [];
    const refused: Refusal[] = [];
    let bytes = 0;
    for (const w of arrived) {
      if (accepted.some((a) => a.participant === w.participant)) {
        refused.push({ participant: w.participant, code: 'duplicate', reason: `delta from ${w.participant} refused: a second delta in round ${round}` });
        continue;
      }
      const c = checkDelta(w, { round, shapes: this.shapes });
      if (c.ok) {
        accepted.push({ participant: w.participant, delta: c.delta });
        bytes += c.bytes;
      } else {
        refused.push({ participant: w.participant, code: c.code, reason: c.reason });
      }
    }
    const outcome: RoundOutcome = { round, accepted: accepted.map((a) => a.participant), refused, bytes, stepped: false };
    if (accepted.length >= Math.max(1, minReplicas)) {
      const cfg = this.config;
      const agg = aggregate(cfg.aggregator, accepted.map((a) => a.delta), {
        f: cfg.assumedByzantine,
        clipIterations: cfg.clipIterations,
        clipRadius: cfg.clipRadius,
        center: this.previous,
        krumSelect: cfg.krumSelect,
      });
      this.outer.step(this.params, agg.delta);
      this.previous = cloneDelta(agg.delta);
      outcome.stepped = true;
      if (agg.selected) outcome.selected = agg.selected;
    }
    this.round++;
    return outcome;
  }
}
