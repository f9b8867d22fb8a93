// llama.cpp through node-llama-cpp as the outside reference for parity tests: logits per position and
// greedy continuations on the same GGUF file, with flash attention and an F16 KV cache (our engine's layout).
import { type Llama, type LlamaModel, getLlama } from 'node-llama-cpp';

let llamaP: Promise<Llama> | undefined;
export function referenceLlama(): Promise<Llama> {
  llamaP ??= getLlama({ gpu: false, build: 'never', logLevel: 'error' as never, progressLogs: false });
  return llamaP;
}

export interface Reference {
  model: LlamaModel;
  /** Logits (full vocabulary) after each of the given tokens, from a fresh sequence. */
  logits(tokens: readonly number[]): Promise<Float32Array[]>;
  /** Greedy continuation of n tokens after the prompt. */
  greedy(prompt: readonly number[], n: number): Promise<number[]>;
  dispose(): Promise<void>;
}

export async function loadReference(path: string, threads = 2, contextSize = 512): Promise<Reference> {
  const llama = await referenceLlama();
  const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
  const ctxOpts = { contextSize, flashAttention: true, threads, batchSize: contextSize, sequences: 1 } as const;
  return {
    model,
    async logits(tokens) {
      const ctx = await model.createContext(ctxOpts);
      try {
        const seq = ctx.getSequence();
        const out = await seq.controlledEvaluate(tokens.map((t) => [t, { generateNext: { logits: true } }]) as never);
        return out.map((o, i) => {
          const m = o?.next?.logits;
          if (!m) throw new Error(`no logits from llama.cpp at position ${i}`);
          const arr = new Float32Array(m.size);
          for (const [tok, v] of m) arr[tok as number] = v;
          return arr;
        });
      } finally {
        await ctx.dispose();
      }
    },
    async greedy(prompt, n) {
      const ctx = await model.createContext(ctxOpts);
      try {
        const seq = ctx.getSequence();
        const out: number[] = [];
        for await (const tok of seq.evaluate([...prompt] as never, { temperature: 0 })) {
          out.push(tok as number);
          if (out.length >= n) break;
        }
        return out;
      } finally {
        await ctx.dispose();
      }
    },
    async dispose() {
      await model.dispose();
    },
  };
}
