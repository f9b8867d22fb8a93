/**
 * A userspace WAN link emulator: a TCP proxy that listens on one address and forwards to another, adding
 * one-way latency with jitter and a bandwidth cap in each direction, and that can stall or drop its
 * connections. The kernel's netem is not available on CI machines, so tests, benchmarks and bets emulate a
 * WAN with this. Everything can change while connections are open:
 *
 *   const link = await startLinkEmulator({ target: '127.0.0.1:50052', shape: { latencyMs: 25, bytesPerSecond: 12_500_000 } });
 *   // advertise link.addr instead of the real port (a worker's --wan-addr), then:
 *   link.setShape({ latencyMs: 50 });  // applies to bytes sent from now on
 *   link.stall();                      // bytes are held (connections stay open) until link.resume()
 *   link.drop();                       // every connection closes on both sides; new ones are accepted
 *   link.down();                       // drop, and refuse new connections until link.up()
 *   await link.close();
 *
 * Bandwidth belongs to the link (one token bucket per direction, shared by its connections); latency and
 * ordering to each connection. The shaping itself lives in link-emulator-wire.ts.
 */
import { type Server, type Socket, connect, createServer } from 'node:net';
import { mulberry32 } from '../../util/random.ts';
import { parseHostPort } from './address.ts';
import { TokenBucket, WIRE_DEFAULTS, type WanShape, Wire } from './link-emulator-wire.ts';

export type { WanShape } from './link-emulator-wire.ts';

export interface LinkEmulatorOptions {
  /** Where connections are forwarded: 'host:port'. May change later with setTarget(). */
  target: string;
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** Port to listen on (default 0: the OS picks one; see `port` and `addr`). */
  port?: number;
  shape?: WanShape;
  /** Seed of the jitter (default 1): the same seed gives the same delays for the same chunks. */
  seed?: number;
  /** Bytes held per connection direction before the sender is paused (default WIRE_DEFAULTS.maxQueuedBytes). */
  maxQueuedBytes?: number;
}

export type LinkState = 'up' | 'stalled' | 'down';

export interface LinkStats {
  connections: number;
  /** Bytes delivered client -> target and target -> client since start. */
  forwardBytes: number;
  backwardBytes: number;
  /** Connections refused while down, and closed by drop() or down(). */
  refused: number;
  dropped: number;
}

/** One proxied connection: the accepted socket, the upstream socket and a wire each way. */
class Connection {
  readonly forward: Wire;
  readonly backward: Wire;
  private done = false;

  constructor(
    private readonly client: Socket,
    private readonly upstream: Socket,
    link: LinkEmulator,
    private readonly onClose: (c: Connection) => void,
  ) {
    const shape = () => link.shape;
    this.forward = new Wire(shape, link.buckets.forward, link.random, {
      deliver: (d) => upstream.write(d),
      end: () => upstream.end(),
      pressure: (full) => (full ? client.pause() : client.resume()),
    }, link.maxQueuedBytes);
    this.backward = new Wire(shape, link.buckets.backward, link.random, {
      deliver: (d) => client.write(d),
      end: () => client.end(),
      pressure: (full) => (full ? upstream.pause() : upstream.resume()),
    }, link.maxQueuedBytes);
    client.on('data', (d: Buffer) => this.forward.push(d));
    upstream.on('data', (d: Buffer) => this.backward.push(d));
    client.on('end', () => this.forward.end());
    upstream.on('end', () => this.backward.end());
    // A reset or an error on either side ends both at once (what a peer sees when a host dies).
    for (const s of [client, upstream]) {
      s.on('error', () => this.destroy());
      s.on('close', () => {
        if (client.destroyed && upstream.destroyed) this.destroy();
        else if (s.destroyed && (s.errored || !s.readableEnded)) this.destroy();
      });
    }
    if (link.state === 'stalled') this.stall();
    client.resume();
  }

  stall(): void {
    this.forward.stall();
    this.backward.stall();
  }

  resume(): void {
    this.forward.resume();
    this.backward.resume();
  }

