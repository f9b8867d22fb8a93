/**
 * The request listener every service runs (the coordinator, the OpenAI API, dashboards), with ONE error
 * path (hono's): whatever a guard, the router, the body reader or a route throws goes through the
 * service's ErrorMapper into its error body, with the HttpError's status and headers. Only 5xx are logged
 * as errors, with their stack; the rest at debug level.
 *
 * Per request the listener also provides:
 *   - an AbortSignal (ctx.signal, or requestSignal(req)) that fires when the client hangs up
 *     (ClientGoneError) or the service shuts down (the `shutdown` signal's reason);
 *   - ctx.json(), reading the body under the listener's limit (a route may tighten it) and JSON rules;
 *   - bodies: JSON by default, or a ResponseBody that writes itself (SseStream, static files);
 *   - `track`, so a service can wait on close for the requests in flight.
 */
import { createServer as createPlainServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { Logger } from '../util/log.ts';
import { readJson, tighterLimit } from './body.ts';
import type { BodyLimit } from './body.ts';
import { ClientGoneError, HttpError } from './errors.ts';
import type { ErrorMapper } from './errors.ts';
import { isResponseBody } from './router.ts';
import type { RequestContext, ResponseBody, Router } from './router.ts';

export interface ListenerOptions {
  router: Router;
  logger: Logger;
  /** Log events are `<logName>_request` (debug, and refusals) and `<logName>_error` (5xx, with the stack). */
  logName: string;
  /** The service's error body shape. */
  errors: ErrorMapper;
  /** Largest body ctx.json() reads (413 above); a route may pass a tighter limit of its own. */
  maxBodyBytes: number;
  /** 415 unless a JSON body comes with Content-Type: application/json. */
  requireJsonContentType: boolean;
  /** Runs before routing (auth); throws HttpError to refuse. */
  guard?: (req: IncomingMessage, url: URL) => void;
  /** Headers on every answer, errors included (e.g. the coordinator's protocol version). */
  headers?: Readonly<Record<string, string>>;
  /** Turns a service's own body types into ResponseBodies (undefined: not one of them). */
  adaptBody?: (body: unknown) => ResponseBody | undefined;
  /** Aborts every request in flight (the service is closing); its reason is what they fail with. */
  shutdown?: AbortSignal;
  /** Told about each request's handling, so close() can wait for them. */
  track?: (done: Promise<void>) => void;
}

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

const signals = new WeakMap<IncomingMessage, AbortSignal>();

/**
 * The request's AbortSignal (the same as ctx.signal), for code that only holds the request: aborts when
 * the client goes away or the service closes; its `reason` is an HttpError suitable to rethrow.
 */
export function requestSignal(req: IncomingMessage): AbortSignal {
  const signal = signals.get(req);
  if (signal === undefined) throw new Error('requestSignal called for a request no src/http listener received');
  return signal;
}

/** The request listener for http(s).createServer (or createServer below). */
export function createListener(options: ListenerOptions): RequestListener {
  return (req, res) => {
    const done = handle(options, req, res);
    options.track?.(done);
  };
}

/** A plain HTTP server, or HTTPS when `tls` is given (PEM contents). Not listening yet. */
export function createServer(listener: RequestListener, tls?: { cert: string | Buffer; key: string | Buffer }): Server {
  return tls === undefined ? createPlainServer(listener) : createTlsServer({ cert: tls.cert, key: tls.key }, listener);
}

async function handle(options: ListenerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const method = req.method ?? 'GET';
  const started = Date.now();
  const signal = abortSignalFor(options.shutdown, res);
  signals.set(req, signal);
  for (const [name, value] of Object.entries(options.headers ?? {})) res.setHeader(name, value);
  let path = '?';
  try {
    const url = parseUrl(req.url);
    path = url.pathname;
    options.guard?.(req, url);
    const { handler, params } = options.router.match(method, url.pathname);
    const listenerLimit: BodyLimit = { maxBytes: options.maxBodyBytes };
    const ctx: RequestContext = {
      req,
      method,
      url,
      params,
      query: Object.fromEntries(url.searchParams),
      signal,
      json: (limit) => readJson(req, { limit: tighterLimit(listenerLimit, limit), requireJsonContentType: options.requireJsonContentType }),
    };
    const result = await handler(ctx);
    const body = options.adaptBody?.(result.body) ?? result.body;
    if (isResponseBody(body)) {
      await body.writeTo(res, {
        req,
        signal,
        errorBody: (error) => options.errors.toBody(mapAndLog(options, error, method, path)),
      });
    } else {
      sendJson(res, result.status ?? 200, body, result.headers);
    }
    options.logger.debug(`${options.logName}_request`, { method, path, status: res.statusCode, ms: Date.now() - started });
  } catch (error) {
    try {
      sendError(options, req, res, error, method, path);
    } catch (sendFailure) {
      // Writing the error failed too (socket in a bad state): log it and drop the connection.
      options.logger.error(`${options.logName}_error_response_failed`, { method, path, error: sendFailure });
      res.destroy();
    }
  }
}

/** One signal per request: aborted by the service's shutdown or by the client hanging up. */
function abortSignalFor(shutdown: AbortSignal | undefined, res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  const onShutdown = () => controller.abort(shutdown?.reason);
  if (shutdown?.aborted === true) onShutdown();
  else shutdown?.addEventListener('abort', onShutdown, { once: true });
  res.on('close', () => {
    shutdown?.removeEventListener('abort', onShutdown);
    if (!res.writableFinished) controller.abort(new ClientGoneError());
  });
  return controller.signal;
}

function parseUrl(raw: string | undefined): URL {
  try {
    return new URL(raw ?? '/', 'http://listener.invalid');
  } catch {
    throw new HttpError(400, 'bad_request', 'request target is not a valid URL path');
  }
}

/** A JSON answer; never cached (every answer of these services is live state). */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

function sendError(options: ListenerOptions, req: IncomingMessage, res: ServerResponse, error: unknown, method: string, path: string): void {
  const httpError = mapAndLog(options, error, method, path);
  if (res.headersSent || res.destroyed) {
    // Nothing sensible can be sent any more (or the client is gone): drop the connection.
    res.destroy();
    return;
  }
  sendJson(res, httpError.status, options.errors.toBody(httpError), httpError.headers);
  // A refused body may still be arriving: discard it instead of leaving the socket stuck.
  if (!req.complete) req.resume();
}

function mapAndLog(options: ListenerOptions, error: unknown, method: string, path: string): HttpError {
  const httpError = options.errors.toHttpError(error);
  if (httpError.status >= 500) {
    options.logger.error(`${options.logName}_error`, { method, path, status: httpError.status, error });
  } else {
    options.logger.debug(`${options.logName}_request`, { method, path, status: httpError.status, code: httpError.code, message: httpError.message });
  }
  return httpError;
}
