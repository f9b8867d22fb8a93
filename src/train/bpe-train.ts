// Learning BPE merges from word frequencies (Sennrich et al. 2016; GPT-2's byte-level variant).
//
// Every word starts as its UTF-8 bytes (token id = byte value). Each step merges the most frequent
// adjacent pair of tokens into a new token, everywhere it occurs, and records the merge. Counting pairs
// from scratch each step would be O(corpus) per merge; instead we keep
//   pairCount  pair -> occurrences (weighted by word frequency)
//   pairWords  pair -> ids of the words that contain it (may list a word that no longer does: stale
//              entries are harmless, a word is only rewritten where the pair is really found)
//   heap       pairs by count, with lazy deletion (an entry whose count is out of date is skipped)
// and after each merge update only the pairs next to each rewritten occurrence, as HuggingFace
// tokenizers' BpeTrainer does. Ties are broken by the smaller (left id, right id), so training is
// deterministic whatever the order of the input.
import { BYTE_TO_CHAR } from './bpe-bytes.ts';

/** Pairs are packed into one number: left * PAIR_BASE + right (ids stay below 2^21). */
const PAIR_BASE = 2 ** 21;
export const MAX_VOCAB = PAIR_BASE;

export interface LearnMergesOptions {
  /** Stop after this many new tokens (merges that produce an already known text do not count). */
  newTokens: number;
  /** Stop when the best pair occurs fewer times than this. Default 2. */
  minFrequency?: number;
  /** Token texts (byte-level form) that must never be produced, e.g. the special tokens. */
  forbidden?: ReadonlySet<string>;
  /** Called every `progressEvery` merges. */
  onProgress?: (done: number, total: number) => void;
  progressEvery?: number;
}

export interface LearnedMerges {
  /** Byte-level texts of all tokens: the 256 bytes first (id = byte value), then merge results. */
  tokens: string[];
  /** Merges in rank order, as token ids [left, right]. */
  merges: [number, number][];
}

/** Max-heap of (count, pair) with ties to the smaller pair; stale entries are filtered by the caller. */
class PairHeap {
  private readonly counts: number[] = [];
  private readonly pairs: number[] = [];

  get size(): number {
    return this.counts.length;
  }

  private before(i: number, j: number): boolean {
    const ci = this.counts[i] as number;
    const cj = this.counts[j] as number;
    return ci > cj || (ci === cj && (this.pairs[i] as number) < (this.pairs[j] as number));
  }

  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j] as number, this.counts[i] as number];
    [this.pairs[i], this.pairs[j]] = [this.pairs[j] as number, this.pairs[i] as number];
  }

  push(count: number, pair: number): void {
    this.counts.push(count);
    this.pairs.push(pair);
    for (let i = this.counts.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  /** Removes the top entry and returns it as [count, pair]. */
  pop(): [number, number] {
    const top: [number, number] = [this.counts[0] as number, this.pairs[0] as number];
    const lastCount = this.counts.pop() as number;
    const lastPair = this.pairs.pop() as number;
    const n = this.counts.length;
    if (n > 0) {
      this.counts[0] = lastCount;
      this.pairs[0] = lastPair;
      for (let i = 0; ; ) {
        const left = 2 * i + 1;
        const right = left + 1;
        let best = i;
        if (left < n && this.before(left, best)) best = left;
        if (right < n && this.before(right, best)) best = right;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }
}

/**
 * Learns merges from `wordCounts` (pre-tokenized words and how often each occurs).
 * Returns the byte-level token texts and the merges in rank order.
 */
export function learnMerges(wordCounts: ReadonlyMap<string, number>, options: LearnMergesOptions): LearnedMerges {
  const minFrequency = options.minFrequency ?? 2;
  const forbidden = options.forbidden ?? new Set<string>();
  const progressEvery = options.progressEvery ?? 500;
  const tokens: string[] = [...BYTE_TO_CHAR];
  const tokenIds = new Map<string, number>(tokens.map((text, id) => [text, id]));
  const merges: [number, number][] = [];

  // Words as byte sequences, with their lengths (shrinking as merges apply) and frequencies.
  const encoder = new TextEncoder();
  const words: Int32Array[] = [];
  const lengths: number[] = [];
  const freqs: number[] = [];
  for (const [word, count] of wordCounts) {
    const bytes = encoder.encode(word);
    if (bytes.length < 2 || count <= 0) continue; // a single byte has no pair to merge
    words.push(Int32Array.from(bytes));
    lengths.push(bytes.length);
    freqs.push(count);
  }

  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, number[]>();
  const noteWord = (pair: number, w: number): void => {
    const list = pairWords.get(pair);
    if (!list) pairWords.set(pair, [w]);
    else if (list[list.length - 1] !== w) list.push(w);
  };
  words.forEach((symbols, w) => {
    const f = freqs[w] as number;
    for (let i = 0; i + 1 < symbols.length; i++) {
      const pair = (symbols[i] as number) * PAIR_BASE + (symbols[i + 1] as number);
      pairCount.set(pair, (pairCount.get(pair) ?? 0) + f);
      noteWord(pair, w);
    }
  });
  const heap = new PairHeap();
  for (const [pair, count] of pairCount) heap.push(count, pair);

  let newTokens = 0;
  while (newTokens < options.newTokens && heap.size > 0) {
    const [count, pair] = heap.pop();
    if (pairCount.get(pair) !== count) continue; // stale entry
    if (count < minFrequency) break;
    const left = Math.floor(pair / PAIR_BASE);
    const right = pair - left * PAIR_BASE;
    const text = (tokens[left] as string) + (tokens[right] as string);
    pairCount.delete(pair);
    if (forbidden.has(text)) continue; // never learn a special token's text as an ordinary token
    let merged = tokenIds.get(text);
    if (merged === undefined) {
      merged = tokens.length;
      if (merged >= MAX_VOCAB) break;
      tokens.push(text);
      tokenIds.set(text, merged);
      newTokens++;
    }
    merges.push([left, right]);

    // Rewrite every word holding the pair; collect the count changes of the neighbouring pairs.
    const delta = new Map<number, number>();
    const bump = (p: number, by: number): void => {
      delta.set(p, (delta.get(p) ?? 0) + by);
    };
    for (const w of pairWords.get(pair) ?? []) {
      const symbols = words[w] as Int32Array;
      const f = freqs[w] as number;
      let n = lengths[w] as number;
      for (let i = 0; i + 1 < n; i++) {
        if (symbols[i] !== left || symbols[i + 1] !== right) continue;
        if (i > 0) {
          const prev = symbols[i - 1] as number;
          bump(prev * PAIR_BASE + left, -f);
          bump(prev * PAIR_BASE + merged, f);
          noteWord(prev * PAIR_BASE + merged, w);
        }
        symbols[i] = merged;
        symbols.copyWithin(i + 1, i + 2, n);
        n--;
        if (i + 1 < n) {
          const next = symbols[i + 1] as number;
          bump(right * PAIR_BASE + next, -f);
          bump(merged * PAIR_BASE + next, f);
          noteWord(merged * PAIR_BASE + next, w);
        }
      }
      lengths[w] = n;
    }
    pairWords.delete(pair);
    for (const [p, by] of delta) {
      if (by === 0 || p === pair) continue;
      const updated = (pairCount.get(p) ?? 0) + by;
      if (updated > 0) {
        pairCount.set(p, updated);
        heap.push(updated, p);
      } else {
        pairCount.delete(p);
      }
    }
    if (options.onProgress && merges.length % progressEvery === 0) {
      options.onProgress(newTokens, options.newTokens);
    }
  }
  return { tokens, merges };
}
