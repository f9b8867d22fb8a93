/**
 * Request bodies: read with a size limit (413 as soon as the declared or received size is above it, so a
 * huge body is never buffered), decoded as strict UTF-8 and parsed as JSON (400 invalid_json), with an
 * optional Content-Type check (415) for services whose clients are programs (the coordinator) rather
 * than hand-written curl lines (the API accepts curl's default form type).
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { HttpError } from './errors.ts';

export interface BodyLimit {
  /** Largest body in bytes. */
  maxBytes: number;
  /** What the 413 calls the body, e.g. 'manifest'. Default 'request body'. */
  label?: string;
  /** Where the limit is set, named in the 413, e.g. 'config.maxManifestBytes'. */
  setting?: string;
}

export interface JsonBodyRules {
  limit: BodyLimit;
  /** 415 unless the Content-Type is application/json. */
  requireJsonContentType: boolean;
}

/** The tighter of two limits (a route's own limit never raises the listener's). */
export function tighterLimit(listener: BodyLimit, route: BodyLimit | undefined): BodyLimit {
  return route === undefined || route.maxBytes >= listener.maxBytes ? listener : route;
}

/** Reads at most `limit.maxBytes` bytes of body; 413 as soon as the declared or received size is above it. */
export async function readBody(req: IncomingMessage, limit: BodyLimit): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? Number.NaN);
  if (declared > limit.maxBytes) throw tooLarge(limit, declared);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit.maxBytes) throw tooLarge(limit, size);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

function tooLarge(limit: BodyLimit, size: number): HttpError {
  const what = limit.label ?? 'request body';
  const setting = limit.setting === undefined ? '' : ` (${limit.setting})`;
  return new HttpError(413, 'payload_too_large', `${what} of ${size}+ bytes is above the limit of ${limit.maxBytes} bytes${setting}`, 'send a smaller body', {
    // The rest of the body is not read: do not reuse the connection for another request.
    connection: 'close',
  });
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const JSON_HINT = 'send a JSON object with Content-Type: application/json';

/** Reads the body as JSON under `rules`: 415, 413, then 400 invalid_json for empty, non-UTF-8 or non-JSON bodies. */
export async function readJson(req: IncomingMessage, rules: JsonBodyRules): Promise<unknown> {
  if (rules.requireJsonContentType) checkJsonContentType(req);
  return parseJson(await readBody(req, rules.limit));
}

export function checkJsonContentType(req: { readonly headers: IncomingHttpHeaders }): void {
  const contentType = req.headers['content-type'] ?? '';
  if (!/^application\/json\s*(;|$)/i.test(contentType)) {
    throw new HttpError(415, 'unsupported_media_type', `expected Content-Type application/json, got '${contentType}'`, JSON_HINT);
  }
}

/** Parses bytes as JSON (strict UTF-8); 400 invalid_json otherwise. */
export function parseJson(bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    throw new HttpError(400, 'invalid_json', 'request body is not valid UTF-8', 'send JSON encoded as UTF-8');
  }
  if (text.trim() === '') throw new HttpError(400, 'invalid_json', 'request body is empty', 'send a JSON object');
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new HttpError(400, 'invalid_json', `request body is not valid JSON: ${(error as Error).message}`, JSON_HINT);
  }
}
