/**
 * The mixture's glass-box trail in the API.
 *
 * In answers: streamed chunks of a mixture carry `sharedllm: { attribution: [{ model, share }] }` (the
 * token's shares, summing to 1); a non-streamed choice carries `sharedllm: { attribution: [[…], …] }`, one
 * list per generated token.
 *
 * Stored: every completion's trails (one per choice) are kept on this primary (attributions-store.ts, for
 * `--attribution-retention`, default 24 h) under the completion's id and its caller, and served to that
 * caller only (anyone else gets the same 404 as for an id that never existed):
 *
 * GET    /v1/attributions/:id   -> { id, object: 'attribution', created, model, choices: [{ index, mode,
 *                                   routed, not_routed, dropped, tokens: [{ token, attribution, weights }] }] }
 * DELETE /v1/attributions/:id   -> { id, object: 'attribution', deleted: true }   (the caller's own trail)
 * DELETE /v1/attributions       -> { object: 'list', deleted: n }                  (all of the caller's trails)
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { type Router, bearerToken } from '../http/index.ts';
import type { MixtureTrail, ModelShare } from '../model/mixture/trail.ts';
import { ApiError } from './errors.ts';
import { callerOf } from './users.ts';
import type { ApiEngine, FinishedGeneration } from './generation.ts';
import type { AttributionStore, StoredAttribution } from './attributions-store.ts';

/** The `sharedllm` field of a chunk or a choice, or nothing for a model that is not a mixture. */
export function sharedllmField(attribution: readonly ModelShare[] | readonly (readonly ModelShare[])[] | undefined): { sharedllm?: { attribution: unknown } } {
  return attribution === undefined ? {} : { sharedllm: { attribution } };
}

/** Hands a finished completion's trails to its model (a mixture keeps them); nothing for other models. */
export function recordTrails(engine: Pick<ApiEngine, 'recordTrails'>, completionId: string, results: readonly FinishedGeneration[]): void {
  if (engine.recordTrails === undefined) return;
  const trails = results.map((r) => r.trail).filter((t): t is MixtureTrail => t !== undefined);
  if (trails.length === results.length) engine.recordTrails(completionId, trails);
}

/**
 * Who owns a trail: the caller's identity as a string. Default: a digest of the request's bearer token (a
 * node without keys has one anonymous caller). With per-user keys, pass the users' caller (users.ts).
 */
export type OwnerOf = (req: IncomingMessage) => string;

/** The owner string of a user's trails. */
export const userOwner = (userId: string): string => `user:${userId}`;

export const ownerFromBearer: OwnerOf = (req) => {
  // A user (per-user key, users.ts) owns their trails by id, so deleting the user can delete them too.
  const caller = callerOf(req);
  if (caller.kind === 'user') return userOwner(caller.userId);
  const token = bearerToken(req);
  return token === undefined ? 'anonymous' : `key:${createHash('sha256').update(token, 'utf8').digest('hex').slice(0, 32)}`;
};

function notFound(id: string): ApiError {
  return new ApiError(404, `no attribution trail '${id}' for this caller`, {
    code: 'attribution_not_found',
    param: 'completion_id',
    hint: 'trails are kept for the caller who made the completion, for a limited time (--attribution-retention)',
  });
}

function view(a: StoredAttribution) {
  return {
    id: a.id,
    object: 'attribution',
    created: a.created,
    model: a.model,
    choices: a.trails.map((t, index) => ({ index, mode: t.mode, routed: t.routed, not_routed: t.notRouted, dropped: t.dropped, tokens: t.tokens })),
  };
}

/** The routes (server.ts's `extraRoutes`). */
export function attributionRoutes(store: AttributionStore, ownerOf: OwnerOf = ownerFromBearer): (router: Router) => void {
  return (router) => {
    router.add('GET', '/v1/attributions/:id', (ctx) => {
      const id = ctx.params.id ?? '';
      const found = store.get(id, ownerOf(ctx.req));
      if (found === undefined) throw notFound(id);
      return { body: view(found) };
    });
    router.add('DELETE', '/v1/attributions/:id', (ctx) => {
      const id = ctx.params.id ?? '';
      if (!store.delete(id, ownerOf(ctx.req))) throw notFound(id);
      return { body: { id, object: 'attribution', deleted: true } };
    });
    router.add('DELETE', '/v1/attributions', (ctx) => ({ body: { object: 'list', deleted: store.deleteOwner(ownerOf(ctx.req)) } }));
  };
}