  destroy(): void {
    if (this.done) return;
    this.done = true;
    this.forward.close();
    this.backward.close();
    this.client.destroy();
    this.upstream.destroy();
    this.onClose(this);
  }
}

export class LinkEmulator {
  shape: WanShape;
  state: LinkState = 'up';
  readonly random: () => number;
  readonly maxQueuedBytes: number;
  readonly buckets: { forward: TokenBucket; backward: TokenBucket };
  private targetAddr: string;
  private readonly connections = new Set<Connection>();
  private readonly counts = { refused: 0, dropped: 0, forwardBytes: 0, backwardBytes: 0 };

  constructor(
    private readonly server: Server,
    options: LinkEmulatorOptions,
  ) {
    parseHostPort(options.target);
    this.targetAddr = options.target;
    this.shape = { ...options.shape };
    this.random = mulberry32(options.seed ?? 1);
    this.maxQueuedBytes = options.maxQueuedBytes ?? WIRE_DEFAULTS.maxQueuedBytes;
    this.buckets = { forward: new TokenBucket(() => this.shape), backward: new TokenBucket(() => this.shape) };
    server.on('connection', (socket) => this.accept(socket));
  }

  /** The listening port. */
  get port(): number {
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('link emulator is not listening');
    return address.port;
  }

  /** 'host:port' to give to clients instead of the target's. */
  get addr(): string {
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('link emulator is not listening');
    return address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
  }

  get target(): string {
    return this.targetAddr;
  }

  /** Change where new connections go (open ones keep theirs). */
  setTarget(target: string): void {
    parseHostPort(target);
    this.targetAddr = target;
  }

  /** Merge `shape` into the current one; applies to bytes sent from now on. */
  setShape(shape: WanShape): void {
    this.shape = { ...this.shape, ...shape };
  }

  /** Hold every byte in flight and every new one (connections stay open) until resume(). */
  stall(): void {
    if (this.state === 'down') return;
    this.state = 'stalled';
    for (const c of this.connections) c.stall();
  }

  resume(): void {
    if (this.state !== 'stalled') return;
    this.state = 'up';
    for (const c of this.connections) c.resume();
  }

  /** Close every open connection on both sides (bytes in flight are lost); new connections are accepted. */
  drop(): void {
    for (const c of [...this.connections]) {
      this.counts.dropped++;
      c.destroy();
    }
  }

  /** Drop, and refuse new connections until up(): the link is cut. */
  down(): void {
    this.state = 'down';
    this.drop();
  }

  up(): void {
    if (this.state === 'down') this.state = 'up';
  }

  stats(): LinkStats {
    let forwardBytes = this.counts.forwardBytes;
    let backwardBytes = this.counts.backwardBytes;
    for (const c of this.connections) {
      forwardBytes += c.forward.delivered;
      backwardBytes += c.backward.delivered;
    }
    return { connections: this.connections.size, forwardBytes, backwardBytes, refused: this.counts.refused, dropped: this.counts.dropped };
  }

  async close(): Promise<void> {
    this.drop();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    client.on('error', () => client.destroy());
    if (this.state === 'down') {
      this.counts.refused++;
      client.destroy();
      return;
    }
    client.pause();
    const { host, port } = parseHostPort(this.targetAddr);
    const upstream = connect({ host, port });
    upstream.setNoDelay(true);
    client.setNoDelay(true);
    const fail = () => {
      client.destroy();
      upstream.destroy();
    };
    upstream.once('error', fail);
    upstream.once('connect', () => {
      upstream.off('error', fail);
      if (client.destroyed || this.state === 'down') return fail();
      const connection = new Connection(client, upstream, this, (c) => {
        this.counts.forwardBytes += c.forward.delivered;
        this.counts.backwardBytes += c.backward.delivered;
        this.connections.delete(c);
      });
      this.connections.add(connection);
    });
  }
}

/** Listen and forward; resolves once listening. */
export function startLinkEmulator(options: LinkEmulatorOptions): Promise<LinkEmulator> {
  const server = createServer();
  const link = new LinkEmulator(server, options);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve(link);
    });
  });
}
