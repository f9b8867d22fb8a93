/**
 * Opening a stream to 'host:port', plain TCP or TLS, with a deadline and an abort signal. Every failure
 * becomes a ConnectError (with a hint) or a TimeoutError; the socket is tuned for the data plane
 * (no Nagle delay, TCP keepalive).
 */
import { connect as netConnect, isIP } from 'node:net';
import type { Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
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
