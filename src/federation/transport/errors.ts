/**
 * Errors of the data-plane transport. Each carries a hint of what to do; FrameError (malformed bytes)
 * lives in frame.ts next to the codec.
 */
import { FrameError } from './frame.ts';

/** The other side answered a request with an ERROR frame. `code` is open (see TRANSPORT_ERROR_CODES). */
export class RemoteError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly hint?: string,
    /** The method that failed, and the peer that answered, for logs. */
    readonly method?: string,
    readonly remote?: string,
  ) {
    super(hint === undefined ? message : `${message}. ${hint}`);
    this.name = 'RemoteError';
  }
}

/** The connection closed (or failed) while a request waited, or a request was made on a closed peer. */
export class PeerClosedError extends Error {
  readonly code = 'peer_closed';
  constructor(
    readonly remote: string,
    readonly reason: string,
    readonly hint = 'the peer went away: reconnect, or route around it (ban it for a while and re-plan)',
  ) {
    super(`connection to ${remote} closed: ${reason}. ${hint}`);
    this.name = 'PeerClosedError';
  }
}

/** No answer in time: a request, a PING, a connect or a HELLO. */
export class TimeoutError extends Error {
  readonly code = 'timeout';
  constructor(
    readonly what: string,
    readonly timeoutMs: number,
    readonly hint = 'the peer is slow or unreachable: raise timeoutMs, or check the network path',
  ) {
    super(`${what} timed out after ${timeoutMs} ms. ${hint}`);
    this.name = 'TimeoutError';
  }
}

/** Could not open a data connection: refused, unreachable, TLS failure, HELLO refused. */
export class ConnectError extends Error {
  constructor(
    readonly addr: string,
    /** errno code (ECONNREFUSED...), a TLS code, or a remote ERROR code from the handshake. */
    readonly code: string,
    message: string,
    readonly hint: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot connect to ${addr}: ${message}. ${hint}`, options);
    this.name = 'ConnectError';
  }
}

/** A hint for a socket error code, shown to the user with the ConnectError. */
export function connectHint(code: string): string {
  switch (code) {
    case 'ECONNREFUSED':
      return 'nothing listens there: is the node running, and is this its data-plane port?';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'no route to that host: check the address, the network, or use another candidate (WAN or relay)';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'the host name does not resolve: use an IP address or fix DNS';
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return "the TLS certificate is not trusted: pass the server's certificate as tls.ca (sharedllm certs made it)";
    case 'ERR_SSL_WRONG_VERSION_NUMBER':
    case 'ERR_SSL_PACKET_LENGTH_TOO_LONG':
      return 'the server does not speak TLS: connect without tls, or start it with --tls-cert/--tls-key';
    default:
      return 'check the address and that the peer is running';
  }
}

/** Why a connection failed before HELLO completed, as the ConnectError (or TimeoutError) connect() throws. */
export function handshakeError(remote: string, reason: string, cause: Error | undefined): Error {
  if (cause instanceof ConnectError || cause instanceof TimeoutError) return cause;
  if (cause instanceof FrameError) return new ConnectError(remote, 'bad_frame', cause.message, 'is this address a SharedLLM data-plane port (and TLS on both sides or neither)?', { cause });
  const code = (cause as NodeJS.ErrnoException | undefined)?.code ?? 'closed';
  return new ConnectError(remote, code, reason, 'the other side closed the connection during HELLO: check its logs (join token, version, TLS)', { cause });
}
