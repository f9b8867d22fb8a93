// MixtureGenerator: a TextGenerator over several specialists. The prompt is prefilled on every candidate at
// once (each scores it: the router's evidence), the router keeps the top k, and at each step every kept
// specialist gives its next-token logits (all steps in flight together), the combiner mixes them, the
// sampler draws from the mixture, and Bayes' rule updates the weights. Each piece carries its attribution.
// A specialist that fails drops out (weights renormalised, logged, in the trail); all failing is an error.
import { Combiner, type MixedDistribution, stepOf } from './combine.ts';
import { route } from './router.ts';
import { type Specialist, type SpecialistSequence, MixtureUnavailableError, checkCompatible } from './specialist.ts';
import { type MixtureTrail, namedShares, namedWeights } from './trail.ts';
import { FusedSteps, startAll } from './stacked.ts';
import { type MixtureSteps, SeparateSteps } from './steps.ts';
import { MIXTURE_DEFAULTS, type MixtureMode, dropSpecialist, mixingWeights } from './weights.ts';
import type { Ggml } from '../../ggml/runtime.ts';
import { ContextLimitError } from '../errors.ts';
import { type FinishReason, type GenerateOptions, type GeneratedPiece, type GenerationResult, type TextGenerator, firstStop, holdBack } from '../generator.ts';
import { createSampler } from '../sampler.ts';
import type { Tokenizer } from '../tokenizer.ts';

export interface MixtureOptions {
  /** How the weights mix: the posterior (default), uniform, or all on the most likely specialist. */
  mode?: MixtureMode;
  /** Most specialists kept by the router. Default 3. */
  k?: number;
  /** The router drops specialists below this prompt posterior. Default 1e-3. */
  minWeight?: number;
  /** Fixed share after each Bayes update (weights.ts). Default 0. */
  fixedShare?: number;
  /** Prior per specialist, in the order given. Default uniform. */
  priors?: readonly number[];
  /** Where drop-outs are logged. */
  log?: (message: string) => void;
}

export interface MixtureResult extends GenerationResult {
  trail: MixtureTrail;
}

interface Active {
  specialist: Specialist;
  seq: SpecialistSequence;
}

export class MixtureGenerator implements TextGenerator {
  readonly specialists: readonly Specialist[];
  readonly tokenizer: Tokenizer;
  readonly options: MixtureOptions;
  private readonly ggml: Ggml;

  /** Throws TokenizerMismatchError if the specialists do not share a tokenizer. */
  constructor(specialists: readonly Specialist[], tokenizer: Tokenizer, ggml: Ggml, options: MixtureOptions = {}) {
    checkCompatible(specialists);
    this.specialists = specialists;
    this.tokenizer = tokenizer;
    this.ggml = ggml;
    this.options = options;
  }

  get nCtx(): number {
    return Math.min(...this.specialists.map((s) => s.nCtx));
  }

