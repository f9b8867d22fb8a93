/**
 * Admission control for generation: at most `maxConcurrent` requests generate at once (each holds a
 * sequence, i.e. a KV cache, on every node of the pipeline); up to `maxQueued` more wait in arrival order;
 * beyond that a request is refused at once with 429 and a Retry-After, instead of piling up.
 * A waiting request whose client goes away (its signal aborts) leaves the queue. close(reason) stops
 * admitting for good (the server is shutting down): the waiting requests and every later one fail with the
 * reason; the generations holding a slot go on.
 */
import { ApiError } from './errors.ts';

/** Returned by acquire; call it once when the generation is over (later calls do nothing). */
export type Release = () => void;

interface Waiter {
  grant: (release: Release) => void;
  refuse: (reason: unknown) => void;
}

export class ConcurrencyLimiter {
  readonly maxConcurrent: number;
  readonly maxQueued: number;
  #active = 0;
  readonly #waiting: Waiter[] = [];
  #closed: { reason: unknown } | undefined;

  constructor(maxConcurrent: number, maxQueued: number) {
    if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1) {
      throw new RangeError(`maxConcurrent must be an integer >= 1, got ${maxConcurrent}`);
    }
    if (!Number.isInteger(maxQueued) || maxQueued < 0) throw new RangeError(`maxQueued must be an integer >= 0, got ${maxQueued}`);
    this.maxConcurrent = maxConcurrent;
    this.maxQueued = maxQueued;
  }

  /** Requests generating now. */
  get active(): number {
    return this.#active;
  }

  /** Requests waiting for a slot. */
  get queued(): number {
    return this.#waiting.length;
  }

  /**
   * Waits for a slot. Throws ApiError 429 when the queue is full, or the signal's reason when it aborts
   * while waiting.
   */
  acquire(signal?: AbortSignal): Promise<Release> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#closed !== undefined) return Promise.reject(this.#closed.reason);
    if (this.#active < this.maxConcurrent) {
      this.#active++;
      return Promise.resolve(this.#releaser());
    }
    if (this.#waiting.length >= this.maxQueued) {
      return Promise.reject(
        new ApiError(429, `the server is busy: ${this.#active} requests are generating and ${this.#waiting.length} are waiting`, {
          code: 'rate_limit_exceeded',
          hint: 'retry in a moment (see Retry-After), or add nodes to the federation',
          headers: { 'retry-after': '1' },
        }),
      );
    }
    return new Promise<Release>((resolve, reject) => {
      const onAbort = () => {
        const at = this.#waiting.indexOf(waiter);
        if (at >= 0) this.#waiting.splice(at, 1);
        reject(signal?.reason);
      };
      const waiter: Waiter = {
        grant: (release) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(release);
        },
        refuse: (reason) => {
          signal?.removeEventListener('abort', onAbort);
          reject(reason);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(waiter);
    });
  }

  /** Admits nobody from now on: waiting requests and later ones fail with `reason` (idempotent). */
  close(reason: unknown): void {
    if (this.#closed !== undefined) return;
    this.#closed = { reason };
    for (const waiter of this.#waiting.splice(0)) waiter.refuse(reason);
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.#closed !== undefined;
  }

  #releaser(): Release {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      // The slot passes straight to the next waiter, so the active count does not change.
      if (next !== undefined) next.grant(this.#releaser());
      else this.#active--;
    };
  }
}
