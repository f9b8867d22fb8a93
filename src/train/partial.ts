// A partial fine-tune: train some of a model's tensors over the rest of it, frozen (a TrainTarget). Specialists
// fine-tuned on their top layers only keep the base's trunk byte for byte, and a stacked mixture of them
// (src/model/stacked-model.ts) loads and runs that trunk once: a mixture of K such specialists costs one
// model plus K times what they own (Bet 69 measures what that keeps of a full fine-tune's gain).
import type { Ggml } from '../ggml/runtime.ts';
import { T } from '../ggml/graph.ts';
import { WeightSet } from '../ggml/weights.ts';
import type { ModelConfig } from './config.ts';
import { TrainError } from './errors.ts';
import { OUTPUT, OUTPUT_NORM, type ParamSpec, type TensorMap, paramSpecs } from './params.ts';
import type { TrainTarget } from './trainer.ts';

/** What a partial fine-tune owns: the last `layers` layers, and with `head` the final norm and output matrix. */
export interface OwnedPart {
  layers: number;
  head: boolean;
}

/** Whether tensor `name` belongs to the owned part of model `m`. */
export function ownsTensor(m: ModelConfig, own: OwnedPart, name: string): boolean {
  const layer = /^blk\.(\d+)\./.exec(name);
  if (layer) return Number(layer[1]) >= m.nLayer - own.layers;
  return own.head && (name === OUTPUT || name === OUTPUT_NORM);
}

/** The target that trains the owned part over the frozen rest (F32 on the backend, freed with the trainer). */
export function partialTarget(ggml: Ggml, m: ModelConfig, base: TensorMap, own: OwnedPart): TrainTarget {
  const specs: ParamSpec[] = paramSpecs(m).filter((s) => ownsTensor(m, own, s.name));
  const rest = paramSpecs(m).filter((s) => !ownsTensor(m, own, s.name));
  const frozen = new WeightSet(ggml, rest.map((s) => ({ name: s.name, type: T.F32, ne: s.ne, matmul: false })));
  for (const s of rest) {
    const a = base.get(s.name);
    if (!a) throw new TrainError('base weights incomplete', s.name, 'absent', 'load the base with loadGgufParams (every tensor of the model)');
    frozen.upload(s.name, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  }
  const owned = new Set(specs.map((s) => s.name));
  return { specs, weights: (param) => (name) => (owned.has(name) ? param(name) : frozen.get(name)), dispose: () => frozen.dispose() };
}
