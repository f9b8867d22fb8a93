/**
 * The dashboards, served by the nodes themselves on the shared HTTP layer. Each listener that shows one
 * adds these routes (the coordinator through `sharedllm coordinator`, the primary in api/server.ts):
 *
 * GET /                      the node's page: 'coordinator' (the federation) or 'primary' (chat playground,
 *                            pipeline, the signed-in user's adapters and audit log). No auth: the page holds
 *                            no data; it asks the API for it with the caller's key.
 * GET /catalogue             the bets catalogue (experiments/bets/SUMMARY.md with its plots)
 * GET /ui/*                  the page bundle (dist/webui, built by scripts/build.mjs with esbuild)
 * GET /ui/bets/SUMMARY.md, /ui/bets/plots/*, /ui/privacy.md   the catalogue and docs/privacy.md, when present
 * GET /v1/dashboard/live     server-sent events: one snapshot of what the page shows (wire.ts) every
 *                            DASHBOARD.liveIntervalMs while it changes; under /v1, so the node's join token
 *                            or API key guards it like every other data route.
 *
 * Pages are static HTML shells with a strict Content-Security-Policy: no inline script, scripts and data
 * from this origin only, nothing framed. The bundle lives under the package root in both layouts (sources
 * run through tsx, dist/ compiled): two folders up from this file.
 */
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { FileBody, HttpError, SseStream, contentTypeFor, staticFiles } from '../http/index.ts';
import type { RequestContext, ResponseBody, Router } from '../http/index.ts';

export const DASHBOARD = {
  /** How often the live stream looks for a change (a snapshot is sent only when it differs). */
  liveIntervalMs: 1_000,
  /** A snapshot is sent at least this often even when nothing changed (the page shows it is still live). */
  liveKeepAliveMs: 15_000,
  /** A live stream ends after this long and the page reconnects: bounds what a forgotten tab holds. */
  liveMaxMs: 10 * 60_000,
} as const;

/** The package root: src/web/ and dist/web/ both sit two folders below it. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Where scripts/build.mjs writes the page bundle. */
export const WEB_BUNDLE_DIR = `${ROOT}dist/webui`;
const BETS_DIR = `${ROOT}experiments/bets`;
const PRIVACY_FILE = `${ROOT}docs/privacy.md`;

export type HomePage = 'coordinator' | 'primary';
export type PageName = HomePage | 'catalogue';

export interface DashboardOptions {
  /** Which page GET / serves. */
  home: HomePage;
  /** The snapshot the live stream sends (wire.ts: CoordinatorSnapshotSchema or PrimarySnapshotSchema). */
  snapshot: (ctx: RequestContext) => Promise<object>;
  /** Where the bundle is (default WEB_BUNDLE_DIR); tests may build one elsewhere. */
  bundleDir?: string;
}

/** Paths of these routes that need no key (the page shells and their files hold no one's data). */
export function isPublicDashboardPath(pathname: string): boolean {
  return pathname === '/' || pathname === '/catalogue' || pathname.startsWith('/ui/');
}

export function addDashboardRoutes(router: Router, options: DashboardOptions): void {
  const bundleDir = options.bundleDir ?? WEB_BUNDLE_DIR;
  router.add('GET', '/', () => ({ body: new HtmlPage(pageHtml(options.home, bundleDir)) }));
  router.add('GET', '/catalogue', () => ({ body: new HtmlPage(pageHtml('catalogue', bundleDir)) }));
  router.add('GET', '/ui/bets/SUMMARY.md', () => ({ body: fileOr404(`${BETS_DIR}/SUMMARY.md`, 'the catalogue (experiments/bets/SUMMARY.md) is not in this install') }));
  router.add('GET', '/ui/privacy.md', () => ({ body: fileOr404(PRIVACY_FILE, 'docs/privacy.md is not in this install') }));
  router.add('GET', '/ui/bets/plots/*', staticFiles({ root: `${BETS_DIR}/plots` }));
  router.add('GET', '/ui/*', staticFiles({ root: bundleDir }));
  router.add('GET', '/v1/dashboard/live', (ctx) => ({ body: new SseStream(liveSnapshots(ctx, options.snapshot)) }));
}

/** Snapshots while the client stays: the first at once, then each change (or a keep-alive). */
async function* liveSnapshots(ctx: RequestContext, snapshot: (ctx: RequestContext) => Promise<object>): AsyncGenerator<object> {
  const started = Date.now();
  let last = '';
  let sentAt = 0;
  while (!ctx.signal.aborted && Date.now() - started < DASHBOARD.liveMaxMs) {
    const value = await snapshot(ctx);
    // A change is a change of what the page shows, not of the clock.
    const text = JSON.stringify({ ...value, at: 0, uptimeMs: 0 });
    const now = Date.now();
    if (text !== last || now - sentAt >= DASHBOARD.liveKeepAliveMs) {
      last = text;
      sentAt = now;
      yield value;
    }
    await sleep(DASHBOARD.liveIntervalMs, ctx.signal);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

function fileOr404(path: string, missing: string): ResponseBody {
  if (!existsSync(path)) throw new HttpError(404, 'not_found', missing, 'the page shows what it can without it');
  return new LazyFile(path);
}

/** A file found at request time (its size and mtime read then), served like static.ts serves one. */
class LazyFile implements ResponseBody {
  constructor(private readonly path: string) {}

  async writeTo(res: ServerResponse, context: Parameters<ResponseBody['writeTo']>[1]): Promise<void> {
    const stats = await stat(this.path);
    const headers = {
      'content-type': contentTypeFor(this.path) === 'application/octet-stream' ? 'text/markdown; charset=utf-8' : contentTypeFor(this.path),
      'content-length': String(stats.size),
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
    };
    await new FileBody(this.path, 200, headers).writeTo(res, context);
  }
}

/** Content-Security-Policy of the pages: this origin only, no inline script, no framing. */
export const PAGE_CSP = [
  "default-src 'self'",
  // Vega (the loss curves) compiles its expressions with Function(): allowed, inline scripts still are not.
  "script-src 'self' 'unsafe-eval'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

const TITLES: Record<PageName, string> = {
  coordinator: 'SharedLLM · federation',
  primary: 'SharedLLM · playground',
  catalogue: 'SharedLLM · bets catalogue',
};

/** The shell of a page: the bundle mounts into #app; without a bundle it says how to build one. */
export function pageHtml(page: PageName, bundleDir: string = WEB_BUNDLE_DIR): string {
  const built = existsSync(`${bundleDir}/app.js`);
  const body = built
    ? '<div id="app"><p class="boot">Loading…</p></div><noscript>This dashboard needs JavaScript; the same data is at /v1 as JSON.</noscript>'
    : '<main class="unbuilt"><h1>The dashboard is not built</h1><p>Run <code>npm run build</code> in the SharedLLM folder (it bundles the pages into dist/webui), then reload. The JSON API works without it.</p></main>';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<link rel="icon" href="data:,">
<title>${TITLES[page]}</title>
${built ? '<link rel="stylesheet" href="/ui/app.css">\n<script type="module" src="/ui/app.js"></script>' : ''}
</head>
<body data-page="${page}">
${body}
</body>
</html>
`;
}

/** An HTML answer with the page's security headers. */
export class HtmlPage implements ResponseBody {
  constructor(readonly html: string) {}

  async writeTo(res: ServerResponse): Promise<void> {
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-length': String(Buffer.byteLength(this.html)),
      'content-security-policy': PAGE_CSP,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-cache',
    });
    res.end(this.html);
  }
}
