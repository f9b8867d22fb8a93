/**
 * CORS for browsers calling the API from a web page on another origin. Off unless the node is started with
 * `--cors ORIGIN` (a comma-separated list, or '*' for any origin): a page the operator did not name cannot
 * read the answers, and with '*' any page can (pair it with --api-key).
 *
 * With CORS on, every answer to an allowed Origin carries Access-Control-Allow-Origin (and `Vary: Origin`),
 * and a preflight (OPTIONS with Access-Control-Request-Method) is answered here with 204 and the methods
 * and headers the API takes, before routing and before the API key check (browsers send no credentials
 * on a preflight). A preflight from an origin not on the list gets 403. Without CORS, OPTIONS reaches the
 * router like any other method (405).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** How long a browser may cache a preflight's answer (seconds). */
export const PREFLIGHT_MAX_AGE_S = 600;
/** Headers a page may send when its preflight names none (a preflight that names some gets them back). */
const ALLOWED_HEADERS = 'authorization, content-type';
/** Headers a page may read besides the simple ones. */
const EXPOSED_HEADERS = 'retry-after, x-request-id';

/** Parses `--cors`: a comma-separated list of origins, or '*'. */
export function parseCorsOrigins(value: string): string[] {
  const origins = value.split(',').map((o) => o.trim()).filter((o) => o.length > 0);
  for (const origin of origins) {
    if (origin !== '*' && !/^https?:\/\/[^/\s]+$/.test(origin)) {
      throw new Error(`--cors: '${origin}' is not an origin; write it as scheme://host[:port] (e.g. http://localhost:5173), or '*'`);
    }
  }
  if (origins.length === 0) throw new Error("--cors needs an origin (e.g. http://localhost:5173) or '*'");
  return origins;
}

/**
 * Sets the CORS headers for `req` on `res`; returns true when it answered the request itself (a preflight),
 * false when the request goes on to the router.
 */
export function handleCors(req: IncomingMessage, res: ServerResponse, origins: readonly string[]): boolean {
  const origin = req.headers.origin;
  const allowed = origin !== undefined && (origins.includes('*') || origins.includes(origin));
  res.setHeader('vary', 'Origin');
  if (allowed) {
    res.setHeader('access-control-allow-origin', origins.includes('*') ? '*' : origin);
    res.setHeader('access-control-expose-headers', EXPOSED_HEADERS);
  }
  if (req.method !== 'OPTIONS' || req.headers['access-control-request-method'] === undefined) return false;
  if (!allowed) {
    res.writeHead(403, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(`origin ${origin ?? '(none)'} is not allowed; the node allows ${origins.join(', ')} (--cors)\n`);
    return true;
  }
  res.writeHead(204, {
    'access-control-allow-methods': 'GET, POST, OPTIONS',
    'access-control-allow-headers': req.headers['access-control-request-headers'] ?? ALLOWED_HEADERS,
    'access-control-max-age': String(PREFLIGHT_MAX_AGE_S),
  });
  res.end();
  return true;
}
