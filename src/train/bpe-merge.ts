// Applying learned merges to one pre-tokenized word, as llama.cpp's llm_tokenizer_bpe_session does:
// the symbols form a linked list; every adjacent pair with a merge rank goes into a priority queue
// ordered by (rank, left position); popping the best pair merges it (if both symbols are still what
// they were when the pair was queued) and queues the two new pairs around the merged symbol.
// O(n log n) in the word length, so a 100 KB run of '=' is no problem.

/** A merge: its rank (lower merges first) and the id of the token it produces. */
export type MergeLookup = (left: number, right: number) => readonly [rank: number, merged: number] | undefined;

/** Queue of candidate merges, best first: lowest rank, then leftmost. Parallel arrays for speed. */
class BigramQueue {
  private readonly rank: number[] = [];
  private readonly left: number[] = [];
  private readonly right: number[] = [];
  private readonly leftId: number[] = [];
  private readonly rightId: number[] = [];

  get size(): number {
    return this.rank.length;
  }

  private before(i: number, j: number): boolean {
    const ri = this.rank[i] as number;
    const rj = this.rank[j] as number;
    return ri < rj || (ri === rj && (this.left[i] as number) < (this.left[j] as number));
  }

  private swap(i: number, j: number): void {
    for (const a of [this.rank, this.left, this.right, this.leftId, this.rightId]) {
      const t = a[i] as number;
      a[i] = a[j] as number;
      a[j] = t;
    }
  }

  push(rank: number, left: number, right: number, leftId: number, rightId: number): void {
    this.rank.push(rank);
    this.left.push(left);
    this.right.push(right);
    this.leftId.push(leftId);
    this.rightId.push(rightId);
    for (let i = this.rank.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  /** Removes the best entry; returns [left, right, leftId, rightId]. */
  pop(): [number, number, number, number] {
    const top: [number, number, number, number] = [
      this.left[0] as number, this.right[0] as number, this.leftId[0] as number, this.rightId[0] as number,
    ];
    const last = this.rank.length - 1;
    this.swap(0, last);
    for (const a of [this.rank, this.left, this.right, this.leftId, this.rightId]) a.pop();
    const n = last;
    for (let i = 0; ; ) {
      const l = 2 * i + 1;
      const r = l + 1;
      let best = i;
      if (l < n && this.before(l, best)) best = l;
      if (r < n && this.before(r, best)) best = r;
      if (best === i) break;
      this.swap(i, best);
      i = best;
    }
    return top;
  }
}

/** Merges `symbols` (initial token ids, one per byte) in place order; returns the final token ids. */
export function applyMerges(symbols: readonly number[], lookup: MergeLookup): number[] {
  const n = symbols.length;
  if (n < 2) return [...symbols];
  const id = [...symbols];
  const alive = new Uint8Array(n).fill(1);
  const prev = Int32Array.from({ length: n }, (_, i) => i - 1);
  const next = Int32Array.from({ length: n }, (_, i) => (i + 1 < n ? i + 1 : -1));
  const queue = new BigramQueue();
  const addBigram = (left: number, right: number): void => {
    if (left < 0 || right < 0) return;
    const hit = lookup(id[left] as number, id[right] as number);
    if (hit) queue.push(hit[0], left, right, id[left] as number, id[right] as number);
  };
  for (let i = 1; i < n; i++) addBigram(i - 1, i);

  while (queue.size > 0) {
    const [left, right, leftId, rightId] = queue.pop();
    // Skip a pair made stale by an earlier merge (either side gone or grown).
    if (!alive[left] || !alive[right] || id[left] !== leftId || id[right] !== rightId || next[left] !== right) continue;
    const hit = lookup(leftId, rightId);
    if (!hit) continue;
    id[left] = hit[1];
    alive[right] = 0;
    const after = next[right] as number;
    next[left] = after;
    if (after >= 0) prev[after] = left;
    addBigram(prev[left] as number, left);
    addBigram(left, after);
  }
  const out: number[] = [];
  for (let i = 0; i >= 0; i = next[i] as number) out.push(id[i] as number);
  return out;
}
