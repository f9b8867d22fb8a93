/**
 * Request/response and one-way notifications over data-plane connections: `listen` accepts them,
 * `connect` opens one. Both give Peers (peer.ts), symmetric after HELLO: either end may serve methods.
 *
 *   const server = await listen({ host: '0.0.0.0', port: 7701, session: nodeId, methods: {
 *     'worker.step': { schema: StepSchema, handler: async ({ header, payload }) => ({ header: {...}, payload }) },
 *   } });
 *   const peer = await connect('192.168.1.20:7701', { session: primaryId });
 *   const { header, payload } = await peer.request('worker.step', { seq: 1 }, hidden);
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { silentLogger } from '../../util/log.ts';
import type { Logger } from '../../util/log.ts';
import { formatHostPort } from './address.ts';
import { TimeoutError } from './errors.ts';
import type { Limits } from './frame.ts';
import { Peer } from './peer.ts';
import type { MethodSpec } from './methods.ts';
import type { PeerAuth } from './hello-auth.ts';
import { dial, listenSockets, tuneSocket } from './socket.ts';
import type { ClientTls } from './socket.ts';

export { Peer, DEFAULT_REQUEST_TIMEOUT_MS, DEFAULT_HANDSHAKE_TIMEOUT_MS } from './peer.ts';
export type { RequestOptions } from './peer.ts';
export { method, toTransportError } from './methods.ts';
export type { Handler, MethodSpec, Reply, Request } from './methods.ts';
export { RemoteError, PeerClosedError, TimeoutError, ConnectError } from './errors.ts';
export type { ClientTls } from './socket.ts';
export { HandshakeRefusal, NonceMemory } from './hello-auth.ts';
export type { PeerAuth, PeerIdentity } from './hello-auth.ts';

/** Server-side TLS: PEM certificate and key (contents, not paths), e.g. from `sharedllm certs`. */
export interface ServerTls {
  cert: string | Buffer;
  key: string | Buffer;
}

export interface ServerOptions {
  /** '0.0.0.0' or '::' for every interface; port 0 picks a free one (see the returned port). */
  host: string;
  port: number;
  tls?: ServerTls;
  methods: Record<string, MethodSpec>;
  /** Our session id, answered in HELLO (the node id for nodes). */
  session: string;
  logger?: Logger;
  /** Lower the protocol LIMITS for incoming frames. */
  limits?: Partial<Limits>;
  /** Close connections that have not said HELLO after this long (default 10 s). */
  handshakeTimeoutMs?: number;
  /** Refuse connections above this count (default 1024). */
  maxConnections?: number;
  /** Authenticate every connection (hello-auth.ts): nothing but HELLO and PING is served before. */
  auth?: PeerAuth;
}

export interface TransportServer {
  /** The bound port (the real one when `port` was 0). */
  port: number;
  host: string;
  /** Connections that completed HELLO and are open. */
  peers(): Peer[];
  /** The newest open connection whose HELLO announced session `s`. */
  peerBySession(s: string): Peer | undefined;
  /**
   * Serve an already-open stream as if it had been accepted here (the relay hands its spliced data
   * connections to the hidden node's server this way). `initial`: bytes already read from it.
   */
  adopt(socket: Duplex, info: { remote: string; initial?: Buffer }): Peer;
  close(): Promise<void>;
}

export async function listen(opts: ServerOptions): Promise<TransportServer> {
  const logger = opts.logger ?? silentLogger;
  const all = new Set<Peer>();
  const ready = new Set<Peer>();
  let closing = false;

  const adopt = (socket: Duplex, info: { remote: string; initial?: Buffer }): Peer => {
    const peer = new Peer(socket, {
      role: 'server',
      session: opts.session,
      methods: opts.methods,
      remote: info.remote,
      logger,
      ...(opts.limits === undefined ? {} : { limits: opts.limits }),
      ...(opts.handshakeTimeoutMs === undefined ? {} : { handshakeTimeoutMs: opts.handshakeTimeoutMs }),
      ...(info.initial === undefined ? {} : { initial: info.initial }),
      ...(opts.auth === undefined ? {} : { auth: opts.auth }),
    });
    all.add(peer);
    peer.once('close', () => {
      all.delete(peer);
      ready.delete(peer);
    });
    peer.ready.then(
      () => {
        if (peer.closed) return;
        ready.add(peer);
        logger.debug('transport_peer_ready', { peer: peer.id, remote: peer.remote, session: peer.session });
      },
      (error: unknown) => logger.debug('transport_handshake_failed', { remote: info.remote, error }),
    );
    if (closing) peer.close();
    return peer;
  };

  const onSocket = (socket: Socket) => {
    tuneSocket(socket);
    adopt(socket, { remote: formatHostPort(socket.remoteAddress ?? 'unknown', socket.remotePort ?? 0) });
  };
  const { server, port } = await listenSockets({ host: opts.host, port: opts.port, ...(opts.tls ? { tls: opts.tls } : {}), name: 'transport', logger, onSocket });
  server.maxConnections = opts.maxConnections ?? 1024;
  logger.info('transport_listening', { host: opts.host, port, tls: opts.tls !== undefined });

  return {
    port,
    host: opts.host,
    peers: () => [...ready].filter((peer) => !peer.closed),
    peerBySession: (s) => [...ready].reverse().find((peer) => peer.session === s && !peer.closed),
    adopt,
    close: async () => {
      closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const peer of all) peer.close();
      await closed;
    },
  };
}

export interface ConnectOptions {
  /** Our session id, announced in HELLO. */
  session: string;
  /** Methods this end serves to the other one (the connection is symmetric after HELLO). */
  methods?: Record<string, MethodSpec>;
  tls?: ClientTls;
  /** Covers the TCP connect, TLS and the HELLO exchange (default 10 s). */
  timeoutMs?: number;
  logger?: Logger;
  limits?: Partial<Limits>;
  signal?: AbortSignal;
  /** Prove our node identity and require the other end's (hello-auth.ts). */
  auth?: PeerAuth;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** Open a data connection to 'host:port' and exchange HELLO. */
export async function connect(addr: string, opts: ConnectOptions): Promise<Peer> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const deadline = performance.now() + timeoutMs;
  const socket = await dial(addr, {
    timeoutMs,
    ...(opts.tls === undefined ? {} : { tls: opts.tls }),
    ...(opts.signal === undefined ? {} : { signal: opts.signal }),
  });
  const peer = new Peer(socket, {
    role: 'client',
    session: opts.session,
    methods: opts.methods ?? {},
    remote: addr,
    ...(opts.logger === undefined ? {} : { logger: opts.logger }),
    ...(opts.limits === undefined ? {} : { limits: opts.limits }),
    ...(opts.auth === undefined ? {} : { auth: opts.auth }),
    handshakeTimeoutMs: Math.max(1, deadline - performance.now()),
  });
  await awaitReady(peer, addr, timeoutMs, opts.signal);
  return peer;
}

/** Wait for a peer's HELLO; on failure (error, timeout, abort) the peer is closed and the error thrown. */
export async function awaitReady(peer: Peer, what: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  if (signal === undefined) {
    await peer.ready; // the peer's own handshake timer bounds this
    return;
  }
  let onAbort: (() => void) | undefined;
  try {
    await Promise.race([
      peer.ready,
      new Promise<never>((_resolve, reject) => {
        onAbort = () => reject((signal.reason as Error | undefined) ?? new TimeoutError(`HELLO with ${what}`, timeoutMs));
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
  } catch (error) {
    peer.close();
    throw error;
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
  }
}
