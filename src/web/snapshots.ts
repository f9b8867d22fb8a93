/**
 * What the live stream sends: one snapshot of a node, read through the node's own routes (the same answers
 * a client of /v1 gets, so the page never shows anything the caller could not read), validated with the
 * page's schemas (wire.ts) before it leaves. A route this node lacks (a feature not merged, a primary serving
 * alone) gives null for its part, which the page shows as "not available on this node".
 */
import type { RequestContext, RouteHandler, Router } from '../http/index.ts';
import { z } from 'zod';
import {
  type CoordinatorSnapshot,
  FederationViewSchema,
  NodeCardSchema,
  type PrimarySnapshot,
  SpecialistCardSchema,
  trainingJobsOf,
} from './wire.ts';

/** GET `path` through `router` with the live request's context; undefined when no such route. */
async function readRoute(router: Router, ctx: RequestContext, path: string): Promise<unknown> {
  let handler: RouteHandler;
  let params: Record<string, string>;
  try {
    ({ handler, params } = router.match('GET', path));
  } catch {
    return undefined;
  }
  const url = new URL(path, ctx.url);
  return (await handler({ ...ctx, url, params, query: {}, json: (limit) => ctx.json(limit) })).body;
}

/** Parses `value` or throws, naming the route (the live stream then ends with an error frame). */
function parse<T>(schema: z.ZodType<T>, value: unknown, route: string): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new Error(`${route} answered a shape the dashboard does not know: ${z.prettifyError(result.error)}`);
  return result.data;
}

export function coordinatorSnapshot(router: Router): (ctx: RequestContext) => Promise<CoordinatorSnapshot> {
  return async (ctx) => {
    const [health, nodes, specialists] = await Promise.all([
      readRoute(router, ctx, '/health'),
      readRoute(router, ctx, '/v1/nodes'),
      readRoute(router, ctx, '/v1/specialists'),
    ]);
    const h = parse(z.object({ version: z.string(), uptimeMs: z.number() }).loose(), health, '/health');
    const cards = parse(z.object({ nodes: z.array(NodeCardSchema) }), nodes, '/v1/nodes').nodes;
    return {
      kind: 'coordinator',
      at: Date.now(),
      version: h.version,
      uptimeMs: h.uptimeMs,
      nodes: cards,
      specialists: specialists === undefined ? [] : parse(z.object({ specialists: z.array(SpecialistCardSchema) }), specialists, '/v1/specialists').specialists,
      // DiLoCo jobs publish themselves as a model ref of their server (diloco/job-ref.ts): no route of their own.
      jobs: trainingJobsOf(cards),
    };
  };
}

export function primarySnapshot(router: Router): (ctx: RequestContext) => Promise<PrimarySnapshot> {
  return async (ctx) => {
    const [federation, health] = await Promise.all([readRoute(router, ctx, '/v1/federation'), readRoute(router, ctx, '/health')]);
    const h = z.object({ model: z.string(), active: z.number(), queued: z.number(), maxConcurrent: z.number() }).loose().safeParse(health);
    return {
      kind: 'primary',
      at: Date.now(),
      federation: federation === undefined ? null : parse(FederationViewSchema, federation, '/v1/federation'),
      health: h.success ? h.data : null,
    };
  };
}
