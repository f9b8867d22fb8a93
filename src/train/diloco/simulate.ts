// DiLoCo in one process: K participants, each a real ggml trainer on its own contiguous shard of the training
// stream, H inner AdamW steps per round from the global weights, pseudo-gradients encoded as they would
// travel (f32/f16/int8), checked, aggregated and applied by the same DilocoServer a real job uses; held-out
// loss of the global weights after every round.
//
// Byzantine participants are pluggable (the bets' and tests' attacks live in attacks.testing.ts; nothing on
// the command line reaches them). Each participant keeps its AdamW moments across rounds, as in DiLoCo.
// Participants run one after another: the numbers are the same as with K machines, only slower.
import type { Ggml } from '../../ggml/runtime.ts';
import type { ModelConfig, OptimConfig } from '../config.ts';
import { BatchCursor } from '../data.ts';
import { type TensorMap, initialParams, paramSpecs } from '../params.ts';
import { mulberry32 } from '../../util/random.ts';
import { Trainer } from '../trainer.ts';
import { mean } from './aggregate.ts';
import type { DilocoConfig } from './config.ts';
import { type Delta, l2Norm } from './delta.ts';
import { innerRound } from './participant.ts';
import { DilocoServer, type Refusal } from './round.ts';
import { type WireDelta, encodeDelta } from './wire.ts';

/** What an omniscient attacker knows when it crafts its delta. */
export interface AttackContext {
  /** Its own honest delta (present when the attack trains). */
  own?: Delta;
  /** The honest participants' deltas this round. */
  honest: readonly Delta[];
  /** Participants in all (n) and attackers among them (f). */
  n: number;
  f: number;
  rng: () => number;
}

export interface Attack {
  name: string;
  /** Whether the attacker trains its inner steps (then its own delta is an input). */
  trains: boolean;
  craft(ctx: AttackContext): Delta;
}

export interface SimulationOptions {
  ggml: Ggml;
  model: ModelConfig;
  /** Inner AdamW settings; its schedule spans rounds * innerSteps steps. */
  inner: Omit<OptimConfig, 'steps' | 'seed'>;
  diloco: DilocoConfig;
  /** Training tokens (split into one contiguous shard per participant) and evaluation tokens. */
  train: Int32Array;
  heldOut: Int32Array;
  participants: number;
  rounds: number;
  innerSteps: number;
  /** Seeds the initial weights and each participant's data order. */
  seed: number;
  /** The last `count` participants are attackers (count 0 or absent: a clean run). */
  attackers?: { count: number; attack: Attack };
  /** Held-out tokens scored after each evaluated round (default all). */
  evalTokens?: number;
  /** Evaluate after every `evalEvery` rounds and after the last (default 1: every round). */
  evalEvery?: number;
  /** Validation tokens (not held-out ones) scored with the held-out ones, for early stopping and tuning. */
  validation?: Int32Array;
  /** Called after each evaluated round; true ends the run there (early stopping). */
  stop?: (m: RoundMetrics) => boolean;
  /** Initial global weights (default: seeded initialisation). */
  init?: TensorMap;
  onRound?: (r: RoundMetrics) => void;
}

export interface RoundMetrics {
  round: number;
  /** Held-out loss (nats per token) of the global weights after this round (on evaluated rounds). */
  heldOutLoss?: number;
  /** Validation loss, where `validation` was given (on evaluated rounds). */
  validationLoss?: number;
  /** Mean inner training loss of the honest participants over their H steps. */
  innerLoss: number;
  refused: Refusal[];
  /** Wire bytes per participant (its encoded delta). */
  bytesPerParticipant: number;
  /** L2 norm of the mean honest pseudo-gradient. */
  honestNorm: number;
  /** Krum's selection (participant indices). */
  selected?: number[];
}

export interface SimulationResult {
  initialLoss: number;
  rounds: RoundMetrics[];
  /** Held-out loss after the last round run. */
  finalLoss: number;
  /** The lowest held-out loss seen (a diagnostic: never a choice, which validation makes). */
  bestLoss: number;
}

