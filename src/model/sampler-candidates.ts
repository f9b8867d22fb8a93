// The candidate list a sampler chain narrows down: llama.cpp's `llama_token_data_array` as two parallel
// typed arrays (token ids and their logits), reused from token to token so sampling allocates nothing.
//
// Sorting is partial on purpose. With a 128k vocabulary and top-k = 40, sorting everything would cost
// ~2 million comparisons per token; selecting the top k with a small heap costs one comparison for most
// tokens. `sortTop(m)` puts the m best candidates first, in descending order, and keeps every other
// candidate in the array behind them (top-p may need to look further). When m is large it sorts
// everything at once with the engine's native numeric sort over packed (logit, id) keys instead.

/** Above this many wanted candidates a full native sort beats the heap. */
const FULL_SORT_THRESHOLD = 2048;

export class Candidates {
  /** Token id of each candidate; valid in [0, size). */
  ids = new Int32Array(0);
  /** Logit of each candidate (float32, as in llama.cpp). */
  logits = new Float32Array(0);
  /** Scratch for probabilities, one per candidate. */
  probs = new Float32Array(0);
  /** The bits of `logits` (same buffer), and sort keys, for the full sort. */
  #logitBits = new Uint32Array(0);
  #keys = new Float64Array(0);
  /** Number of live candidates. */
  size = 0;
  /** Whether [0, size) is in descending logit order. */
  sorted = false;

  /** Starts a new token: every vocabulary entry is a candidate, in vocabulary order. */
  fill(logits: Float32Array): void {
    const n = logits.length;
    if (this.ids.length !== n) {
      this.ids = new Int32Array(n);
      this.logits = new Float32Array(n);
      this.probs = new Float32Array(n);
      this.#logitBits = new Uint32Array(this.logits.buffer);
      this.#keys = new Float64Array(n);
    }
    for (let i = 0; i < n; i++) this.ids[i] = i;
    this.logits.set(logits);
    this.size = n;
    this.sorted = false;
  }

  /** Index of the highest logit (the first one on ties). */
  argmax(): number {
    const logits = this.logits;
    let best = 0;
    let bestLogit = logits[0]!;
    for (let i = 1; i < this.size; i++) {
      const l = logits[i]!;
      if (l > bestLogit) {
        best = i;
        bestLogit = l;
      }
    }
    return best;
  }

  /** The highest logit among the candidates. */
  maxLogit(): number {
    return this.sorted ? this.logits[0]! : this.logits[this.argmax()]!;
  }

  /**
   * Moves the `m` highest-logit candidates to [0, m) in descending order; the others stay behind them.
   * Sets `sorted` when that covers every candidate.
   */
  sortTop(m: number): void {
    const count = Math.min(m, this.size);
    if (count <= 0 || this.sorted) return;
    if (count > FULL_SORT_THRESHOLD) {
      this.#sortAll();
      return;
    }
    // Min-heap of the best `count` seen so far at [0, count): the root is the weakest of them.
    for (let i = (count >> 1) - 1; i >= 0; i--) this.#siftDown(i, count);
    for (let j = count; j < this.size; j++) {
      if (this.logits[j]! > this.logits[0]!) {
        this.#swap(0, j); // the evicted candidate stays in the array at j
        this.#siftDown(0, count);
      }
    }
    // Heapsort the heap region: repeatedly move the weakest to the end, giving descending order.
    for (let end = count - 1; end > 0; end--) {
      this.#swap(0, end);
      this.#siftDown(0, end);
    }
    if (count === this.size) this.sorted = true;
  }

  /** Keeps candidate i only when keep(i) holds, preserving order; returns the new size. */
  compact(keep: (i: number) => boolean): number {
    let out = 0;
    for (let i = 0; i < this.size; i++) {
      if (keep(i)) {
        this.ids[out] = this.ids[i]!;
        this.logits[out] = this.logits[i]!;
        out++;
      }
    }
    this.size = out;
    return out;
  }

  /**
   * Sorts every candidate, descending, lower id first on ties. Each candidate becomes one float64 key:
   * the float32 logit's bits mapped to an unsigned integer that orders like the float, times 2^idBits,
   * plus the id flipped (so larger keys mean lower ids). 32 + idBits <= 53 bits, so keys are exact.
   */
  #sortAll(): void {
    const size = this.size;
    const idBits = Math.max(1, Math.ceil(Math.log2(this.ids.length)));
    const scale = 2 ** idBits;
    const maxId = scale - 1;
    const bits = this.#logitBits;
    const keys = this.#keys.subarray(0, size);
    for (let i = 0; i < size; i++) {
      const u = bits[i]!;
      const ordered = u & 0x80000000 ? ~u >>> 0 : (u | 0x80000000) >>> 0;
      keys[i] = ordered * scale + (maxId - this.ids[i]!);
    }
    keys.sort(); // native ascending numeric sort
    for (let i = 0; i < size; i++) {
      const key = keys[size - 1 - i]!;
      const ordered = Math.floor(key / scale);
      bits[i] = ordered & 0x80000000 ? (ordered ^ 0x80000000) >>> 0 : ~ordered >>> 0;
      this.ids[i] = maxId - (key - ordered * scale);
    }
    this.sorted = true;
  }

  #siftDown(start: number, heapSize: number): void {
    const logits = this.logits;
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heapSize) return;
      const right = left + 1;
      let smallest = left;
      if (right < heapSize && logits[right]! < logits[left]!) smallest = right;
      if (logits[smallest]! >= logits[i]!) return;
      this.#swap(i, smallest);
      i = smallest;
    }
  }

  #swap(a: number, b: number): void {
    const ids = this.ids;
    const logits = this.logits;
    const id = ids[a]!;
    ids[a] = ids[b]!;
    ids[b] = id;
    const l = logits[a]!;
    logits[a] = logits[b]!;
    logits[b] = l;
  }
}
