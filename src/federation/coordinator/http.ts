/**
 * The coordinator's side of the HTTP layer (src/http, which is generic and imports nothing of the
 * federation): its error body `{ error: { code, message, hint? } }` (protocol.ts ErrorBody), errors typed
 * with the protocol's codes, the join-token check, and the protocol version header on every answer.
 * Routes throw CoordinatorError (or any HttpError); createCoordinatorListener maps every failure through
 * coordinatorErrors. Only 5xx are logged, with their stack.
 */
import type { IncomingMessage } from 'node:http';
import { checkBearer, createListener, HTTP_LAYER_CODES, HttpError, RouteNotFoundError } from '../../http/index.ts';
import type { ErrorMapper, RequestListener, Router } from '../../http/index.ts';
import { PROTOCOL_HEADER, PROTOCOL_VERSION } from '../protocol.ts';
import type { ErrorBody, ErrorCode } from '../protocol.ts';
import type { Logger } from '../../util/log.ts';

// Kept so that src/api/chat.ts and completions.ts compile until they import src/http themselves.
export type { RouteHandler } from '../../http/index.ts';

// Every code the HTTP layer emits by itself is one of the protocol's codes (checked at compile time).
HTTP_LAYER_CODES satisfies readonly ErrorCode[];

/** An HttpError whose code is one of the coordinator protocol's (protocol.ts ERROR_CODES). */
export class CoordinatorError extends HttpError {
  constructor(status: number, code: ErrorCode, message: string, hint?: string, headers: Record<string, string> = {}) {
    super(status, code, message, hint, headers);
    this.name = 'CoordinatorError';
  }
}

const ROUTES_HINT = 'routes are listed at the top of src/federation/coordinator/server.ts';

/** Errors in the protocol's ErrorBody; anything that is not an HttpError is a 500 that hides its details. */
export const coordinatorErrors: ErrorMapper = {
  toHttpError(error: unknown): HttpError {
    if (error instanceof RouteNotFoundError) return new CoordinatorError(404, 'not_found', error.message, ROUTES_HINT);
    if (error instanceof HttpError) return error;
    return new CoordinatorError(500, 'internal', 'internal error in the coordinator', 'see the coordinator log for details');
  },
  toBody(error: HttpError): ErrorBody {
    return { error: { code: error.code, message: error.message, ...(error.hint === undefined ? {} : { hint: error.hint }) } };
  },
};

/** 401 unless the request carries the federation join token as its bearer token. */
export function checkJoinToken(req: IncomingMessage, joinToken: string): void {
  checkBearer(req, joinToken, {
    code: 'unauthorized',
    missing: {
      message: 'this coordinator requires a join token',
      hint: 'pass the federation join token (--join-token); it is sent as Authorization: Bearer <token>',
    },
    wrong: { message: 'wrong join token', hint: 'ask the coordinator operator for the federation join token' },
  });
}

export interface CoordinatorListenerOptions {
  router: Router;
  logger: Logger;
  /** Largest request body (413 above); routes that store bodies set tighter limits. */
  maxBodyBytes: number;
  /** Runs before routing (auth); throws HttpError to refuse. */
  guard?: (req: IncomingMessage, url: URL) => void;
}

/** The request listener for http(s).createServer: routing, JSON bodies (Content-Type required), one error path. */
export function createCoordinatorListener(options: CoordinatorListenerOptions): RequestListener {
  return createListener({
    router: options.router,
    logger: options.logger,
    logName: 'http',
    errors: coordinatorErrors,
    maxBodyBytes: options.maxBodyBytes,
    requireJsonContentType: true,
    guard: options.guard,
    headers: { [PROTOCOL_HEADER]: String(PROTOCOL_VERSION) },
  });
}
