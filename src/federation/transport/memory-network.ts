/**
 * An in-memory network for the data plane: listeners and connections between addresses inside one process.
 * The bytes are the real protocol (frames, HELLO, requests, notifications, ERRORs), spoken by the real Peer
 * class over in-memory duplex streams instead of TCP, so tests and simulations can run tens or thousands of
 * nodes in one process. A link may be given a latency and a bandwidth, and cut.
 *
 *   const net = new MemoryNetwork();
 *   const server = net.listen('w1:7000', { session: 'w1', methods: service.methods() });
 *   const peer = await net.connect('w1:7000', { session: 'p1' });
 *   await peer.request('load_span', {...});
 *   net.cut('w1:7000'); // its links reset: requests in flight reject with PeerClosedError on both ends
 *
 * Like TCP: bytes arrive in order, once, or the link resets; a reader that stops reading (Peer.pause at its
 * in-flight cap) holds the writer back through the stream's 'drain'; end() on one side is an EOF on the
 * other. Unlike TCP: no Nagle, no segment boundaries (a write arrives whole), and a shaped link buffers
 * without limit on the receiving side (the latency queue is not a socket buffer).
 */
import { Duplex } from 'node:stream';
import { ConnectError, connectHint } from './errors.ts';
import { Peer, type PeerOptions } from './peer.ts';
import { DEFAULT_CONNECT_TIMEOUT_MS, type TransportServer, awaitReady } from './rpc.ts';

/** The shape of a link, each direction alike (an unshaped link delivers at once, in order). */
export interface LinkShape {
  /** One-way delay added to every write, in ms. */
  latencyMs?: number;
  /** Serialisation rate: a write of n bytes holds the link for n / bytesPerSecond seconds. */
  bytesPerSecond?: number;
}

/** What both ends of a connection pass to their Peer (anything PeerOptions grows reaches it). */
type PeerSettings = Omit<PeerOptions, 'role' | 'remote' | 'initial'>;

export interface MemoryListenOptions extends PeerSettings {
  /** The shape of every link to this address unless the dialer names one (default: the network's). */
  link?: LinkShape;
}

export interface MemoryConnectOptions extends Omit<PeerSettings, 'handshakeTimeoutMs'> {
  /** Covers the HELLO exchange (default DEFAULT_CONNECT_TIMEOUT_MS, as rpc.connect). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** The dialer's address as the server's Peer.remote shows it (default 'memory-client:<n>'). */
  from?: string;
  /** The shape of this link (default: the listener's, else the network's). */
  link?: LinkShape;
}

export interface MemoryServer extends TransportServer {
  readonly addr: string;
}

interface Chunk {
  /** performance.now() at which it reaches the reader (0: as soon as possible). */
  at: number;
  /** null: end of stream. */
  data: Buffer | null;
  /** The writer's callback, on an unshaped link called once the reader took the bytes. */
  written?: () => void;
}

/** One direction of a link: bytes written at one end, queued for their arrival time, pushed into the other. */
class Wire {
  private readonly queue: Chunk[] = [];
  private busyUntil = 0;
  private timer: NodeJS.Timeout | undefined;
  private scheduled = false;
  /** The reader's buffer is full: wait for its _read(). */
  private blocked = false;
  private ended = false;

  constructor(private readonly target: MemorySocket, private readonly shape: LinkShape) {}

  private get shaped(): boolean {
    return (this.shape.latencyMs ?? 0) > 0 || this.shape.bytesPerSecond !== undefined;
  }

  send(data: Buffer, callback: () => void): void {
    if (this.ended) return callback();
    if (!this.shaped) {
      this.queue.push({ at: 0, data, written: callback });
      return this.schedule();
    }
    const now = performance.now();
    const serialise = this.shape.bytesPerSecond === undefined ? 0 : (data.length * 1000) / this.shape.bytesPerSecond;
    const departs = Math.max(now, this.busyUntil) + serialise;
    this.busyUntil = departs;
    this.queue.push({ at: departs + (this.shape.latencyMs ?? 0), data });
    // The writer may go on once the bytes have left, as a socket buffer drains onto the wire.
    if (departs > now) setTimeout(callback, departs - now);
    else callback();
    this.schedule();
  }

  /** EOF after everything already written. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    const last = this.queue.at(-1)?.at ?? 0;
    const at = this.shaped ? Math.max(last, performance.now() + (this.shape.latencyMs ?? 0)) : 0;
    this.queue.push({ at, data: null });
    this.schedule();
  }

  /** The reader wants more. */
  resume(): void {
    if (!this.blocked) return;
    this.blocked = false;
    this.schedule();
  }

  /** Drop what is in flight (a reset); writers waiting on it are released. */
  drop(): void {
    this.ended = true;
    clearTimeout(this.timer);
    for (const chunk of this.queue.splice(0)) chunk.written?.();
  }

  private schedule(): void {
    if (this.scheduled || this.blocked || this.queue.length === 0) return;
    const wait = this.queue[0]!.at - performance.now();
    this.scheduled = true;
    if (wait <= 0) queueMicrotask(() => this.pump());
    else this.timer = setTimeout(() => this.pump(), wait);
  }

  private pump(): void {
    this.scheduled = false;
    const now = performance.now();
    while (this.queue.length > 0 && this.queue[0]!.at <= now && !this.blocked) {
      const chunk = this.queue.shift()!;
      const wanted = this.target.destroyed ? true : this.target.push(chunk.data);
      chunk.written?.();
      if (!wanted) this.blocked = true;
    }
    this.schedule();
  }
}

let linkCounter = 0;

/** One end of an in-memory link: what it writes the other end reads. */
export class MemorySocket extends Duplex {
  private outgoing!: Wire;
  private incoming!: Wire;
  private other!: MemorySocket;

