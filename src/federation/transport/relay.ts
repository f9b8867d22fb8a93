/**
 * Relay clients (RFC-0001), both sides of a relayed connection:
 *
 * - `relayRegister` runs on a hidden node (behind NAT): it keeps an outbound control connection to the
 *   relay, reconnecting with capped backoff, and on each `relay.dial` {ticket} opens a fresh outbound
 *   data connection, says RELAY_ACCEPT {ticket}, and serves it exactly like an incoming connection
 *   (through `server.adopt`, so the node's methods and peers() see no difference).
 * - `connectViaRelay` runs on the client: RELAY_OPEN {nodeId}, wait for RELAY_READY, then the usual
 *   HELLO end to end through the splice. The Peer's `remote` is 'relay://host:port/nodeId'.
 *
 * The relay server itself is in relay-server.ts (re-exported here).
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { silentLogger } from '../../util/log.ts';
import type { Logger } from '../../util/log.ts';
import { RelayDialSchema, RelayRegisteredSchema, TransportErrorSchema } from '../protocol.ts';
import { relayUrl } from './address.ts';
import { ConnectError, TimeoutError } from './errors.ts';
import { frameBytes, FrameDecoder, FrameError, FrameKind, kindName } from './frame.ts';
import type { Frame, Limits } from './frame.ts';
import { Peer } from './peer.ts';
import { type MethodSpec, method } from './methods.ts';
import { awaitReady, connect, DEFAULT_CONNECT_TIMEOUT_MS } from './rpc.ts';
import type { ConnectOptions, TransportServer } from './rpc.ts';
import { dial } from './socket.ts';
import type { ClientTls } from './socket.ts';

export { startRelayServer, tokenMatches } from './relay-server.ts';
export type { RelayServer, RelayServerOptions, RelayStats } from './relay-server.ts';

const EMPTY = new Uint8Array(0);

/** Send one handshake frame and read exactly one frame back; the bytes after it are returned too. */
async function handshake(socket: Socket, frame: Frame, what: string, timeoutMs: number): Promise<{ reply: Frame; rest: Buffer }> {
  socket.write(frameBytes(frame));
  return new Promise((resolve, reject) => {
    const decoder = new FrameDecoder({ payloadLimit: () => 0 });
    const finish = (error: Error | undefined, reply?: Frame) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      if (error !== undefined) {
        socket.destroy();
        reject(error);
      } else {
        resolve({ reply: reply!, rest: decoder.takeRemaining() });
      }
    };
    const onData = (chunk: Buffer) => {
      try {
        decoder.write(chunk);
        const reply = decoder.read(); // one frame only: what follows it belongs to the next protocol
        if (reply !== undefined) finish(undefined, reply);
      } catch (error) {
        if (!(error instanceof FrameError)) throw error;
        finish(new ConnectError(what, 'bad_frame', error.message, 'is this address a SharedLLM relay?'));
      }
    };
    const onClose = () => finish(new ConnectError(what, 'closed', 'the relay closed the connection during the handshake', 'check the relay address and its logs'));
    const timer = setTimeout(() => finish(new TimeoutError(`relay handshake with ${what}`, timeoutMs)), timeoutMs);
    socket.on('data', onData);
    socket.on('close', onClose);
  });
}

/** A relay's ERROR answer as a ConnectError naming what failed. */
function refused(what: string, reply: Frame): ConnectError {
  if (reply.kind !== FrameKind.ERROR) return new ConnectError(what, 'bad_frame', `unexpected ${kindName(reply.kind)} from the relay`, 'is this address a SharedLLM relay?');
  const parsed = TransportErrorSchema.safeParse(reply.header);
  const error = parsed.success ? parsed.data : { code: 'bad_frame', message: 'malformed ERROR header' };
  return new ConnectError(what, error.code, error.message, error.hint ?? 'see the relay logs');
}

export interface ViaRelayOptions extends ConnectOptions {
  /** The federation join token, when the relay requires one. */
  token?: string;
  /** Same as `token` (the name the coordinator's options use); `token` wins when both are set. */
  joinToken?: string;
}

