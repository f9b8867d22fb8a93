/**
 * `n` > 1: n independent samples of one prompt. Each choice is its own generation (its own sequence and
 * limiter slot, seed + index when a seed is given), all running at once, so the Batcher merges their steps
 * into one graph per token. The first failure stops the others. The prompt is counted once in the usage,
 * the completions of every choice together (as OpenAI counts them).
 */
import { seed32 } from './options.ts';
import { type ApiEngine, type FinishedGeneration, type GenerationEvent, type GenerationOptions, type Usage, generateAll, generationEvents } from './generation.ts';

/** Most choices one request may ask for (each holds a sequence on every node while it runs). */
export const MAX_CHOICES = 16;

/** The options of choice `index`: its own seed, and a signal that also fires when a sibling failed. */
function choiceOptions(options: GenerationOptions, index: number, signal: AbortSignal): GenerationOptions {
  return { ...options, signal, ...(options.seed === undefined ? {} : { seed: seed32(options.seed + index) }) };
}

/** Runs n generations to their end; results in choice order. */
export async function generateChoices(engine: ApiEngine, prompt: readonly number[], options: GenerationOptions, n: number): Promise<FinishedGeneration[]> {
  if (n === 1) return [await generateAll(engine, prompt, options)];
  const stop = new AbortController();
  const signal = AbortSignal.any([options.signal, stop.signal]);
  return Promise.all(
    Array.from({ length: n }, (_, index) =>
      generateAll(engine, prompt, choiceOptions(options, index, signal)).catch((error: unknown) => {
        stop.abort(error);
        throw error;
      }),
    ),
  );
}

export interface ChoiceEvent {
  index: number;
  event: GenerationEvent;
}

/** The events of n generations as they come, each tagged with its choice index. */
export async function* choiceEvents(engine: ApiEngine, prompt: readonly number[], options: GenerationOptions, n: number): AsyncGenerator<ChoiceEvent, void> {
  const stop = new AbortController();
  const signal = AbortSignal.any([options.signal, stop.signal]);
  const streams = Array.from({ length: n }, (_, index) => generationEvents(engine, prompt, choiceOptions(options, index, signal)));
  const pending = new Map<number, Promise<{ index: number; next: IteratorResult<GenerationEvent, void> }>>();
  const pull = (index: number) => pending.set(index, streams[index]!.next().then((next) => ({ index, next })));
  streams.forEach((_, index) => pull(index));
  try {
    while (pending.size > 0) {
      const { index, next } = await Promise.race(pending.values());
      if (next.done === true) {
        pending.delete(index);
        continue;
      }
      yield { index, event: next.value };
      pull(index);
    }
  } finally {
    if (pending.size > 0) {
      // Stopped early (client gone, or one choice failed): stop the others and let them free their sequences.
      stop.abort(new Error('another choice of this request ended the request'));
      await Promise.allSettled(pending.values());
      await Promise.allSettled(streams.map((s) => s.return()));
    }
  }
}

/** Usage of a request's choices: the prompt once, every choice's completion. */
export function usageOfChoices(results: readonly FinishedGeneration[]): Usage {
  const prompt = results[0]?.promptTokens ?? 0;
  const completion = results.reduce((sum, r) => sum + r.tokens.length, 0);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}
