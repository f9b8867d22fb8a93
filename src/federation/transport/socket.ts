/**
 * Opening a stream to 'host:port', plain TCP or TLS, with a deadline and an abort signal. Every failure
 * becomes a ConnectError (with a hint) or a TimeoutError; the socket is tuned for the data plane
 * (no Nagle delay, TCP keepalive).
 */
import { connect as netConnect, createServer as createNetServer, isIP } from 'node:net';
import type { Server as NetServer, Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import type { Logger } from '../../util/log.ts';
import { parseHostPort } from './address.ts';
import { ConnectError, connectHint, TimeoutError } from './errors.ts';

/** Client-side TLS: trust `ca` (PEM, e.g. a self-signed certificate from `sharedllm certs`). */
export interface ClientTls {
  ca?: string | Buffer;
  /** Default true. False accepts any certificate (encryption without authentication: tests only). */
  rejectUnauthorized?: boolean;
}

export interface DialOptions {
  tls?: ClientTls;
  timeoutMs: number;
  signal?: AbortSignal;
}

/** Keepalive probes start after this much idle time, so a vanished peer is noticed. */
export const KEEPALIVE_MS = 15_000;

export function tuneSocket(socket: Socket): void {
  socket.setNoDelay(true);
  socket.setKeepAlive(true, KEEPALIVE_MS);
}

/** A connected (and, with tls, handshaken and verified) socket to `addr`. */
export function dial(addr: string, options: DialOptions): Promise<Socket> {
  const { host, port } = parseHostPort(addr);
  return new Promise<Socket>((resolve, reject) => {
    if (options.signal?.aborted === true) {
      reject(options.signal.reason as Error);
      return;
    }
    const socket =
      options.tls === undefined
        ? netConnect({ host, port })
        : tlsConnect({
            host,
            port,
            ca: options.tls.ca,
            rejectUnauthorized: options.tls.rejectUnauthorized ?? true,
            // SNI must be a name, not an IP literal (certificate checks still use `host`).
            ...(isIP(host) === 0 ? { servername: host } : {}),
          });
    const readyEvent = options.tls === undefined ? 'connect' : 'secureConnect';
    let settled = false;
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      socket.off('error', onError);
      socket.off(readyEvent, onReady);
      if (error === undefined) {
        tuneSocket(socket);
        resolve(socket);
      } else {
        socket.destroy();
        reject(error);
      }
    };
    const onReady = () => finish();
    const onError = (error: NodeJS.ErrnoException) => {
      const code = error.code ?? 'ECONNECT';
      finish(new ConnectError(addr, code, error.message, connectHint(code), { cause: error }));
    };
    const onAbort = () => finish((options.signal?.reason as Error | undefined) ?? new Error('aborted'));
    const timer = setTimeout(() => finish(new TimeoutError(`connecting to ${addr}`, options.timeoutMs)), options.timeoutMs);
    socket.once(readyEvent, onReady);
    socket.on('error', onError);
    options.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Server-side TLS: a PEM certificate and key. */
export interface ListenTls {
  cert: string | Buffer;
  key: string | Buffer;
}

/**
 * Listen on host:port, plain TCP or TLS, and resolve once bound with the real port (port 0 picks one).
 * `name` prefixes the log events (e.g. 'transport', 'relay').
 */
export async function listenSockets(opts: { host: string; port: number; tls?: ListenTls; name: string; logger: Logger; onSocket: (socket: Socket) => void }): Promise<{ server: NetServer; port: number }> {
  const { logger, name } = opts;
  let server: NetServer;
  if (opts.tls === undefined) server = createNetServer(opts.onSocket);
  else {
    const tlsServer = createTlsServer({ cert: opts.tls.cert, key: opts.tls.key }, opts.onSocket);
    tlsServer.on('tlsClientError', (error, socket) => logger.debug(`${name}_tls_client_error`, { remote: socket.remoteAddress, error: error.message }));
    server = tlsServer;
  }
  server.on('error', (error) => logger.error(`${name}_server_error`, { error }));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : opts.port;
  return { server, port };
}
