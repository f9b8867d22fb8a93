/**
 * The specialist directory on a primary's API (added by `sharedllm node` through createApiServer's
 * extraRoutes, so the API key guards them like every other route):
 *
 * GET  /v1/specialists              -> 200 SpecialistList: THIS node's replica (each entry's version, status,
 *                                      serving nodes, source: 'local' or the peer it came from), plus `served`:
 *                                      the ids this node serves specialists under.
 * GET  /v1/specialists/:modelId     -> 200 SpecialistView. 404 not_found.
 * POST /v1/specialists              body: Manifest -> 201/200 AcceptResult (the coordinator's rules and codes).
 * POST /v1/specialists/revoke       body: Revocation -> 201/200 AcceptResult.
 *
 * Publishing here works while the coordinator is down: the entry is stored in this node's replica and gossip
 * carries it to the others (and to the coordinator when it is back). `sharedllm specialist publish --node-url`.
 */
import { z } from 'zod';
import { HttpError } from '../../http/index.ts';
import type { Router } from '../../http/index.ts';
import type { Logger } from '../../util/log.ts';
import { REFUSAL_STATUS } from '../coordinator/server-directory.ts';
import type { Directory } from '../directory/directory.ts';
import { lanConfig } from '../config.ts';
import { ManifestSchema, RevocationSchema } from '../protocol-directory.ts';
import type { AcceptResult, SpecialistView } from '../protocol-directory.ts';

export interface SpecialistRouteDeps {
  directory: Directory;
  /** The ids this node serves specialists under now. */
  served: () => string[];
  logger: Logger;
}

export function addSpecialistRoutes(router: Router, deps: SpecialistRouteDeps): void {
  const { directory, logger } = deps;
  const limits = { maxBytes: lanConfig().maxManifestBytes, label: 'directory entry', setting: 'config.maxManifestBytes' };

  const post = (schema: z.ZodType, what: string) => async (ctx: { json(options: typeof limits): Promise<unknown> }) => {
    const raw = await ctx.json(limits);
    const shape = schema.safeParse(raw);
    if (!shape.success) throw new HttpError(400, 'invalid_body', `invalid ${what}: ${z.prettifyError(shape.error)}`, 'the schemas are in src/federation/protocol-directory.ts (RFC-0006)');
    const outcome = directory.accept(raw, 'local');
    if (outcome.status === 'refused') throw new HttpError(REFUSAL_STATUS[outcome.code], outcome.code, outcome.reason, outcome.hint);
    if (outcome.status === 'stored') logger.info('directory_entry_stored', { key: outcome.key, kind: outcome.entry.kind, version: outcome.entry.version, via: 'api' });
    const body: AcceptResult = {
      status: outcome.status,
      key: outcome.key,
      version: outcome.entry.version,
      ...(outcome.status === 'stored' && outcome.replaced !== undefined ? { replaced: outcome.replaced.version } : {}),
    };
    return { status: outcome.status === 'stored' && outcome.replaced === undefined ? 201 : 200, body };
  };

  router.add('GET', '/v1/specialists', () => ({ body: { specialists: directory.views(), served: deps.served() } }));
  router.add('GET', '/v1/specialists/:id', (ctx) => {
    const modelId = ctx.params['id'] ?? '';
    const view = directory.view(modelId);
    if (view === undefined) throw new HttpError(404, 'not_found', `no specialist '${modelId.slice(0, 128)}' in this node's directory`, 'GET /v1/specialists lists them');
    const body: SpecialistView = view;
    return { body };
  });
  router.add('POST', '/v1/specialists', post(ManifestSchema, 'manifest'));
  router.add('POST', '/v1/specialists/revoke', post(RevocationSchema, 'revocation'));
}
