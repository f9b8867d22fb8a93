/**
 * The HTTP layer of the OpenAI-compatible API. It reuses the coordinator's Router, body reader and
 * HttpError (src/federation/coordinator/http.ts), so routes look the same everywhere: a handler takes a
 * RequestContext and returns `{ status?, body }`, or throws. What this layer adds for the API:
 *   - ONE error path that answers in OpenAI's error shape (errors.ts), logging only 5xx with a stack;
 *   - API-key checking (`Authorization: Bearer <key>`), with public paths such as /health exempt;
 *   - a per-request AbortSignal (requestSignal) that fires when the client disconnects or the server
 *     closes, so generation stops and frees its sequence;
 *   - streaming: a body that is an SseBody is written as server-sent events (sse.ts);
 *   - JSON bodies read with a size limit (413), as strict UTF-8 (400), any Content-Type accepted (curl's
 *     default form type included: clients of this API are often hand-written).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError, readBody, requestContext } from '../federation/coordinator/http.ts';
import type { RouteHandler, Router } from '../federation/coordinator/http.ts';
import type { Logger } from '../util/log.ts';
import { ApiError, toErrorBody, toHttpError } from './errors.ts';
import { SseBody, writeSse } from './sse.ts';

export interface ApiListenerOptions {
  router: Router;
  logger: Logger;
  maxBodyBytes: number;
  /** When set, every path except `publicPaths` needs `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  publicPaths: ReadonlySet<string>;
  /** Aborts every request in flight (server closing); its reason is what they fail with. */
  shutdown: AbortSignal;
  /** Told about each request's handling, so close() can wait for them. */
  track: (done: Promise<void>) => void;
}

/** The reason a request's signal aborts with when its client disconnects (never sent: nobody listens). */
export class ClientGoneError extends ApiError {
  constructor() {
    super(499, 'client closed the connection');
  }
}

const signals = new WeakMap<IncomingMessage, AbortSignal>();

/**
 * The request's AbortSignal: aborts when the client goes away or the server closes. Pass it to the
 * generator; its `reason` is an HttpError suitable to rethrow.
 */
export function requestSignal(req: IncomingMessage): AbortSignal {
  const signal = signals.get(req);
  if (signal === undefined) throw new Error('requestSignal called for a request this listener did not receive');
  return signal;
}

/** The request listener for http.createServer. */
export function createApiListener(options: ApiListenerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    options.track(handle(options, req, res));
  };
}

async function handle(options: ApiListenerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const method = req.method ?? 'GET';
  const started = Date.now();
  // One signal per request: aborted by the server's shutdown or by the client hanging up.
  const controller = new AbortController();
  const onShutdown = () => controller.abort(options.shutdown.reason);
  if (options.shutdown.aborted) onShutdown();
  else options.shutdown.addEventListener('abort', onShutdown, { once: true });
  res.on('close', () => {
    options.shutdown.removeEventListener('abort', onShutdown);
    if (!res.writableFinished) controller.abort(new ClientGoneError());
  });
  const signal = controller.signal;
  signals.set(req, signal);
  let path = '?';
  try {
    const url = parseUrl(req.url);
    path = url.pathname;
    if (options.apiKey !== undefined && !options.publicPaths.has(url.pathname)) checkApiKey(req, options.apiKey);
    const { handler, params } = matchRoute(options.router, method, url.pathname);
    const result = await handler(requestContext(req, method, url, params, () => readJsonBody(req, options.maxBodyBytes)));
    const status = result.status ?? 200;
    if (result.body instanceof SseBody) {
      await writeSse(res, result.body, signal, (error) => {
        const httpError = toHttpError(error);
        logFailure(options.logger, httpError, error, method, path);
        return toErrorBody(httpError);
      });
    } else {
      sendJson(res, status, result.body);
    }
    options.logger.debug('api_request', { method, path, status, ms: Date.now() - started });
  } catch (error) {
    try {
      sendError(options.logger, req, res, error, method, path);
    } catch (sendFailure) {
      // Writing the error failed too (socket in a bad state): log it and drop the connection.
      options.logger.error('api_error_response_failed', { method, path, error: sendFailure });
      res.destroy();
    }
  }
}

function parseUrl(raw: string | undefined): URL {
  try {
    return new URL(raw ?? '/', 'http://api.invalid');
  } catch {
    throw new ApiError(400, 'request target is not a valid URL path');
  }
}

const API_ROUTES_HINT = 'the API serves GET /v1/models, POST /v1/chat/completions, POST /v1/completions and GET /health';

/** The shared Router's match, with a 404 that names this API's routes. */
function matchRoute(router: Router, method: string, pathname: string): { handler: RouteHandler; params: Record<string, string> } {
  try {
    return router.match(method, pathname);
  } catch (error) {
    if (error instanceof HttpError && error.status === 404 && error.code === 'not_found') {
      throw new ApiError(404, `no route ${method} ${pathname}`, { hint: API_ROUTES_HINT });
    }
    throw error;
  }
}

/**
 * Compares `Authorization: Bearer <key>` with the expected key in constant time (both sides hashed first,
 * so the comparison leaks neither the key nor its length).
 */
function checkApiKey(req: IncomingMessage, expected: string): void {
  const match = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
  const headers = { 'www-authenticate': 'Bearer realm="sharedllm"' };
  if (match === null) {
    throw new ApiError(401, 'this server requires an API key', {
      code: 'invalid_api_key',
      hint: 'send it as Authorization: Bearer <key> (the key the node was started with)',
      headers,
    });
  }
  const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();
  if (!timingSafeEqual(digest(match[1]!.trim()), digest(expected))) {
    throw new ApiError(401, 'incorrect API key provided', { code: 'invalid_api_key', hint: 'ask the node operator for the API key', headers });
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Reads the body as JSON: 413 above the limit, 400 for bytes that are not UTF-8 or text that is not JSON. */
export async function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  const bytes = await readBody(req, limit);
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    throw new ApiError(400, 'request body is not valid UTF-8', { hint: 'send JSON encoded as UTF-8' });
  }
  if (text.trim() === '') throw new ApiError(400, 'request body is empty', { hint: 'send a JSON object' });
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new ApiError(400, `request body is not valid JSON: ${(error as Error).message}`, {
      hint: 'send a JSON object with Content-Type: application/json',
    });
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

/** The one error path: any failure becomes an OpenAI-shaped error response. */
function sendError(logger: Logger, req: IncomingMessage, res: ServerResponse, error: unknown, method: string, path: string): void {
  const httpError = toHttpError(error);
  logFailure(logger, httpError, error, method, path);
  if (res.headersSent || res.destroyed) {
    // Nothing sensible can be sent any more (or the client is gone): drop the connection.
    res.destroy();
    return;
  }
  sendJson(res, httpError.status, toErrorBody(httpError), httpError.headers);
  // A refused body may still be arriving: discard it instead of leaving the socket stuck.
  if (!req.complete) req.resume();
}

function logFailure(logger: Logger, httpError: HttpError, cause: unknown, method: string, path: string): void {
  if (httpError.status >= 500) logger.error('api_error', { method, path, status: httpError.status, error: cause });
  else logger.debug('api_request', { method, path, status: httpError.status, code: httpError.code, message: httpError.message });
}
