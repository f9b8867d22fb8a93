/**
 * One direction of an emulated WAN link (link-emulator.ts holds the TCP side): a token bucket that makes
 * bytes wait for bandwidth, then a one-way delay with jitter before they reach the far socket.
 *
 *   departs = when the bucket has paid for the chunk's last byte (shared by every connection of the link:
 *             bandwidth belongs to the link, not to one connection)
 *   arrives = departs + latency + jitter, never before the previous chunk of this connection (TCP keeps
 *             bytes in order, so jitter delays but never reorders)
 *
 * A stalled wire keeps its bytes until resumed; a wire holding more than `maxQueuedBytes` asks its source
 * to pause (the emulated window), as a real path does once its buffers fill.
 */

/** The shape of a link, each direction alike. Every field may change while connections are open. */
export interface WanShape {
  /** One-way delay added to every chunk, in ms (RTT = 2 x latencyMs). */
  latencyMs?: number;
  /** Each chunk's delay is latencyMs + uniform(-jitterMs, +jitterMs), never below 0. */
  jitterMs?: number;
  /** Bandwidth cap per direction, bytes per second (1 Mbit/s = 125_000); absent: unlimited. */
  bytesPerSecond?: number;
  /** Bytes the bucket may send at once after an idle spell (default WIRE_DEFAULTS.burstBytes). */
  burstBytes?: number;
}

/** Numbers of the emulator, one comment each. */
export const WIRE_DEFAULTS = {
  /** Token bucket depth: about one TCP segment burst, so an idle link does not send a large frame for free. */
  burstBytes: 16 * 1024,
  /** Bytes held in one direction of one connection before the source is paused (resumed below half). */
  maxQueuedBytes: 4 * 1024 * 1024,
} as const;

/** A bandwidth budget shared by the connections of one direction of a link. */
export class TokenBucket {
  private tokens: number;
  /** When the tokens were last counted (undefined: never; the bucket starts full). */
  private last: number | undefined;
  /** When the previous reservation's last byte departed (the link is a queue: one chunk after another). */
  private busyUntil = 0;

  constructor(private readonly shape: () => WanShape) {
    this.tokens = shape().burstBytes ?? WIRE_DEFAULTS.burstBytes;
  }

  /** Reserve `n` bytes now; returns the time (performance.now() scale) at which the last of them departs. */
  reserve(n: number, now = performance.now()): number {
    const { bytesPerSecond: rate, burstBytes = WIRE_DEFAULTS.burstBytes } = this.shape();
    if (rate === undefined || rate <= 0) return now;
    const start = Math.max(now, this.busyUntil);
    this.tokens = Math.min(burstBytes, this.tokens + (Math.max(0, start - (this.last ?? start)) / 1000) * rate);
    this.last = start;
    this.tokens -= n;
    let departs = start;
    if (this.tokens < 0) {
      departs += (-this.tokens / rate) * 1000;
      this.tokens = 0;
      this.last = departs;
    }
    this.busyUntil = departs;
    return departs;
  }
}

interface Chunk {
  at: number;
  /** null: the source ended (half-close), delivered in order after the bytes before it. */
  data: Buffer | null;
}

export interface WireSink {
  deliver(data: Buffer): void;
  end(): void;
  /** Too much queued (true) or room again (false): pause or resume the source. */
  pressure(full: boolean): void;
}

export class Wire {
  private readonly queue: Chunk[] = [];
  private queued = 0;
  private lastAt = 0;
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  private stalled = false;
  private full = false;
  private closed = false;
  /** Bytes delivered to the far side so far. */
  delivered = 0;

  constructor(
    private readonly shape: () => WanShape,
    private readonly bucket: TokenBucket,
    private readonly random: () => number,
    private readonly sink: WireSink,
    private readonly maxQueuedBytes: number = WIRE_DEFAULTS.maxQueuedBytes,
  ) {}

  push(data: Buffer): void {
    if (this.closed) return;
    const departs = this.bucket.reserve(data.length);
    this.enqueue(departs, data);
    this.queued += data.length;
    if (!this.full && this.queued > this.maxQueuedBytes) {
      this.full = true;
      this.sink.pressure(true);
    }
  }

  end(): void {
    if (!this.closed) this.enqueue(performance.now(), null);
  }

  stall(): void {
    this.stalled = true;
    this.cancel();
  }

  resume(): void {
    this.stalled = false;
    this.schedule();
  }

  /** Forget everything queued (the connection was dropped). */
  close(): void {
    this.closed = true;
    this.cancel();
    this.queue.length = 0;
  }

  get queuedBytes(): number {
    return this.queued;
  }

  private cancel(): void {
    if (this.timer === undefined) return;
    if ('refresh' in this.timer) clearTimeout(this.timer);
    else clearImmediate(this.timer);
    this.timer = undefined;
  }

  private enqueue(departs: number, data: Buffer | null): void {
    const { latencyMs = 0, jitterMs = 0 } = this.shape();
    const jitter = jitterMs > 0 ? (this.random() * 2 - 1) * jitterMs : 0;
    const at = Math.max(this.lastAt, departs + Math.max(0, latencyMs + jitter));
    this.lastAt = at;
    this.queue.push({ at, data });
    this.schedule();
  }

  private schedule(): void {
    if (this.stalled || this.closed || this.timer !== undefined || this.queue.length === 0) return;
    const wait = this.queue[0]!.at - performance.now();
    const fire = () => {
      this.timer = undefined;
      this.flush();
    };
    // setTimeout never fires in under 1 ms: bytes already due go on the next turn of the event loop instead,
    // so an unshaped link adds microseconds, not a millisecond per chunk.
    this.timer = wait < 1 ? setImmediate(fire) : setTimeout(fire, wait);
  }

  private flush(): void {
    const now = performance.now();
    // setTimeout may fire up to a millisecond early by performance.now()'s clock: deliver what is due by then.
    while (!this.stalled && !this.closed && this.queue.length > 0 && this.queue[0]!.at <= now + 1) {
      const chunk = this.queue.shift()!;
      if (chunk.data === null) {
        this.sink.end();
        continue;
      }
      this.queued -= chunk.data.length;
      this.delivered += chunk.data.length;
      this.sink.deliver(chunk.data);
    }
    if (this.full && this.queued <= this.maxQueuedBytes / 2) {
      this.full = false;
      this.sink.pressure(false);
    }
    this.schedule();
  }
}
