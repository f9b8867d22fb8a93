/**
 * The one error type of every HTTP listener (hono's HTTPException): a route, the router, the body reader
 * or the bearer check throws an HttpError; the listener turns it into the answer through the service's
 * ErrorMapper (listener.ts). Anything else thrown is the mapper's to classify (usually a 500).
 *
 * `code` is a machine-readable string. The codes this layer emits itself are HTTP_LAYER_CODES; a service
 * adds its own (the coordinator's protocol codes, the API's OpenAI codes) and may subclass HttpError to
 * type them.
 */

/** Codes thrown by src/http itself (router, body reader, bearer check, static files, listener). */
export const HTTP_LAYER_CODES = [
  'bad_request', // malformed request target, path segment or static path
  'invalid_json', // body is empty, not UTF-8, or not JSON
  'unsupported_media_type', // the route wants JSON and the Content-Type says otherwise
  'payload_too_large', // body above the route's or the listener's limit
  'unauthorized', // missing or wrong bearer token (the default code of checkBearer)
  'not_found', // no such route, no such file
  'method_not_allowed', // the path exists, the method does not
  'internal', // anything that is not an HttpError, when the mapper does not say otherwise
] as const;
export type HttpLayerCode = (typeof HTTP_LAYER_CODES)[number];

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** What the client can do about it; services show it as they like (a field, or after the message). */
    readonly hint?: string,
    /** Extra response headers (allow, www-authenticate, retry-after, connection). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/**
 * No route matches the path. A distinct class so each service's mapper can add its own hint (the
 * coordinator points at its route table, the API lists its endpoints).
 */
export class RouteNotFoundError extends HttpError {
  constructor(
    readonly method: string,
    readonly pathname: string,
  ) {
    super(404, 'not_found', `no route ${method} ${pathname}`);
    this.name = 'RouteNotFoundError';
  }
}

/**
 * The reason a request's AbortSignal fires with when its client hangs up. Never sent (nobody listens);
 * 499 is nginx's "client closed request", so logs read right.
 */
export class ClientGoneError extends HttpError {
  constructor() {
    super(499, 'client_closed_request', 'client closed the connection');
    this.name = 'ClientGoneError';
  }
}

/**
 * How one service answers errors: every failure goes through `toHttpError` (HttpErrors usually pass
 * through, unknown errors become a 500 that hides their details) and then `toBody`, which gives the
 * service's error body shape. The same body is used for the error frame of a failing SSE stream.
 */
export interface ErrorMapper {
  toHttpError(error: unknown): HttpError;
  toBody(error: HttpError): unknown;
}
