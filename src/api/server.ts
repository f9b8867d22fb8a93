/**
 * The OpenAI-compatible HTTP API a primary node serves to users.
 *
 * Plain HTTP, or HTTPS with `tls` (the shared listener's server).
 *
 * GET  /health                 No auth. -> { status: 'ok', model, active, queued, maxConcurrent }
 * GET  /v1/models              -> { object: 'list', data: [{ id, object: 'model', created, owned_by }] }
 * GET  /v1/models/:id          -> the model, or 404 model_not_found
 * POST /v1/chat/completions    chat.ts (streaming with `stream: true`)
 * POST /v1/completions         completions.ts
 * POST /v1/responses          responses.ts (OpenAI's Responses API, text in and out, streaming included)
 * POST /v1/embeddings          embeddings.ts (mean-pooled final hidden states after the final norm, unit length)
 * GET  /metrics               metrics.ts (Prometheus text format; federation figures from GET /v1/federation)
 * + whatever `extraRoutes` adds (the node's status, e.g. GET /v1/federation).
 * GET  /, /catalogue, /ui/*, /v1/dashboard/live   the dashboard (src/web/dashboard.ts; the pages need no key)
 * With `corsOrigins`, CORS headers and preflights (cors.ts); without, none.
 *
 * Every error is `{ error: { message, type, param, code } }` with its status (errors.ts). With `apiKey`,
 * every route but /health needs `Authorization: Bearer <apiKey>` (401 otherwise). Bodies above
 * `maxBodyBytes` are refused with 413. At most `maxConcurrent` requests generate at once; up to `maxQueued`
 * more wait; beyond that 429 with Retry-After. close() stops listening, ends the generations in flight
 * (streams get an error frame, waiting requests 503), waits until every sequence is closed, and returns,
 * so the caller may then dispose the model. drain(graceMs) is the orderly way there (SIGTERM): every new
 * request, /health included, gets 503 at once (with `Connection: close`, so clients reconnect elsewhere),
 * the requests in flight get up to graceMs to finish, then close().
 */
import { setMaxListeners } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type HttpMethod, type RouteHandler, Router, createServer } from '../http/index.ts';
import type { Logger } from '../util/log.ts';
import { silentLogger } from '../util/log.ts';
import type { Generator } from '../model/generator.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import { chatCompletionsRoute } from './chat.ts';
import { completionsRoute } from './completions.ts';
import { handleCors } from './cors.ts';
import { embeddingsRoute } from './embeddings.ts';
import { responsesRoute } from './responses.ts';
import { ApiError } from './errors.ts';
import type { ApiService } from './generation.ts';
import { unixSeconds } from './generation.ts';
import { createApiListener } from './http.ts';
import { ConcurrencyLimiter } from './limiter.ts';
import { ApiMetrics, metricsRoute } from './metrics.ts';
import { ModelCatalog, type ModelSource, type ServedModel } from './models.ts';
import { addDashboardRoutes, isPublicDashboardPath } from '../web/dashboard.ts';
import { primarySnapshot } from '../web/snapshots.ts';
import type { UserDirectory } from './users.ts';

export interface ApiServerOptions {
  /** Wraps a Batcher over a Forward: a local model or a pipeline across nodes. */
  generator: Generator;
  tokenizer: Tokenizer;
  /** The id shown in /v1/models and required in requests, e.g. the GGUF file name without extension. */
  modelId: string;
  /** Models served beside `modelId` (specialists, adapters, the mixture): see models.ts. */
  models?: readonly ModelSource[];
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 8080; 0 picks any free port (see the returned `port`). */
  port?: number;
  /** When set, requests need `Authorization: Bearer <apiKey>` or a user's key (not /health). */
  apiKey?: string;
  /** Per-user keys (users.ts; the adapters' store): a request with one is that user's (callerOf). */
  users?: UserDirectory;
  /** JSON lines (src/federation/coordinator/log.ts); default silent. */
  logger?: Logger;
  /** Adds routes (same Router and handler style as the coordinator), e.g. GET /v1/federation. */
  extraRoutes?: (router: Router) => void;
  /** Requests generating at once. Default 4. */
  maxConcurrent?: number;
  /** Requests waiting for a generation slot before new ones get 429. Default 4 x maxConcurrent. */
  maxQueued?: number;
  /** Largest request body in bytes (413 above). Default 8 MiB. */
  maxBodyBytes?: number;
  /** Origins allowed to call the API from a browser ('*' for any); default none: no CORS headers (cors.ts). */
  corsOrigins?: readonly string[];
  /** Serve HTTPS with this PEM pair (contents); default plain HTTP. */
  tls?: { cert: string | Buffer; key: string | Buffer };
}

