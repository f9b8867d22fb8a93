/**
 * `Authorization: Bearer <token>` checking. The comparison is constant-time and hashes both sides first,
 * so it leaks neither the token nor its length. The wording of the 401 is the service's (a join token for
 * the coordinator, an API key for the OpenAI API); the challenge header is the same everywhere.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { HttpError } from './errors.ts';

export interface BearerWording {
  /** Error code of both refusals. Default 'unauthorized'. */
  code?: string;
  /** No (well-formed) Authorization header. */
  missing: { message: string; hint: string };
  /** A token, but not the expected one. */
  wrong: { message: string; hint: string };
}

const CHALLENGE = { 'www-authenticate': 'Bearer realm="sharedllm"' };

/** What the check reads of a request (an IncomingMessage is one). */
export interface WithHeaders {
  readonly headers: IncomingHttpHeaders;
}

/** The token of `Authorization: Bearer <token>` (trimmed), or undefined when there is none. */
export function bearerToken(req: WithHeaders): string | undefined {
  const match = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
  return match === null ? undefined : match[1]!.trim();
}

/** True when the two strings are equal; the time taken depends on neither. */
export function tokensEqual(actual: string, expected: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();
  return timingSafeEqual(digest(actual), digest(expected));
}

/** Throws a 401 (with a Bearer challenge) unless the request carries `expected` as its bearer token. */
export function checkBearer(req: WithHeaders, expected: string, wording: BearerWording): void {
  const code = wording.code ?? 'unauthorized';
  const token = bearerToken(req);
  if (token === undefined) throw new HttpError(401, code, wording.missing.message, wording.missing.hint, CHALLENGE);
  if (!tokensEqual(token, expected)) throw new HttpError(401, code, wording.wrong.message, wording.wrong.hint, CHALLENGE);
}
