/**
 * The coordinator's RFC-0006 directory routes (the route table is at the top of server.ts). The coordinator
 * is one directory participant: its replica is persistent (the store's SQLite database), publishers post to
 * it, and nodes reconcile with it by the same anti-entropy exchange they use between themselves.
 */
import type { Router } from '../../http/index.ts';
import { API_PREFIX, PROTOCOL_VERSION } from '../protocol.ts';
import { ManifestSchema, RevocationSchema, ServingRecordSchema } from '../protocol-directory.ts';
import type { ErrorCode } from '../protocol.ts';
import type { AcceptResult, GossipResponse, Manifest, ManifestList, SpecialistList, SpecialistView } from '../protocol-directory.ts';
import type { Logger } from '../../util/log.ts';
import type { FederationConfig } from '../config.ts';
import type { Directory } from '../directory/directory.ts';
import type { AcceptOutcome } from '../directory/directory.ts';
import { GossipError } from '../directory/gossip.ts';
import type { GossipNode } from '../directory/gossip.ts';
import { CoordinatorError } from './http.ts';
import { verifyBody } from '../identity.ts';
import { z } from 'zod';

export interface DirectoryRouteDeps {
  directory: Directory;
  gossip: GossipNode;
  config: FederationConfig;
  logger: Logger;
}

/** HTTP status of each refusal: a bad entry is 400, a rule of the directory 409, a cap 403. */
export const REFUSAL_STATUS: Record<Extract<AcceptOutcome, { status: 'refused' }>['code'], number> = {
  invalid_body: 400,
  invalid_signature: 400,
  manifest_conflict: 409,
  stale_version: 409,
  revoked: 409,
  unknown_specialist: 409,
  quota_exceeded: 403,
};

export function addDirectoryRoutes(router: Router, deps: DirectoryRouteDeps): void {
  const { directory, gossip, config, logger } = deps;
  const limits = { maxBytes: config.maxManifestBytes, label: 'directory entry', setting: 'config.maxManifestBytes' };

  /** Parses with the route's schema (a clear 400 naming the fields), then lets the directory decide. */
  const post = (schema: z.ZodType, what: string) => async (ctx: { json(options: typeof limits): Promise<unknown> }) => {
    const raw = await ctx.json(limits);
    const shape = schema.safeParse(raw);
    if (!shape.success) {
      throw new CoordinatorError(400, 'invalid_body', `invalid ${what}: ${z.prettifyError(shape.error)}`, 'the schemas are in src/federation/protocol.ts (RFC-0006)');
    }
    const outcome = directory.accept(raw, 'local');
    if (outcome.status === 'refused' && outcome.code === 'invalid_signature') explainUnknownFields(raw, shape.data);
    if (outcome.status === 'refused') {
      const code: ErrorCode = outcome.code; // every refusal code is a protocol error code
      throw new CoordinatorError(REFUSAL_STATUS[outcome.code], code, outcome.reason, outcome.hint);
    }
    const body: AcceptResult = {
      status: outcome.status,
      key: outcome.key,
      version: outcome.entry.version,
      ...(outcome.status === 'stored' && outcome.replaced !== undefined ? { replaced: outcome.replaced.version } : {}),
    };
    if (outcome.status === 'stored') logger.info('directory_entry_stored', { key: outcome.key, kind: outcome.entry.kind, version: outcome.entry.version, replaced: outcome.replaced?.version });
    return { status: outcome.status === 'stored' && outcome.replaced === undefined ? 201 : 200, body };
  };

  router.add('GET', `${API_PREFIX}/specialists`, () => {
    const body: SpecialistList = { specialists: directory.views() };
    return { body };
  });
  router.add('GET', `${API_PREFIX}/specialists/:id`, (ctx) => {
    const modelId = ctx.params['id'] ?? '';
    const view = directory.view(modelId);
    if (view === undefined) throw new CoordinatorError(404, 'not_found', `no specialist '${modelId.slice(0, 128)}'`, 'GET /v1/specialists lists them');
    const body: SpecialistView = view;
    return { body };
  });
  router.add('POST', `${API_PREFIX}/specialists`, post(ManifestSchema, 'manifest'));
  router.add('POST', `${API_PREFIX}/specialists/revoke`, post(RevocationSchema, 'revocation'));
  router.add('POST', `${API_PREFIX}/specialists/serving`, post(ServingRecordSchema, 'serving record'));

  router.add('POST', `${API_PREFIX}/directory/exchange`, async (ctx) => {
    const raw = await ctx.json();
    const from = typeof raw === 'object' && raw !== null && 'from' in raw && typeof raw.from === 'string' ? raw.from.slice(0, 64) : 'unknown';
    try {
      const body: GossipResponse = gossip.handle(from, raw);
      return { body };
    } catch (error) {
      if (!(error instanceof GossipError)) throw error;
      throw new CoordinatorError(error.code === 'rate_limited' ? 429 : 400, error.code === 'rate_limited' ? 'rate_limited' : 'invalid_body', error.message, error.hint);
    }
  });

  // Version 2's routes, kept: the active manifests, one by content hash, and publishing (same rules).
  router.add('GET', `${API_PREFIX}/manifests`, () => {
    const body: ManifestList = { manifests: directory.manifests() };
    return { body };
  });
  router.add('GET', `${API_PREFIX}/manifests/:hash`, (ctx) => {
    const hash = ctx.params['hash'] ?? '';
    const manifest = directory.manifests().find((candidate) => candidate.contentHash === hash);
    if (manifest === undefined) throw new CoordinatorError(404, 'not_found', `no manifest with content hash '${hash.slice(0, 80)}'`, 'GET /v1/manifests lists them');
    const body: Manifest = manifest;
    return { body };
  });
  router.add('POST', `${API_PREFIX}/manifests`, post(ManifestSchema, 'manifest'));
}

/**
 * An entry is stored and served as parsed (known fields only), and everyone who reads it checks its
 * signature, so the signature must verify over exactly those fields. When it verifies over the body as sent
 * instead, say which unknown fields it covers rather than just 'invalid signature'.
 */
function explainUnknownFields(raw: unknown, parsed: unknown): void {
  if (typeof raw !== 'object' || raw === null || typeof parsed !== 'object' || parsed === null) return;
  const unknown = Object.keys(raw).filter((key) => !(key in parsed));
  const body = raw as Record<string, unknown>;
  const keyField = body['kind'] === 'serving' ? 'nodeKey' : 'publisherKey';
  if (unknown.length === 0 || !verifyBody(body, keyField)) return;
  throw new CoordinatorError(
    400,
    'invalid_body',
    `entry is signed over fields this coordinator does not store: ${unknown.slice(0, 8).map((key) => key.slice(0, 64)).join(', ')}`,
    `the directory keeps only the fields of protocol version ${PROTOCOL_VERSION}'s schemas; sign signingPayload(entry) without the others`,
  );
}