  /** Two connected ends; `shape` applies to both directions. */
  static pair(shape: LinkShape = {}): [MemorySocket, MemorySocket] {
    const a = new MemorySocket();
    const b = new MemorySocket();
    a.other = b;
    b.other = a;
    a.outgoing = b.incoming = new Wire(b, shape);
    b.outgoing = a.incoming = new Wire(a, shape);
    return [a, b];
  }

  private constructor() {
    super({ allowHalfOpen: true });
  }

  /** Reset the link, as a pulled cable or a killed process would: both ends fail with ECONNRESET. */
  reset(reason = 'the link was cut'): void {
    this.destroy(Object.assign(new Error(`connection reset: ${reason}`), { code: 'ECONNRESET' }));
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.outgoing.send(chunk, () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.outgoing.end();
    callback();
  }

  override _read(): void {
    this.incoming.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.incoming.drop();
    if (error !== null) {
      // A reset: what was in flight is lost and the other end fails too.
      this.outgoing.drop();
      if (!this.other.destroyed) this.other.destroy(Object.assign(new Error(`connection reset by peer: ${error.message}`), { code: 'ECONNRESET' }));
    } else {
      // A close: the other end reads what was already sent, then EOF (a FIN).
      this.outgoing.end();
    }
    callback(error);
  }
}

/** A set of in-memory addresses; connections to one that nobody listens on are refused. */
export class MemoryNetwork {
  private readonly servers = new Map<string, MemoryServer & { link: LinkShape | undefined; accept(socket: MemorySocket, remote: string): void }>();
  /** Open links by the address dialed: [dialer's end, listener's end]. */
  private readonly open = new Map<string, Set<[MemorySocket, MemorySocket]>>();

  constructor(private readonly defaults: { link?: LinkShape } = {}) {}

  /** Serve `addr` (any string; 'host:port' reads best in logs). Throws if something already listens there. */
  listen(addr: string, options: MemoryListenOptions): MemoryServer {
    if (this.servers.has(addr)) {
      throw new ConnectError(addr, 'EADDRINUSE', 'this in-memory address already has a listener', 'close the other server first, or pick another address');
    }
    const { link, ...settings } = options;
    const all = new Set<Peer>();
    const ready = new Set<Peer>();
    let closing = false;
    const adopt = (socket: Duplex, info: { remote: string; initial?: Buffer }): Peer => {
      const peer = new Peer(socket, { ...settings, role: 'server', remote: info.remote, ...(info.initial === undefined ? {} : { initial: info.initial }) });
      all.add(peer);
      peer.once('close', () => {
        all.delete(peer);
        ready.delete(peer);
      });
      peer.ready.then(
        () => {
          if (!peer.closed) ready.add(peer);
        },
        (error: unknown) => settings.logger?.debug('transport_handshake_failed', { remote: info.remote, error }),
      );
      if (closing) peer.close();
      return peer;
    };
    const colon = addr.lastIndexOf(':');
    const server = {
      addr,
      host: colon < 0 ? addr : addr.slice(0, colon),
      port: colon < 0 ? 0 : Number(addr.slice(colon + 1)) || 0,
      link,
      peers: () => [...ready].filter((peer) => !peer.closed),
      peerBySession: (session: string) => [...ready].reverse().find((peer) => peer.session === session && !peer.closed),
      adopt,
      accept: (socket: MemorySocket, remote: string) => void adopt(socket, { remote }),
      close: async () => {
        closing = true;
        if (this.servers.get(addr) === server) this.servers.delete(addr);
        for (const peer of all) peer.close();
      },
    };
    this.servers.set(addr, server);
    return server;
  }

  /** Open a connection to `addr` and exchange HELLO, as rpc.connect does over TCP. */
  async connect(addr: string, options: MemoryConnectOptions): Promise<Peer> {
    const server = this.servers.get(addr);
    if (server === undefined) throw new ConnectError(addr, 'ECONNREFUSED', 'nothing listens on this in-memory address', connectHint('ECONNREFUSED'));
    const { timeoutMs = DEFAULT_CONNECT_TIMEOUT_MS, signal, from, link, ...settings } = options;
    const [near, far] = MemorySocket.pair(link ?? server.link ?? this.defaults.link ?? {});
    this.track(addr, near, far);
    server.accept(far, from ?? `memory-client:${++linkCounter}`);
    const peer = new Peer(near, { ...settings, role: 'client', remote: addr, handshakeTimeoutMs: timeoutMs });
    await awaitReady(peer, addr, timeoutMs, signal);
    return peer;
  }

  /** Reset every open link to `addr` (both ends fail: in-flight requests reject). Returns how many. */
  cut(addr: string): number {
    const links = [...(this.open.get(addr) ?? [])];
    for (const [near] of links) near.reset(`the link to ${addr} was cut`);
    return links.length;
  }

  /** How many links are open to each address. */
  links(): Map<string, number> {
    return new Map([...this.open].map(([addr, set]) => [addr, set.size]));
  }

  /** Close every listener and reset every link. */
  async close(): Promise<void> {
    for (const server of [...this.servers.values()]) await server.close();
    for (const addr of [...this.open.keys()]) this.cut(addr);
  }

  /** A link counts as open until both of its ends have closed. */
  private track(addr: string, near: MemorySocket, far: MemorySocket): void {
    const set = this.open.get(addr) ?? new Set();
    this.open.set(addr, set);
    const link: [MemorySocket, MemorySocket] = [near, far];
    set.add(link);
    let closed = 0;
    const onClose = () => {
      if (++closed < 2) return;
      set.delete(link);
      if (set.size === 0 && this.open.get(addr) === set) this.open.delete(addr);
    };
    near.once('close', onClose);
    far.once('close', onClose);
  }
}
