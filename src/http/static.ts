/**
 * Static files for web pages (the dashboards under web/, bundled at build time):
 *
 *   router.add('GET', '/dashboard/*', staticFiles({ root: '/path/to/web/dist' }));
 *
 * What is served: regular files under `root` and nothing else. Each segment of the path is decoded on its
 * own and refused when it could climb or hide ('..', '.', a separator or NUL inside a segment: 400), dot
 * files are not served (404), and the resolved real path (symlinks followed) must still be under the real
 * root (404 otherwise). A directory serves its index file. Answers carry a content type from the table
 * below (unknown extensions are application/octet-stream), `x-content-type-options: nosniff`, a weak ETag
 * (size and mtime) and Cache-Control; a matching If-None-Match gets 304 without a body.
 */
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { extname, isAbsolute, join, relative } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { HttpError } from './errors.ts';
import type { ResponseBody, ResponseContext, RouteHandler } from './router.ts';

/** Content types by extension, for what a web page is made of. */
export const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.wasm': 'application/wasm',
};

export function contentTypeFor(path: string): string {
  return CONTENT_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream';
}

export interface StaticFilesOptions {
  /** The directory served. Nothing outside it is ever read, through symlinks neither. */
  root: string;
  /** File served for a directory. Default 'index.html'. */
  index?: string;
  /**
   * Cache-Control of every answer. Default 'no-cache': the browser keeps the file but revalidates it with
   * its ETag each time (a cheap 304), right for pages rebuilt in place. Content-hashed bundles can use
   * 'public, max-age=31536000, immutable'.
   */
  cacheControl?: string;
}

/** A route handler serving `root` under a wildcard route ('/prefix/*'). */
export function staticFiles(options: StaticFilesOptions): RouteHandler {
  const index = options.index ?? 'index.html';
  const cacheControl = options.cacheControl ?? 'no-cache';
  return async (ctx) => {
    const segments = safeSegments(ctx.params['*'] ?? '');
    const found = await findFile(options.root, segments, index);
    const shown = `/${segments.join('/')}`;
    if (found === undefined) throw new HttpError(404, 'not_found', `no file ${shown}`, 'check the path');
    const etag = `W/"${found.stats.size.toString(16)}-${Math.floor(found.stats.mtimeMs).toString(16)}"`;
    const headers: Record<string, string> = { etag, 'cache-control': cacheControl };
    if (matchesEtag(ctx.req.headers['if-none-match'], etag)) return { body: new FileBody(found.path, 304, headers) };
    return {
      body: new FileBody(found.path, 200, {
        ...headers,
        'content-type': contentTypeFor(found.path),
        'content-length': String(found.stats.size),
        'last-modified': found.stats.mtime.toUTCString(),
        'x-content-type-options': 'nosniff',
      }),
    };
  };
}

/**
 * Decodes each segment of the still-encoded rest of the path and refuses any that could leave the root
 * or name something else than a plain file name.
 */
export function safeSegments(rest: string): string[] {
  const segments: string[] = [];
  for (const raw of rest.split('/')) {
    if (raw === '') continue;
    let segment: string;
    try {
      segment = decodeURIComponent(raw);
    } catch {
      throw badPath(raw, 'is not valid percent-encoding');
    }
    if (segment === '.' || segment === '..') throw badPath(raw, 'climbs the directory tree');
    if (/[/\\\0]/.test(segment)) throw badPath(raw, 'holds a path separator or NUL');
    if (segment.startsWith('.')) throw new HttpError(404, 'not_found', `no file '${segment}'`, 'dot files are not served');
    segments.push(segment);
  }
  return segments;
}

function badPath(segment: string, why: string): HttpError {
  return new HttpError(400, 'bad_request', `path segment '${segment}' ${why}`, 'ask for a file under the served directory');
}

/** The real path and stats of the file to serve, or undefined (missing, outside the root, not a file). */
async function findFile(root: string, segments: string[], index: string): Promise<{ path: string; stats: Stats } | undefined> {
  let realRoot: string;
  try {
    realRoot = await realpath(root);
  } catch {
    return undefined;
  }
  const candidate = join(realRoot, ...segments);
  if (!isInside(realRoot, candidate)) return undefined;
  const found = await realFile(realRoot, candidate);
  if (found === undefined || found.stats.isFile()) return found;
  if (!found.stats.isDirectory()) return undefined;
  const indexed = await realFile(realRoot, join(found.path, index));
  return indexed?.stats.isFile() === true ? indexed : undefined;
}

async function realFile(realRoot: string, path: string): Promise<{ path: string; stats: Stats } | undefined> {
  try {
    const real = await realpath(path);
    // A symlink that points out of the root is treated as missing.
    if (!isInside(realRoot, real)) return undefined;
    return { path: real, stats: await stat(real) };
  } catch {
    return undefined;
  }
}

function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** If-None-Match: '*' or a list of tags; weak comparison (W/ prefixes ignored), as RFC 9110 asks for GET. */
function matchesEtag(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const strip = (tag: string) => tag.trim().replace(/^W\//, '');
  return header.split(',').some((tag) => tag.trim() === '*' || strip(tag) === strip(etag));
}

/** A file (or a 304) as a response body; the file is streamed, never read whole. */
export class FileBody implements ResponseBody {
  constructor(
    readonly path: string,
    readonly status: number,
    readonly headers: Record<string, string>,
  ) {}

  async writeTo(res: ServerResponse, context: ResponseContext): Promise<void> {
    res.writeHead(this.status, this.headers);
    if (this.status === 304 || context.req.method === 'HEAD') {
      res.end();
      return;
    }
    try {
      await pipeline(createReadStream(this.path), res);
    } catch (error) {
      // A client that hangs up mid-file is not a server error; a file that cannot be read is.
      if ((error as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') throw error;
    }
  }
}
