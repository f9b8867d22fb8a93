// Test support: small random-weight specialists that share one tokenizer (GPT-2's vocabulary), different
// seeds so that their distributions differ, loaded on the CPU.
import { getGgml } from '../../ggml/runtime.ts';
import { Batcher, localForward } from '../batcher.ts';
import { loadModelPart } from '../load.ts';
import type { ModelPart } from '../model-part.ts';
import { cachedModel } from '../testing/cached-model.ts';
import type { Shape } from '../testing/make-model.ts';
import { Tokenizer } from '../tokenizer.ts';
import { LocalSpecialist, type Specialist, type SpecialistSequence } from './specialist.ts';

export const SPECIALIST_SHAPE: Shape = { arch: 'llama', nEmbd: 64, nFf: 128, nHead: 4, nHeadKv: 2, vocab: 'gpt-2', ropeBase: 10000, rmsEps: 1e-5, nCtxTrain: 512, tiedEmbeddings: true };

export interface TestSpecialists {
  specialists: LocalSpecialist[];
  parts: ModelPart[];
  paths: string[];
  tokenizer: Tokenizer;
  dispose(): Promise<void>;
}

/** `n` specialists (seeds 1..n), 2 layers, Q8_0, peaked logits. */
export async function loadTestSpecialists(n: number, nCtx = 256): Promise<TestSpecialists> {
  const ggml = getGgml({ gpu: 'off' });
  const paths = Array.from({ length: n }, (_, i) => cachedModel({ shape: SPECIALIST_SHAPE, nLayer: 2, type: 'Q8_0', seed: i + 1 }));
  const parts = await Promise.all(paths.map(async (p) => (await loadModelPart(p, { gpu: 'off', nCtx, nSeqMax: 4 })).part));
  const tokenizer = await Tokenizer.load(paths[0]!);
  const specialists = parts.map((part, i) => new LocalSpecialist(`spec-${i + 1}`, new Batcher(localForward(part)), ggml, 'sha256:gpt2-test'));
  return {
    specialists, parts, paths, tokenizer,
    async dispose() {
      await tokenizer.dispose();
      for (const p of parts) p.dispose();
    },
  };
}

/** A specialist that fails: at its prefill, or after `okSteps` steps. Closing still works. */
export function failingSpecialist(inner: Specialist, okSteps: number | 'prefill', id = `${inner.id}-failing`): Specialist {
  return {
    id, tokenizerHash: inner.tokenizerHash, nVocab: inner.nVocab, nCtx: inner.nCtx,
    async start(prompt): Promise<SpecialistSequence> {
      if (okSteps === 'prefill') throw new Error(`${id} is down`);
      const seq = await inner.start(prompt);
      let steps = 0;
      return {
        promptLogLikelihood: seq.promptLogLikelihood,
        logits: seq.logits,
        next: (token) => (++steps > okSteps ? Promise.reject(new Error(`${id} went away`)) : seq.next(token)),
        close: () => seq.close(),
      };
    },
  };
}
