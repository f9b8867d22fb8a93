/**
 * Routes: a method, a pattern of '/'-separated segments, and a handler. A segment ':name' captures one
 * decoded path segment as params.name; a last segment '*' captures the rest of the path (zero or more
 * segments, still percent-encoded so that an encoded '/' cannot pass for a separator; static.ts decodes
 * and checks each one) as params['*'], joined with '/'.
 * Routes are tried in the order they were added; the first match wins.
 *
 * A handler takes a RequestContext and returns `{ status?, headers?, body }` or throws an HttpError.
 * A body is JSON unless it is a ResponseBody (it writes itself: SSE streams, files).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BodyLimit } from './body.ts';
import { HttpError, RouteNotFoundError } from './errors.ts';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface RequestContext {
  readonly req: IncomingMessage;
  readonly method: string;
  readonly url: URL;
  /** Decoded ':param' segments of the matched route ('*' holds the rest of the path for a wildcard). */
  readonly params: Readonly<Record<string, string>>;
  /** Query string as a plain object (the last value wins for repeated keys). */
  readonly query: Readonly<Record<string, string>>;
  /** Aborts when the client hangs up (reason: ClientGoneError) or the server shuts down. */
  readonly signal: AbortSignal;
  /**
   * Reads and parses the JSON body under the listener's rules (415 / 413 / 400 invalid_json). A route
   * may pass a tighter limit: the smaller of the two applies, and the 413 names the route's label.
   */
  json(limit?: BodyLimit): Promise<unknown>;
}

/**
 * A body that writes itself to the response (status line included), e.g. an SSE stream or a file.
 * `errorBody` renders an error in the service's shape, for failures after the status line is sent.
 */
export interface ResponseBody {
  writeTo(res: ServerResponse, context: ResponseContext): Promise<void>;
}

export interface ResponseContext {
  readonly req: IncomingMessage;
  readonly signal: AbortSignal;
  /** The service's error body for a failure (mapped and logged like any other error). */
  errorBody(error: unknown): unknown;
}

export function isResponseBody(body: unknown): body is ResponseBody {
  return typeof body === 'object' && body !== null && typeof (body as Partial<ResponseBody>).writeTo === 'function';
}

export interface RouteResult {
  /** Default 200 (ignored by a ResponseBody, which writes its own status). */
  status?: number;
  /** Extra headers of a JSON answer. */
  headers?: Record<string, string>;
  body: unknown;
}

export type RouteHandler = (ctx: RequestContext) => RouteResult | Promise<RouteResult>;

interface Route {
  method: HttpMethod;
  segments: string[];
  handler: RouteHandler;
}

export interface RouteMatch {
  handler: RouteHandler;
  params: Record<string, string>;
}

export class Router {
  private readonly routes: Route[] = [];

  add(method: HttpMethod, pattern: string, handler: RouteHandler): this {
    const segments = splitPath(pattern);
    const star = segments.indexOf('*');
    if (star !== -1 && star !== segments.length - 1) throw new Error(`route ${pattern}: '*' may only be the last segment`);
    this.routes.push({ method, segments, handler });
    return this;
  }

  /** Finds the handler, or throws RouteNotFoundError (404) / HttpError 405 naming the allowed methods. */
  match(method: string, pathname: string): RouteMatch {
    const parts = splitPath(pathname);
    const allowed: string[] = [];
    for (const route of this.routes) {
      const params = matchSegments(route.segments, parts);
      if (params === undefined) continue;
      if (route.method === method) return { handler: route.handler, params };
      if (!allowed.includes(route.method)) allowed.push(route.method);
    }
    if (allowed.length > 0) {
      throw new HttpError(405, 'method_not_allowed', `${method} is not allowed on ${pathname}`, `use ${allowed.join(' or ')}`, {
        allow: allowed.join(', '),
      });
    }
    throw new RouteNotFoundError(method, pathname);
  }
}

function splitPath(path: string): string[] {
  return path.split('/').filter((part) => part.length > 0);
}

function matchSegments(pattern: string[], parts: string[]): Record<string, string> | undefined {
  const wildcard = pattern.at(-1) === '*';
  const fixed = wildcard ? pattern.length - 1 : pattern.length;
  if (wildcard ? parts.length < fixed : parts.length !== fixed) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < fixed; i++) {
    const expected = pattern[i]!;
    const actual = parts[i]!;
    if (expected.startsWith(':')) params[expected.slice(1)] = decodeSegment(actual);
    else if (expected !== actual) return undefined;
  }
  // The rest stays percent-encoded: a decoded '%2F' must not turn into a path separator.
  if (wildcard) params['*'] = parts.slice(fixed).join('/');
  return params;
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, 'bad_request', `path segment '${segment}' is not valid percent-encoding`);
  }
}