/** Open a data connection to `nodeId` through the relay at 'host:port', and exchange HELLO with the node. */
export async function connectViaRelay(relayAddr: string, nodeId: string, opts: ViaRelayOptions): Promise<Peer> {
  const url = relayUrl(relayAddr, nodeId);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const deadline = performance.now() + timeoutMs;
  const remaining = () => Math.max(1, deadline - performance.now());
  const socket = await dial(relayAddr, {
    timeoutMs,
    ...(opts.tls === undefined ? {} : { tls: opts.tls }),
    ...(opts.signal === undefined ? {} : { signal: opts.signal }),
  });
  const token = opts.token ?? opts.joinToken;
  const header = token === undefined ? { nodeId } : { nodeId, token };
  const { reply, rest } = await handshake(socket, { kind: FrameKind.RELAY_OPEN, id: 0, method: '', header, payload: EMPTY }, url, remaining());
  if (reply.kind !== FrameKind.RELAY_READY) {
    socket.destroy();
    throw refused(url, reply);
  }
  const peer = new Peer(socket, {
    role: 'client',
    session: opts.session,
    methods: opts.methods ?? {},
    remote: url,
    initial: rest,
    handshakeTimeoutMs: remaining(),
    ...(opts.logger === undefined ? {} : { logger: opts.logger }),
    ...(opts.limits === undefined ? {} : { limits: opts.limits }),
    ...(opts.auth === undefined ? {} : { auth: opts.auth }),
  });
  await awaitReady(peer, url, timeoutMs, opts.signal);
  return peer;
}

export interface RelayRegisterOptions {
  /** The relay's 'host:port' (the addr of this node's relay candidate). */
  relayAddr: string;
  nodeId: string;
  /** The federation join token, when the relay requires one. */
  token?: string;
  /** Same as `token`; `token` wins when both are set. */
  joinToken?: string;
  tls?: ClientTls;
  /** Relayed connections are served by this server (same methods, listed in its peers()). */
  server?: TransportServer;
  /** Without `server`: the methods relayed connections serve, and the session answered in HELLO
   *  (default nodeId). */
  methods?: Record<string, MethodSpec>;
  session?: string;
  limits?: Partial<Limits>;
  logger?: Logger;
  /** Connect + register deadline (default 10 s). */
  timeoutMs?: number;
  /** Ping the relay this often; no answer means reconnect (default 15 s). */
  pingIntervalMs?: number;
  /** Reconnect backoff: first delay, doubled per failure up to the cap (defaults 250 ms, 10 s). */
  retryBaseDelayMs?: number;
  retryMaxDelayMs?: number;
}

/** A live registration at a relay. Events: 'registered' (after each successful (re)registration),
 *  'disconnected' (error), 'peer' (a relayed connection opened). */
export class RelayRegistration extends EventEmitter<{ registered: []; disconnected: [error: Error | undefined]; peer: [peer: Peer] }> {
  readonly url: string;
  private control: Peer | undefined;
  private readonly relayed = new Set<Peer>();
  private closed = false;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private readonly logger: Logger;

  constructor(private readonly opts: RelayRegisterOptions) {
    super();
    this.url = relayUrl(opts.relayAddr, opts.nodeId);
    this.logger = opts.logger ?? silentLogger;
  }

  get registered(): boolean {
    return this.control !== undefined && !this.control.closed;
  }

  /** Relayed connections open now (those adopted by `server` are listed in its peers() as well). */
  peers(): Peer[] {
    return [...this.relayed].filter((peer) => !peer.closed);
  }

