// How much memory training a model takes, estimated before anything is allocated, so that a preset that
// does not fit fails with one clear line instead of an allocation failure deep inside ggml.
//
// Static: parameters + two AdamW moments (F32). Compute (the graph's buffers, reused step to step): per
// layer and token the activations live at the peak (about 8 n_embd + 2 n_ff floats; ggml's allocator
// reuses the rest) and the attention scores and probabilities (2 n_head n_ctx floats); the logits, their
// one-hot targets and their gradient (3 n_vocab floats per token); the gradients (one more copy of the
// parameters). Checked against the measured compute buffers in memory.test.ts.
import type { ModelConfig } from './config.ts';
import { paramCount } from './config.ts';
import { TrainMemoryError } from './errors.ts';

export interface MemoryEstimate {
  staticBytes: number;
  computeBytes: number;
  total: number;
}

export function estimateTrainingMemory(m: ModelConfig, batch: number): MemoryEstimate {
  const params = paramCount(m);
  const tokens = batch * m.nCtx;
  const perLayerToken = 8 * m.nEmbd + 2 * m.nFf + 2 * m.nHead * m.nCtx;
  const activations = tokens * (m.nLayer * perLayerToken + 3 * m.nVocab);
  const staticBytes = 3 * params * 4;
  // 10% headroom for the allocator's alignment and fragmentation.
  const computeBytes = Math.ceil((activations + params) * 4 * 1.1);
  return { staticBytes, computeBytes, total: staticBytes + computeBytes };
}

export function checkTrainingMemory(m: ModelConfig, batch: number, availableBytes: number, what: string): MemoryEstimate {
  const e = estimateTrainingMemory(m, batch);
  if (e.total > availableBytes) {
    throw new TrainMemoryError(
      `${what} does not fit in memory`,
      `${gib(e.total)} (weights and AdamW state ${gib(e.staticBytes)} + activations ${gib(e.computeBytes)})`,
      `${gib(availableBytes)} available`,
      'use a smaller preset or --batch, or free memory',
    );
  }
  return e;
}

function gib(n: number): string {
  return n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : `${(n / 2 ** 20).toFixed(0)} MiB`;
}
