/**
 * The small HTTP layer under the coordinator (no framework): a router with ':param' segments, a
 * size-limited JSON body reader, bearer-token checking, and ONE error path (hono style): routes throw
 * HttpError(status, code, message, hint); createRequestListener turns every failure into the protocol's
 * error body `{ error: { code, message, hint? } }`. Only 5xx are logged, with their stack.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PROTOCOL_HEADER, PROTOCOL_VERSION } from '../protocol.ts';
import type { ErrorBody, ErrorCode } from '../protocol.ts';
import type { Logger } from '../../util/log.ts';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly hint?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface RequestContext {
  readonly req: IncomingMessage;
  readonly method: string;
  readonly url: URL;
  /** Decoded ':param' segments of the matched route. */
  readonly params: Readonly<Record<string, string>>;
  /** Query string as a plain object (the last value wins for repeated keys). */
  readonly query: Readonly<Record<string, string>>;
  /** Reads and parses the JSON body. Throws HttpError 415 / 413 / 400. */
  json(): Promise<unknown>;
}

/** The context a route handler gets; `json` is the listener's body reader (its limits and rules). */
export function requestContext(req: IncomingMessage, method: string, url: URL, params: Record<string, string>, json: () => Promise<unknown>): RequestContext {
  return { req, method, url, params, query: Object.fromEntries(url.searchParams), json };
}

export interface RouteResult {
  /** Default 200. */
  status?: number;
  body: unknown;
}

export type RouteHandler = (ctx: RequestContext) => RouteResult | Promise<RouteResult>;

interface Route {
  method: HttpMethod;
  segments: string[];
  handler: RouteHandler;
}

export class Router {
  private readonly routes: Route[] = [];

  add(method: HttpMethod, pattern: string, handler: RouteHandler): this {
    this.routes.push({ method, segments: splitPath(pattern), handler });
    return this;
  }

  /** Finds the handler, or throws 404 (no such path) / 405 (path exists, method does not). */
  match(method: string, pathname: string): { handler: RouteHandler; params: Record<string, string> } {
    const parts = splitPath(pathname);
    const allowed: string[] = [];
    for (const route of this.routes) {
      const params = matchSegments(route.segments, parts);
      if (params === undefined) continue;
      if (route.method === method) return { handler: route.handler, params };
      allowed.push(route.method);
    }
    if (allowed.length > 0) {
      throw new HttpError(405, 'method_not_allowed', `${method} is not allowed on ${pathname}`, `use ${allowed.join(' or ')}`, {
        allow: allowed.join(', '),
      });
    }
    throw new HttpError(404, 'not_found', `no route ${method} ${pathname}`, 'routes are listed at the top of src/federation/coordinator/server.ts');
  }
}

function splitPath(path: string): string[] {
  return path.split('/').filter((part) => part.length > 0);
}

function matchSegments(pattern: string[], parts: string[]): Record<string, string> | undefined {
  if (pattern.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const expected = pattern[i]!;
    const actual = parts[i]!;
    if (expected.startsWith(':')) {
      try {
        params[expected.slice(1)] = decodeURIComponent(actual);
      } catch {
        throw new HttpError(400, 'bad_request', `path segment '${actual}' is not valid percent-encoding`);
      }
    } else if (expected !== actual) {
      return undefined;
    }
  }
  return params;
}

/** Reads at most `limit` bytes of body; 413 as soon as the declared or received size is above it. */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? Number.NaN);
  if (declared > limit) throw tooLarge(limit, declared);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw tooLarge(limit, size);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

function tooLarge(limit: number, size: number): HttpError {
  return new HttpError(413, 'payload_too_large', `request body of ${size}+ bytes is above the limit of ${limit} bytes`, 'send a smaller body', {
    connection: 'close',
  });
}

async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const contentType = req.headers['content-type'] ?? '';
  if (!/^application\/json\s*(;|$)/i.test(contentType)) {
    throw new HttpError(415, 'unsupported_media_type', `expected Content-Type application/json, got '${contentType}'`, 'send JSON with Content-Type: application/json');
  }
  const body = await readBody(req, limit);
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch (error) {
    throw new HttpError(400, 'invalid_json', `request body is not valid JSON: ${(error as Error).message}`, 'send a JSON object');
  }
}

/**
 * Compares a request's `Authorization: Bearer <token>` with the expected token in constant time
 * (both sides hashed first, so the comparison does not leak the token's length either).
 */
export function checkBearer(req: IncomingMessage, expected: string): void {
  const header = req.headers.authorization ?? '';
  const match = /^Bearer\s+(.+)$/i.exec(header);
  const challenge = { 'www-authenticate': 'Bearer realm="sharedllm"' };
  if (match === null) {
    throw new HttpError(
      401,
      'unauthorized',
      'this coordinator requires a join token',
      'pass the federation join token (--join-token); it is sent as Authorization: Bearer <token>',
      challenge,
    );
  }
  const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();
  if (!timingSafeEqual(digest(match[1]!.trim()), digest(expected))) {
    throw new HttpError(401, 'unauthorized', 'wrong join token', 'ask the coordinator operator for the federation join token', challenge);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    [PROTOCOL_HEADER]: String(PROTOCOL_VERSION),
    ...headers,
  });
  res.end(text);
}

export interface ListenerOptions {
  router: Router;
  logger: Logger;
  maxBodyBytes: number;
  /** Runs before routing (auth); throws HttpError to refuse. */
  guard?: (req: IncomingMessage, url: URL) => void;
}

/** The request listener for http(s).createServer: routing, then the one error path. */
export function createRequestListener(options: ListenerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    void handle(options, req, res);
  };
}

async function handle(options: ListenerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const method = req.method ?? 'GET';
  const url = new URL(req.url ?? '/', 'http://coordinator.invalid');
  const started = Date.now();
  try {
    options.guard?.(req, url);
    const { handler, params } = options.router.match(method, url.pathname);
    const result = await handler(requestContext(req, method, url, params, () => readJson(req, options.maxBodyBytes)));
    sendJson(res, result.status ?? 200, result.body);
    options.logger.debug('http_request', { method, path: url.pathname, status: result.status ?? 200, ms: Date.now() - started });
  } catch (error) {
    sendError(options.logger, req, res, error, method, url.pathname);
  }
}

function sendError(logger: Logger, req: IncomingMessage, res: ServerResponse, error: unknown, method: string, path: string): void {
  const httpError =
    error instanceof HttpError ? error : new HttpError(500, 'internal', 'internal error in the coordinator', 'see the coordinator log for details');
  if (httpError.status >= 500) logger.error('http_error', { method, path, status: httpError.status, error });
  else logger.debug('http_request', { method, path, status: httpError.status, code: httpError.code });
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body: ErrorBody = { error: { code: httpError.code, message: httpError.message, ...(httpError.hint === undefined ? {} : { hint: httpError.hint }) } };
  sendJson(res, httpError.status, body, httpError.headers);
  // A refused body may still be arriving: discard it instead of leaving the socket stuck.
  if (!req.complete) req.resume();
}
