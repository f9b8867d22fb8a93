// The mixture's data-plane methods (issue 13): a primary drives the specialists another primary serves, one
// step at a time. Entries of DATAPLANE (protocol-dataplane.ts); served by primaries.
//
//   mixture_list    -> the specialists served here: id, tokenizer hash, vocabulary, context
//   mixture_open    payload: the prompt, int32 little-endian -> a sequence, log p(prompt), the first distribution
//   mixture_step    steps of several sequences at once (one token each) -> one distribution each
//   mixture_close   sequences the caller is done with
//
// A distribution travels in the answer's payload, in the order of the header's `dists`:
//   'f16'   nVocab log-probabilities up to a constant (logits minus their max: the largest is 0), IEEE f16,
//           2 bytes each; for vocabularies up to MIXTURE_LIMITS.fullVocabMax
//   'topk'  k entries of (int32 token id, f32 log-probability, normalised), then the tail: `tailMass` is the
//           probability of every other token together, spread evenly over them by the receiver
// Sequences belong to the connection that opened them; they are closed when it closes.
import { z } from 'zod';

export const MIXTURE_LIMITS = {
  /** Largest vocabulary sent whole (f16); above it, top-k with the tail mass. */
  fullVocabMax: 65_536,
  /** Entries of a 'topk' distribution. */
  topK: 256,
  /** Largest vocabulary a specialist may have. */
  maxVocab: 1 << 20,
  /** Sequences in one mixture_step. */
  maxStepSeqs: 64,
  /** Prompt tokens in one mixture_open. */
  maxPromptTokens: 1 << 17,
} as const;

const seqId = z.number().int().min(0).max(2 ** 31);
const tokenId = z.number().int().min(0).max(MIXTURE_LIMITS.maxVocab);

export const MixtureSpecialistInfo = z.object({
  id: z.string().min(1).max(200),
  tokenizerHash: z.string().max(100),
  nVocab: z.number().int().min(1).max(MIXTURE_LIMITS.maxVocab),
  nCtx: z.number().int().min(1).max(1 << 24),
});
export type MixtureSpecialistInfo = z.infer<typeof MixtureSpecialistInfo>;

export const DistributionHeader = z.discriminatedUnion('encoding', [
  z.object({ encoding: z.literal('f16'), nVocab: z.number().int().min(1).max(MIXTURE_LIMITS.fullVocabMax) }),
  z.object({
    encoding: z.literal('topk'),
    nVocab: z.number().int().min(1).max(MIXTURE_LIMITS.maxVocab),
    k: z.number().int().min(1).max(MIXTURE_LIMITS.topK),
    tailMass: z.number().min(0).max(1),
  }),
]);
export type DistributionHeader = z.infer<typeof DistributionHeader>;

export const MixtureListRequest = z.object({});
export const MixtureListResponse = z.object({ specialists: z.array(MixtureSpecialistInfo).max(256) });

/** Payload: the prompt's token ids, int32 little-endian. */
export const MixtureOpenRequest = z.object({ modelId: z.string().min(1).max(200), nTokens: z.number().int().min(1).max(MIXTURE_LIMITS.maxPromptTokens) });
export const MixtureOpenResponse = z.object({ seq: seqId, promptLogLikelihood: z.number().max(0), dist: DistributionHeader });

export const MixtureStepRequest = z.object({ steps: z.array(z.object({ seq: seqId, token: tokenId })).min(1).max(MIXTURE_LIMITS.maxStepSeqs) });
/** Payload: the distributions, one per step in order. */
export const MixtureStepResponse = z.object({ dists: z.array(DistributionHeader).max(MIXTURE_LIMITS.maxStepSeqs) });

export const MixtureCloseRequest = z.object({ seqs: z.array(seqId).min(1).max(MIXTURE_LIMITS.maxStepSeqs) });
export const MixtureCloseResponse = z.object({ ok: z.literal(true) });

/** Bytes of one distribution in a payload. */
export function distributionBytes(h: DistributionHeader): number {
  return h.encoding === 'f16' ? 2 * h.nVocab : 8 * h.k;
}

/** Largest payload of a mixture_open request (the prompt). */
export const MIXTURE_OPEN_MAX_PAYLOAD = 4 * MIXTURE_LIMITS.maxPromptTokens;