  async *stream(prompt: readonly number[], opts: GenerateOptions = {}): AsyncGenerator<GeneratedPiece, MixtureResult> {
    const mode = this.options.mode ?? 'posterior';
    const maxTokens = opts.maxTokens ?? 256;
    const nCtx = this.nCtx;
    if (prompt.length === 0) throw new ContextLimitError('empty prompt', 'at least one token', '0', 'send some text');
    if (prompt.length >= nCtx) throw new ContextLimitError('prompt too long', `fewer than ${nCtx} tokens`, `${prompt.length} tokens`, 'shorten the prompt or load the specialists with a larger --ctx-size');
    const { maxTokens: _m, stop: _s, signal: _g, ...samplerOpts } = opts;
    const sampler = createSampler(samplerOpts);
    const decoder = this.tokenizer.createStreamDecoder();
    const stops = (opts.stop ?? []).filter((s) => s.length > 0);
    const trail: MixtureTrail = { mode, routed: [], notRouted: [], tokens: [], dropped: [] };
    const history = [...prompt];
    const tokens: number[] = [];
    let text = '';
    let emitted = 0;
    let finishReason: FinishReason = 'length';
    const combiner = new Combiner(this.ggml, this.specialists[0]!.nVocab);
    let active: Active[] = [];
    const drop = (model: string, reason: unknown): void => {
      const why = reason instanceof Error ? reason.message : String(reason);
      trail.dropped.push({ model, atToken: tokens.length, reason: why });
      this.options.log?.(`mixture: specialist ${model} dropped out after ${tokens.length} tokens: ${why}`);
    };
    try {
      // One prefill per candidate, all in flight together; each scores the prompt for the router.
      // (the members of a stack together: one prefill for all of them)
      const started = await startAll(this.specialists, prompt, opts.signal);
      const candidates: Active[] = [];
      started.forEach((r, i) => {
        const specialist = this.specialists[i]!;
        if (r.status === 'fulfilled') candidates.push({ specialist, seq: r.value });
        else drop(specialist.id, r.reason);
      });
      if (candidates.length === 0) throw unavailable(trail);
      const r = route(candidates.map((c) => c.seq.promptLogLikelihood), {
        k: this.options.k ?? MIXTURE_DEFAULTS.k,
        minWeight: this.options.minWeight ?? MIXTURE_DEFAULTS.minWeight,
        priors: this.options.priors && candidates.map((c) => this.options.priors![this.specialists.indexOf(c.specialist)] ?? 1),
      });
      active = r.indices.map((i) => candidates[i]!);
      const ids = (): string[] => active.map((a) => a.specialist.id);
      trail.routed = namedWeights(ids(), r.weights);
      const notRouted = candidates.filter((c) => !active.includes(c));
      trail.notRouted = namedWeights(notRouted.map((c) => c.specialist.id), notRouted.map((c) => r.posterior[candidates.indexOf(c)]!));
      await Promise.allSettled(notRouted.map((c) => c.seq.close()));
      let posterior = r.weights;
      // One graph a token when every kept specialist is in one local stack; else each steps and the combiner mixes.
      const steps: MixtureSteps = FusedSteps.of(combiner, active.map((a) => a.seq)) ?? new SeparateSteps(combiner, active.map((a) => a.seq));

      for (let i = 0; i < maxTokens; i++) {
        if (opts.signal?.aborted) {
          finishReason = 'aborted';
          break;
        }
        let mixed: MixedDistribution;
        try {
          mixed = await steps.mix(mixingWeights(posterior, mode));
        } catch (e) {
          // A stacked step failing fails all its members at once.
          for (const a of active) drop(a.specialist.id, e);
          throw unavailable(trail);
        }
        const step = stepOf(mixed, posterior, this.options.fixedShare);
        const token = sampler.sample(step.mixed.logits, history);
        const a = step.attribute(token);
        const attribution = namedShares(ids(), a.shares);
        const weightsBefore = namedWeights(ids(), posterior);
        posterior = a.posterior;
        if (this.tokenizer.isEndOfGeneration(token)) {
          finishReason = 'stop';
          break;
        }
        tokens.push(token);
        history.push(token);
        trail.tokens.push({ token, attribution, weights: weightsBefore });
        text += decoder.push(token);
        const hit = firstStop(text, stops);
        if (hit >= 0) {
          text = text.slice(0, hit);
          // Yielded even when empty: every generated token's attribution reaches the caller.
          yield { text: text.length > emitted ? text.slice(emitted) : '', token, attribution };
          emitted = Math.max(emitted, text.length);
          finishReason = 'stop';
          break;
        }
        const safe = text.length - holdBack(text, stops);
        yield { text: safe > emitted ? text.slice(emitted, safe) : '', token, attribution };
        emitted = Math.max(emitted, safe);
        if (i + 1 >= maxTokens) break;
        if (prompt.length + tokens.length >= nCtx) break;
        // Every specialist's step in flight at once; the failed ones drop out.
        const failed = await steps.advance(token);
        let weights = posterior;
        for (const { index, reason } of [...failed].sort((a, b) => b.index - a.index)) {
          drop(active[index]!.specialist.id, reason);
          weights = weights.length > 1 ? dropSpecialist(weights, index) : new Float64Array(0);
        }
        active = active.filter((_, k) => !failed.some((f) => f.index === k));
        if (active.length === 0) throw unavailable(trail);
        posterior = weights;
      }
      if (finishReason !== 'stop' || firstStop(text, stops) < 0) {
        text += decoder.flush();
        if (text.length > emitted) yield { text: text.slice(emitted), token: tokens.at(-1) ?? -1 };
      }
      return { text, tokens, promptTokens: prompt.length, finishReason, trail };
    } finally {
      combiner.dispose();
      await Promise.allSettled(active.map((a) => a.seq.close()));
    }
  }
}

function unavailable(trail: MixtureTrail): MixtureUnavailableError {
  const why = trail.dropped.map((d) => `${d.model}: ${d.reason}`).join('; ');
  return new MixtureUnavailableError('every specialist of the mixture failed', 'at least one specialist answering', why || 'none', 'retry later, or name other specialists');
}