export function runSimulation(o: SimulationOptions): SimulationResult {
  const K = o.participants;
  const nAttack = o.attackers?.count ?? 0;
  if (!(K >= 1) || nAttack < 0 || nAttack >= K) throw new Error(`simulation: need 1 <= participants and 0 <= attackers < participants, got ${K} and ${nAttack}`);
  const shapes = paramSpecs(o.model).map((s) => ({ name: s.name, ne: s.ne }));
  const server = new DilocoServer(o.diloco, shapes, o.init ?? initialParams(o.model, o.seed));
  const optim: OptimConfig = { ...o.inner, steps: o.rounds * o.innerSteps, seed: o.seed };
  const shardLen = Math.floor(o.train.length / K);
  const rng = mulberry32(o.seed ^ 0x5eed);
  const trainers: Trainer[] = [];
  try {
    const cursors: BatchCursor[] = [];
    for (let i = 0; i < K; i++) {
      trainers.push(new Trainer(o.ggml, o.model, optim, server.params));
      cursors.push(new BatchCursor(o.train.subarray(i * shardLen, (i + 1) * shardLen), optim.batch, o.model.nCtx, o.seed * 1000 + i));
    }
    const evalTokens = o.heldOut.subarray(0, Math.min(o.heldOut.length, (o.evalTokens ?? Infinity) + 1));
    const evaluate = (tokens: Int32Array = evalTokens): number => {
      // Participant 0 loads the global weights at the start of every round anyway.
      const t = trainers[0]!;
      t.params.setParams(server.params);
      return t.evalTokens(tokens, optim.batch).nll;
    };
    const initialLoss = evaluate();
    const rounds: RoundMetrics[] = [];
    for (let r = 0; r < o.rounds; r++) {
      const own: (Delta | undefined)[] = [];
      let innerLoss = 0;
      let innerCount = 0;
      for (let i = 0; i < K; i++) {
        const attacker = i >= K - nAttack;
        if (attacker && !o.attackers!.attack.trains) {
          own.push(undefined);
          continue;
        }
        const inner = innerRound(trainers[i]!, cursors[i]!, server.params, o.innerSteps);
        if (!attacker) {
          innerLoss += inner.losses.reduce((a, b) => a + b, 0);
          innerCount += inner.losses.length;
        }
        own.push(inner.delta);
      }
      const honest = own.slice(0, K - nAttack) as Delta[];
      const wires: WireDelta[] = own.map((d, i) => {
        const sent = i < K - nAttack ? d! : o.attackers!.attack.craft({ own: d, honest, n: K, f: nAttack, rng });
        return encodeDelta(sent, shapes, o.diloco.compression, server.round, `p${i}`);
      });
      const outcome = server.completeRound(wires);
      const evaluated = (r + 1) % (o.evalEvery ?? 1) === 0 || r === o.rounds - 1;
      const m: RoundMetrics = {
        round: outcome.round,
        ...(evaluated ? { heldOutLoss: evaluate() } : {}),
        ...(evaluated && o.validation ? { validationLoss: evaluate(o.validation) } : {}),
        innerLoss: innerLoss / Math.max(1, innerCount),
        refused: outcome.refused,
        bytesPerParticipant: outcome.bytes / Math.max(1, outcome.accepted.length),
        honestNorm: honest.length > 0 ? l2Norm(mean(honest)) : 0,
        ...(outcome.selected ? { selected: outcome.selected.map((j) => Number(outcome.accepted[j]!.slice(1))) } : {}),
      };
      rounds.push(m);
      o.onRound?.(m);
      if (evaluated && o.stop?.(m)) break;
    }
    const losses = rounds.flatMap((x) => (x.heldOutLoss === undefined ? [] : [x.heldOutLoss]));
    return { initialLoss, rounds, finalLoss: losses.at(-1) ?? initialLoss, bestLoss: Math.min(initialLoss, ...losses) };
  } finally {
    for (const t of trainers) t.dispose();
  }
}
