/**
 * A FIFO of received byte chunks, read from the front without copying when a read falls inside one
 * chunk. FrameDecoder keeps every byte of a frame here until the whole frame has arrived, so memory
 * grows only with bytes actually received, never with sizes a peer merely declares.
 */

export class ByteQueue {
  private chunks: Buffer[] = [];
  /** Bytes of chunks[0] already consumed. */
  private offset = 0;
  private total = 0;

  /** Bytes held (received and not yet consumed). */
  get length(): number {
    return this.total;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** Byte at `index` from the front (index < length). */
  byteAt(index: number): number {
    let rest = index + this.offset;
    for (const chunk of this.chunks) {
      if (rest < chunk.length) return chunk[rest]!;
      rest -= chunk.length;
    }
    throw new RangeError(`byteAt(${index}) past the ${this.total} bytes held`);
  }

  /**
   * The first `n` bytes (n <= length) without consuming them: a view into the first chunk when it
   * holds them all, else a copy of exactly n bytes.
   */
  peek(n: number): Buffer {
    if (n > this.total) throw new RangeError(`peek(${n}) past the ${this.total} bytes held`);
    const first = this.chunks[0];
    if (first === undefined || n === 0) return Buffer.alloc(0);
    if (first.length - this.offset >= n) return first.subarray(this.offset, this.offset + n);
    const out = Buffer.allocUnsafe(n);
    let written = 0;
    let start = this.offset;
    for (const chunk of this.chunks) {
      const piece = Math.min(chunk.length - start, n - written);
      chunk.copy(out, written, start, start + piece);
      written += piece;
      start = 0;
      if (written === n) break;
    }
    return out;
  }

  /** Remove and return the first `n` bytes (a view when possible, else an exact-size copy). */
  take(n: number): Buffer {
    const out = this.peek(n);
    this.skip(n);
    return out;
  }

  /** Drop up to `n` bytes from the front; returns how many were dropped. */
  skip(n: number): number {
    let rest = Math.min(n, this.total);
    const dropped = rest;
    let whole = 0; // chunks consumed entirely (removed with one splice, not shift() per chunk)
    while (rest > 0) {
      const chunk = this.chunks[whole]!;
      const available = chunk.length - this.offset;
      if (available > rest) {
        this.offset += rest;
        rest = 0;
      } else {
        whole += 1;
        this.offset = 0;
        rest -= available;
      }
    }
    if (whole > 0) this.chunks.splice(0, whole);
    this.total -= dropped;
    return dropped;
  }

  /** Remove and return everything held (one buffer). */
  drain(): Buffer {
    return this.take(this.total);
  }
}
