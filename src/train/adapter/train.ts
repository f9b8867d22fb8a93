// trainAdapter: one adapter from one user's text over a base GGUF, the base frozen (only the adapter's
// tensors are trainable). What the CLI (`sharedllm adapter train`) and the primary's adapter jobs call.
import type { Adapter, AdapterKind } from './format.ts';
import { AdapterSession, checkText } from './session.ts';

export interface TrainAdapterOptions {
  /** The base model GGUF (llama family). */
  modelPath: string;
  /** The user's text. Empty, binary or too short text (fewer tokens than one batch) is refused. */
  text: string;
  kind: AdapterKind;
  /** LoRA rank (lora only; default 4). */
  rank?: number;
  /** Optimiser steps (default ADAPTER_DEFAULTS.steps). */
  steps?: number;
  seed?: number;
  threads?: number;
  /** Adapter name written into the file (default '<kind>-adapter'). */
  name?: string;
  /** Aborting stops training between two steps with a TrainError ('adapter training cancelled'). */
  signal?: AbortSignal;
  onProgress?: (step: number, total: number, loss: number) => void;
}

export async function trainAdapter(o: TrainAdapterOptions): Promise<Adapter> {
  checkText(o.text); // empty or binary text is refused before the model is loaded
  const session = await AdapterSession.open(o.modelPath, o.threads === undefined ? {} : { threads: o.threads });
  try {
    const tokens = session.encodeTrainingText(o.text);
    return await session.train(tokens, {
      kind: o.kind, seed: o.seed ?? 0,
      ...(o.rank !== undefined ? { rank: o.rank } : {}),
      ...(o.steps !== undefined ? { steps: o.steps } : {}),
      ...(o.name !== undefined ? { name: o.name } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.onProgress ? { onProgress: o.onProgress } : {}),
    });
  } finally {
    await session.dispose();
  }
}
