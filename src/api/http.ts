/**
 * The OpenAI-compatible API's side of the HTTP layer (src/http: router, listener, body reading, SSE).
 * Routes look the same as the coordinator's: a handler takes a RequestContext and returns
 * `{ status?, body }`, or throws. What this file adds for the API:
 *   - its ErrorMapper: every failure answers in OpenAI's error shape (errors.ts), 5xx logged with a stack,
 *     and an unknown route's 404 lists the API's endpoints;
 *   - API-key checking (`Authorization: Bearer <key>`), with public paths such as /health exempt;
 *   - JSON bodies read with a size limit (413), as strict UTF-8 (400), any Content-Type accepted (curl's
 *     default form type included: clients of this API are often hand-written);
 *   - streaming: a body that is an SseBody (sse.ts) is written as server-sent events.
 * The per-request AbortSignal (requestSignal) comes from the listener: it fires when the client
 * disconnects or the server closes, so generation stops and frees its sequence.
 */
import type { IncomingMessage } from 'node:http';
import { checkBearer, ClientGoneError, createListener, requestSignal, RouteNotFoundError } from '../http/index.ts';
import type { ErrorMapper, HttpError, RequestListener, ResponseBody, Router } from '../http/index.ts';
import type { Logger } from '../util/log.ts';
import { ApiError, toErrorBody, toHttpError } from './errors.ts';
import { PlainText } from './metrics.ts';
import { SseBody, writeSse } from './sse.ts';
import { type UserDirectory, authenticate } from './users.ts';

// The API's routes import these from here.
export { ClientGoneError, requestSignal };

export interface ApiListenerOptions {
  router: Router;
  logger: Logger;
  maxBodyBytes: number;
  /** When set, every path except `publicPaths` needs `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Per-user keys (users.ts): a request carrying one is that user's; callerOf(req) tells routes who calls. */
  users?: UserDirectory;
  publicPaths: { has(pathname: string): boolean };
  /** Aborts every request in flight (server closing); its reason is what they fail with. */
  shutdown: AbortSignal;
  /** Told about each request's handling, so close() can wait for them. */
  track: (done: Promise<void>) => void;
}

const API_ROUTES_HINT =
  'the API serves GET /v1/models, POST /v1/chat/completions, POST /v1/completions, POST /v1/responses, POST /v1/embeddings, GET /metrics and GET /health (and on a primary, with a user key: /v1/adapters, /v1/audit, /v1/users/me)';

/** OpenAI's error shape for every failure (errors.ts), with a 404 that names this API's routes. */
export const apiErrors: ErrorMapper = {
  toHttpError(error: unknown): HttpError {
    if (error instanceof RouteNotFoundError) return new ApiError(404, error.message, { hint: API_ROUTES_HINT });
    return toHttpError(error);
  },
  toBody: toErrorBody,
};

/** The request listener for http.createServer. */
export function createApiListener(options: ApiListenerOptions): RequestListener {
  const apiKey = options.apiKey;
  return createListener({
    router: options.router,
    logger: options.logger,
    logName: 'api',
    errors: apiErrors,
    maxBodyBytes: options.maxBodyBytes,
    requireJsonContentType: false,
    guard: (req, url) =>
      authenticate(req, url, { ...(apiKey === undefined ? {} : { apiKey }), ...(options.users === undefined ? {} : { users: options.users }), publicPaths: options.publicPaths, refuse: checkApiKey }),
    adaptBody: sseBody,
    shutdown: options.shutdown,
    track: options.track,
  });
}

/** 401 `invalid_api_key` unless the request carries the key (constant-time comparison). */
function checkApiKey(req: IncomingMessage, expected: string): void {
  checkBearer(req, expected, {
    code: 'invalid_api_key',
    missing: { message: 'this server requires an API key', hint: 'send it as Authorization: Bearer <key> (the key the node was started with)' },
    wrong: { message: 'incorrect API key provided', hint: 'ask the node operator for the API key' },
  });
}

/**
 * The API's SseBody streams through sse.ts's writeSse (OpenAI's framing, `data: [DONE]` at the end); a
 * PlainText (GET /metrics) is written as it is.
 */
function sseBody(body: unknown): ResponseBody | undefined {
  if (body instanceof PlainText) {
    return {
      writeTo: async (res) => {
        res.writeHead(200, { 'content-type': body.contentType, 'content-length': Buffer.byteLength(body.text) });
        res.end(body.text);
      },
    };
  }
  if (!(body instanceof SseBody)) return undefined;
  return { writeTo: (res, context) => writeSse(res, body, context.signal, (error) => context.errorBody(error)) };
}