export interface ApiServer {
  /** The models served; features may add sources after start (catalog.add). */
  catalog: ModelCatalog;
  /** e.g. 'http://127.0.0.1:8080' (OpenAI clients take `${url}/v1` as their base URL). */
  url: string;
  port: number;
  /** Stops listening, ends the generations in flight, resolves once every sequence is closed. */
  close(): Promise<void>;
  /**
   * Refuses new requests with 503, lets the ones in flight finish for up to `graceMs`, then close().
   * Idempotent: a later call waits for the same close.
   */
  drain(graceMs: number): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Paths that need no API key: /health, and the dashboard's page shells and files (they hold no data). */
const PUBLIC_PATHS = { has: (pathname: string) => pathname === '/health' || isPublicDashboardPath(pathname) };

export async function createApiServer(opts: ApiServerOptions): Promise<ApiServer> {
  const logger = opts.logger ?? silentLogger;
  const maxConcurrent = opts.maxConcurrent ?? 4;
  const catalog = new ModelCatalog({ id: opts.modelId, generator: opts.generator, tokenizer: opts.tokenizer, nCtx: opts.generator.batcher.forward.nCtx });
  for (const source of opts.models ?? []) catalog.add(source);
  const engine: ApiService = {
    catalog,
    limiter: new ConcurrencyLimiter(maxConcurrent, opts.maxQueued ?? 4 * maxConcurrent),
    createdAt: unixSeconds(),
    metrics: new ApiMetrics(),
  };

  // Once draining, every route refuses with 503 before it runs (the routes of extraRoutes too).
  let draining = false;
  // The route pattern that served each request, for the metrics ('unmatched' when none did).
  const routeOf = new WeakMap<IncomingMessage, string>();
  const router = new AdmissionRouter(() => (draining ? shuttingDown() : undefined), routeOf);
  router.add('GET', '/health', () => ({
    body: { status: 'ok', model: catalog.base.id, active: engine.limiter.active, queued: engine.limiter.queued, maxConcurrent },
  }));
  router.add('GET', '/v1/models', (ctx) => ({ body: { object: 'list', data: catalog.list(ctx.req).map((m) => modelCard(m, engine.createdAt)) } }));
  router.add('GET', '/v1/models/:id', (ctx) => ({ body: modelCard(catalog.resolve(ctx.params.id ?? '', ctx.req), engine.createdAt) }));
  router.add('POST', '/v1/chat/completions', chatCompletionsRoute(engine));
  router.add('POST', '/v1/completions', completionsRoute(engine));
  router.add('POST', '/v1/embeddings', embeddingsRoute(engine));
  router.add('POST', '/v1/responses', responsesRoute(engine));
  router.add('GET', '/metrics', metricsRoute(engine.metrics, engine.limiter, router));
  opts.extraRoutes?.(router);
  // The dashboard (src/web): GET / is the playground and pipeline page; its live stream reads the routes above.
  addDashboardRoutes(router, { home: 'primary', snapshot: primarySnapshot(router) });

  const shutdown = new AbortController();
  // Every request in flight listens on it; no "possible leak" warning past 10.
  setMaxListeners(0, shutdown.signal);
  const inFlight = new Set<Promise<void>>();
  const listener = createApiListener({
      router,
      logger,
      maxBodyBytes: opts.maxBodyBytes ?? 8 << 20,
      ...(opts.apiKey === undefined ? {} : { apiKey: opts.apiKey }),
      ...(opts.users === undefined ? {} : { users: opts.users }),
      publicPaths: PUBLIC_PATHS,
      shutdown: shutdown.signal,
      track: (done) => {
        inFlight.add(done);
        void done.then(
          () => inFlight.delete(done),
          (error: unknown) => {
            inFlight.delete(done);
            logger.error('api_unhandled', { error });
          },
        );
      },
  });
  const corsOrigins = opts.corsOrigins ?? [];
  const server = createServer((req, res) => {
    // 'finish' when the answer is all written, 'close' alone when the client left first: count once.
    let counted = false;
    const count = () => {
      if (counted) return;
      counted = true;
      engine.metrics.request(routeOf.get(req) ?? 'unmatched', res.statusCode);
    };
    res.once('finish', count).once('close', count);
    if (corsOrigins.length > 0 && handleCors(req, res, corsOrigins)) return;
    listener(req, res);
  }, opts.tls);
  // A malformed request line or headers never reach the listener: node answers 400 (431 for oversized
  // headers) and drops the socket, which is what we want.

  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 8080, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `${opts.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  logger.info('api_listening', { url, model: catalog.base.id, nCtx: catalog.base.nCtx, maxConcurrent, auth: opts.apiKey !== undefined });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      draining = true;
      engine.limiter.close(shuttingDown());
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      shutdown.abort(shuttingDown());
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
      server.closeAllConnections();
      await closed;
      logger.info('api_closed', { url });
    })();
    return closing;
  };
  let drained: Promise<void> | undefined;
  const drain = (graceMs: number): Promise<void> => {
    drained ??= (async () => {
      draining = true;
      engine.limiter.close(shuttingDown());
      logger.info('api_draining', { url, inFlight: inFlight.size, graceMs });
      await settledWithin(inFlight, graceMs);
      await close();
    })();
    return drained;
  };
  return { url, port, catalog, close, drain, [Symbol.asyncDispose]: close };
}

/** The 503 of a server that is shutting down. */
function shuttingDown(): ApiError {
  return new ApiError(503, 'the server is shutting down', { hint: 'retry against another primary node', headers: { connection: 'close', 'retry-after': '1' } });
}

/**
 * A Router that asks `refusal` before every route (a returned error is thrown instead of running the route)
 * and notes which route served each request.
 */
class AdmissionRouter extends Router {
  constructor(
    private readonly refusal: () => ApiError | undefined,
    private readonly routeOf: WeakMap<IncomingMessage, string>,
  ) {
    super();
  }

  override add(method: HttpMethod, pattern: string, handler: RouteHandler): this {
    return super.add(method, pattern, (ctx) => {
      // The first route a request reaches names it (GET /metrics calls GET /v1/federation's handler too).
      if (!this.routeOf.has(ctx.req)) this.routeOf.set(ctx.req, `${method} ${pattern}`);
      const refused = this.refusal();
      if (refused !== undefined) throw refused;
      return handler(ctx);
    });
  }
}

/** Resolves when every promise in `pending` (a live set: finished ones leave it) settled, or after `ms`. */
async function settledWithin(pending: ReadonlySet<Promise<void>>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeUp = new Promise<'time'>((resolve) => (timer = setTimeout(() => resolve('time'), ms)));
  try {
    while (pending.size > 0) {
      if ((await Promise.race([Promise.allSettled([...pending]), timeUp])) === 'time') return;
    }
  } finally {
    clearTimeout(timer);
  }
}

function modelCard(model: ServedModel, createdAt: number) {
  return { id: model.id, object: 'model', created: createdAt, owned_by: model.ownedBy ?? 'sharedllm' };
}
