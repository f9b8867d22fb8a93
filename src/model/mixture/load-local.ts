// Local specialists from GGUF files for a mixture: one stacked model when they stack (one shape, llama or
// qwen2, and enough memory: one graph a token for all of them), else each loaded apart with its own Batcher.
// Why they did not stack goes to the log; the mixture answers the same either way.
import type { GgmlOptions, Ggml } from '../../ggml/runtime.ts';
import { Batcher, localForward } from '../batcher.ts';
import { OutOfMemoryError } from '../errors.ts';
import { loadModelPart } from '../load.ts';
import { StackError, StackedModel } from '../stacked-model.ts';
import { LocalSpecialist, type Specialist } from './specialist.ts';
import { StackedGroup } from './stacked.ts';

export type StackChoice = 'auto' | 'off';
export const STACK_CHOICES: readonly StackChoice[] = ['auto', 'off'];

export interface LocalSpecialistFile {
  path: string;
  id: string;
  tokenizerHash: string;
}

export interface LoadedSpecialists {
  specialists: Specialist[];
  /** The stack they run in, when they stack. */
  stack: StackedModel | undefined;
  dispose(): void;
}

export async function loadLocalSpecialists(files: readonly LocalSpecialistFile[], ggml: Ggml, o: GgmlOptions & { nCtx?: number; stack?: StackChoice; log?: (message: string) => void }): Promise<LoadedSpecialists> {
  const opts = { ...o, ...(o.nCtx !== undefined ? { nCtx: o.nCtx } : {}) };
  if ((o.stack ?? 'auto') === 'auto' && files.length >= 2 && files.every((f) => f.tokenizerHash === files[0]!.tokenizerHash)) {
    try {
      const stack = await StackedModel.load(files.map((f) => f.path), opts);
      const group = new StackedGroup(stack, ggml, files[0]!.tokenizerHash);
      o.log?.(`mixture: ${files.length} specialists stacked in one model (shared trunk: ${stack.shared.embeddings ? `embeddings and ${stack.shared.layers} layers` : 'none'})`);
      return { specialists: files.map((f, i) => group.member(i, f.id)), stack, dispose: () => stack.dispose() };
    } catch (e) {
      if (!(e instanceof StackError || e instanceof OutOfMemoryError)) throw e;
      o.log?.(`mixture: specialists loaded apart (${e.message})`);
    }
  }
  const parts: { dispose(): void }[] = [];
  try {
    const specialists: Specialist[] = [];
    for (const f of files) {
      const { part } = await loadModelPart(f.path, opts);
      parts.push(part);
      specialists.push(new LocalSpecialist(f.id, new Batcher(localForward(part)), ggml, f.tokenizerHash));
    }
    return { specialists, stack: undefined, dispose: () => parts.forEach((p) => p.dispose()) };
  } catch (e) {
    for (const p of parts) p.dispose();
    throw e;
  }
}
