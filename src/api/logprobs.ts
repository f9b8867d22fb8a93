/**
 * Log probabilities of generated tokens, shaped as OpenAI returns them.
 *
 * They are the model's own distribution: log-softmax over the whole vocabulary of the logits the sampler
 * is given, BEFORE penalties and temperature (as OpenAI and vLLM report them: the same text gets the same
 * logprobs whatever the sampling settings). The sampler's `onSample` hook hands us each row as it is used.
 *
 *   chat:        choices[].logprobs = { content: [{ token, logprob, bytes, top_logprobs: [{ token, logprob,
 *                bytes }] }], refusal: null }   (top_logprobs: 0..20 alternatives, most likely first)
 *   completions: choices[].logprobs = { tokens, token_logprobs, top_logprobs: [{ token: logprob }],
 *                text_offset }                  (logprobs: 0..5 alternatives)
 */
import type { Tokenizer } from '../model/tokenizer.ts';

/** OpenAI's caps: chat's top_logprobs, completions' logprobs. */
export const MAX_CHAT_TOP_LOGPROBS = 20;
export const MAX_COMPLETION_LOGPROBS = 5;

export interface TokenLogprob {
  token: number;
  logprob: number;
  /** The `k` most likely tokens at this position, most likely first. */
  top: { token: number; logprob: number }[];
}

/** log-softmax of `logits` at `token`, and the `k` most likely tokens (accumulated in float64). */
export function tokenLogprob(logits: Float32Array, token: number, k: number): TokenLogprob {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  const logZ = max + Math.log(sum);
  const lp = (id: number) => Math.max(logits[id]! - logZ, -9999); // -inf is not JSON; OpenAI's floor is -9999
  return { token, logprob: lp(token), top: topK(logits, k).map((id) => ({ token: id, logprob: lp(id) })) };
}

/** Ids of the k largest entries, largest first (lower id first on ties); k is small (<= 20). */
function topK(values: Float32Array, k: number): number[] {
  const best: number[] = [];
  if (k <= 0) return best;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (best.length === k && v <= values[best[k - 1]!]!) continue;
    let at = best.length === k ? k - 1 : best.length;
    while (at > 0 && values[best[at - 1]!]! < v) at--;
    best.splice(at, 0, i);
    if (best.length > k) best.pop();
  }
  return best;
}

/** A token's text as OpenAI shows it: its bytes as UTF-8 (a split character shows as U+FFFD). */
export function tokenString(tokenizer: Tokenizer, token: number): string {
  return new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }).decode(tokenizer.tokenBytes(token));
}

export interface ChatLogprobEntry {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}

export function chatLogprobEntries(tokenizer: Tokenizer, entries: readonly TokenLogprob[]): ChatLogprobEntry[] {
  const shown = (id: number) => ({ token: tokenString(tokenizer, id), bytes: [...tokenizer.tokenBytes(id)] });
  return entries.map((e) => {
    const { token, bytes } = shown(e.token);
    return { token, logprob: e.logprob, bytes, top_logprobs: e.top.map((t) => ({ ...shown(t.token), logprob: t.logprob })) };
  });
}

export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[];
  text_offset: number[];
}

/**
 * The legacy shape; `offsets[i]` is where token i's text starts in the choice's text (tokens that end
 * mid-character share the offset of the character they complete).
 */
export function completionLogprobs(tokenizer: Tokenizer, entries: readonly TokenLogprob[], offsets: readonly number[]): CompletionLogprobs {
  return {
    tokens: entries.map((e) => tokenString(tokenizer, e.token)),
    token_logprobs: entries.map((e) => e.logprob),
    top_logprobs: entries.map((e) => Object.fromEntries(e.top.map((t) => [tokenString(tokenizer, t.token), t.logprob]))),
    text_offset: [...offsets],
  };
}