  /** Connect the control connection and register; throws when it fails (first attempt only). */
  async start(): Promise<void> {
    const timeoutMs = this.opts.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const control = await connect(this.opts.relayAddr, {
      session: this.opts.nodeId,
      timeoutMs,
      ...(this.opts.tls === undefined ? {} : { tls: this.opts.tls }),
      ...(this.opts.logger === undefined ? {} : { logger: this.opts.logger }),
      methods: {
        'relay.dial': method(RelayDialSchema, ({ header }) => {
          void this.openDataConnection(header.ticket);
        }),
      },
    });
    try {
      const token = this.opts.token ?? this.opts.joinToken;
      const header = token === undefined ? { nodeId: this.opts.nodeId } : { nodeId: this.opts.nodeId, token };
      const answer = await control.request('relay.register', header, undefined, { timeoutMs });
      RelayRegisteredSchema.parse(answer.header);
    } catch (error) {
      control.close();
      throw error;
    }
    if (this.closed) {
      control.close();
      return;
    }
    this.control = control;
    this.failures = 0;
    control.once('close', (error) => this.onControlClosed(error));
    const pingMs = this.opts.pingIntervalMs ?? 15_000;
    this.pingTimer = setInterval(() => control.rtt({ timeoutMs: Math.max(1_000, pingMs / 2) }).catch(() => control.close()), pingMs);
    this.pingTimer.unref();
    this.logger.info('relay_registered', { relay: this.opts.relayAddr, nodeId: this.opts.nodeId });
    this.emit('registered');
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    this.control?.close();
    for (const peer of this.relayed) peer.close();
  }

  private onControlClosed(error: Error | undefined): void {
    clearInterval(this.pingTimer);
    this.control = undefined;
    if (this.closed) return;
    this.emit('disconnected', error);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const base = this.opts.retryBaseDelayMs ?? 250;
    const delay = Math.min(this.opts.retryMaxDelayMs ?? 10_000, base * 2 ** Math.min(this.failures, 20));
    this.failures += 1;
    this.logger.warn('relay_reconnect_scheduled', { relay: this.opts.relayAddr, nodeId: this.opts.nodeId, delayMs: delay, attempt: this.failures });
    this.retryTimer = setTimeout(() => {
      if (this.closed) return;
      this.start().catch((error: unknown) => {
        this.logger.warn('relay_reconnect_failed', { relay: this.opts.relayAddr, error: (error as Error).message });
        if (!this.closed) this.scheduleReconnect();
      });
    }, delay);
    this.retryTimer.unref();
  }

  /** The fresh outbound connection the relay splices to a waiting client. */
  private async openDataConnection(ticket: string): Promise<void> {
    let socket: Socket;
    try {
      socket = await dial(this.opts.relayAddr, { timeoutMs: this.opts.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS, ...(this.opts.tls === undefined ? {} : { tls: this.opts.tls }) });
    } catch (error) {
      this.logger.warn('relay_dial_failed', { relay: this.opts.relayAddr, error: (error as Error).message });
      return;
    }
    if (this.closed) {
      socket.destroy();
      return;
    }
    socket.write(frameBytes({ kind: FrameKind.RELAY_ACCEPT, id: 0, method: '', header: { ticket }, payload: EMPTY }));
    // From here on the socket is an incoming connection: the client's HELLO arrives through the splice.
    const remote = `relay://${this.opts.relayAddr}`;
    const peer =
      this.opts.server !== undefined
        ? this.opts.server.adopt(socket, { remote })
        : new Peer(socket, {
            role: 'server',
            session: this.opts.session ?? this.opts.nodeId,
            methods: this.opts.methods ?? {},
            remote,
            ...(this.opts.logger === undefined ? {} : { logger: this.opts.logger }),
            ...(this.opts.limits === undefined ? {} : { limits: this.opts.limits }),
          });
    this.relayed.add(peer);
    peer.once('close', () => this.relayed.delete(peer));
    peer.ready.then(
      () => this.emit('peer', peer),
      () => {},
    );
  }
}

/** Register `nodeId` at the relay and keep it registered until close(). Rejects if the first attempt fails. */
export async function relayRegister(opts: RelayRegisterOptions): Promise<RelayRegistration> {
  const registration = new RelayRegistration(opts);
  await registration.start();
  return registration;
}
