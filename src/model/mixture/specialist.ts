// A specialist as the mixture sees it: something that prefills a prompt (scoring it for the router) and then
// gives its next-token distribution after each token. Local ones run a Batcher over their own ModelPart;
// remote ones (src/federation/mixture/) drive another primary over the data plane.
import type { Ggml } from '../../ggml/runtime.ts';
import type { Batcher } from '../batcher.ts';
import { ModelError } from '../errors.ts';
import { promptLogLikelihood } from './likelihood.ts';

export interface Specialist {
  /** The model id shown in attributions. */
  readonly id: string;
  /** sha256 of the tokenizer (src/federation/directory/model-facts.ts tokenizerHash): mixtures need one. */
  readonly tokenizerHash: string;
  readonly nVocab: number;
  readonly nCtx: number;
  /** Open a sequence and prefill the prompt (one batched prefill): its next-token logits and log p(prompt). */
  start(prompt: readonly number[], signal?: AbortSignal): Promise<SpecialistSequence>;
}

export interface SpecialistSequence {
  /** log p(prompt[1..] | prompt[0]) under this specialist: the router's evidence. */
  readonly promptLogLikelihood: number;
  /** Next-token logits (or log-probabilities) after the prompt: V floats. */
  readonly logits: Float32Array;
  /** Feed the token chosen; resolves with the next-token logits after it. */
  next(token: number): Promise<Float32Array>;
  close(): Promise<void>;
}

/** Specialists that cannot be mixed: different tokenizers or vocabularies. The API answers 400. */
export class TokenizerMismatchError extends ModelError {}

/** Every specialist of a mixture failed (at the prefill or mid-answer). The API answers 503. */
export class MixtureUnavailableError extends ModelError {}

/** A local model (its own ModelPart behind a Batcher) as a specialist. */
export class LocalSpecialist implements Specialist {
  readonly id: string;
  readonly tokenizerHash: string;
  readonly batcher: Batcher;
  private readonly ggml: Ggml;

  constructor(id: string, batcher: Batcher, ggml: Ggml, tokenizerHash: string) {
    this.id = id;
    this.batcher = batcher;
    this.ggml = ggml;
    this.tokenizerHash = tokenizerHash;
  }

  get nVocab(): number {
    return this.batcher.forward.nVocab;
  }

  get nCtx(): number {
    return this.batcher.forward.nCtx;
  }

  async start(prompt: readonly number[]): Promise<SpecialistSequence> {
    const fwd = this.batcher.forward;
    const seq = await fwd.openSequence();
    let closed = false;
    const close = async (): Promise<void> => {
      if (closed) return;
      closed = true;
      await fwd.closeSequence(seq);
    };
    try {
      const rows = await this.batcher.submit({ seq, tokens: Int32Array.from(prompt), logits: 'all' }); // prompt.length rows of V
      const last = rows.at(-1);
      if (!last) throw new ModelError('prefill returned no logits', `${prompt.length} rows`, '0', 'is this a full model with its head?');
      return {
        promptLogLikelihood: promptLogLikelihood(this.ggml, rows, prompt),
        logits: last,
        next: async (token: number) => {
          const r = await this.batcher.submit({ seq, tokens: Int32Array.of(token) });
          const row = r[0];
          if (!row) throw new ModelError('step returned no logits', '1 row', '0', 'is this a full model with its head?');
          return row;
        },
        close,
      };
    } catch (e) {
      await close();
      throw e;
    }
  }
}

/** Check that specialists can be mixed: one tokenizer hash and one vocabulary size; names the odd one out. */
export function checkCompatible(specialists: readonly Specialist[]): void {
  const first = specialists[0];
  if (!first) throw new MixtureUnavailableError('no specialist to mix', 'at least one specialist', 'none', 'load specialists with --specialist, or name them in mixture:<id>,<id>');
  for (const s of specialists.slice(1)) {
    if (s.tokenizerHash !== first.tokenizerHash) {
      throw new TokenizerMismatchError(`specialists ${first.id} and ${s.id} have different tokenizers`, `tokenizer ${first.tokenizerHash}`, `${s.tokenizerHash} (${s.id})`, 'mix only specialists trained from the same base tokenizer');
    }
    if (s.nVocab !== first.nVocab) {
      throw new TokenizerMismatchError(`specialists ${first.id} and ${s.id} have different vocabularies`, `${first.nVocab} tokens`, `${s.nVocab} (${s.id})`, 'mix only specialists with the same vocabulary');
    }
  }
}
