/**
 * The coordinator's HTTP API. Bodies are JSON, validated at the edge with the schemas of protocol.ts.
 * Unknown fields are accepted but dropped: only what the schemas know is ever stored or served (an open
 * coordinator must not become free storage). Every non-2xx answer is `{ error: { code, message, hint? } }`
 * (ErrorBody). Every answer carries the header `x-sharedllm-protocol: <PROTOCOL_VERSION>`.
 * When the coordinator has a join token, every /v1 request needs `Authorization: Bearer <token>`
 * (401 `unauthorized` otherwise). POST bodies need `Content-Type: application/json` (415) and are at
 * most config.maxBodyBytes; registrations at most config.maxRegistrationBytes and manifests at most
 * config.maxManifestBytes (413 `payload_too_large` naming the setting).
 *
 * GET  /health
 *      No auth. -> 200 Health: version, protocolVersion, uptimeMs, coordinator {id, publicKey},
 *      node counts by state, the relay's port when one runs beside the coordinator.
 *
 * POST /v1/nodes/register                     body: NodeRegistration (signed)
 *      Registers or re-registers a node; it becomes alive. -> 200 RegisterResponse (includes the
 *      heartbeat interval to use). The signature is checked over the body as sent (a newer node's
 *      additive fields included); the stored registration keeps the known fields only.
 *      400 invalid_body | protocol_version | invalid_signature; 413 above maxRegistrationBytes;
 *      409 stale_incarnation (an older process) | identity_mismatch (id held by a live node, other key).
 *
 * POST /v1/nodes/:id/heartbeat                body: Heartbeat (signed; nodeId must equal :id)
 *      Renews the lease, updates free memory and load; refutes suspicion. -> 200 HeartbeatResponse.
 *      404 unknown_node: not registered, dead, left, or a newer incarnation -> register again.
 *      400 invalid_signature (not signed by the key the node registered with); 409 stale_incarnation |
 *      stale_heartbeat (its `beat` is not above the last one accepted since the node registered: a replay).
 *
 * POST /v1/nodes/:id/leave                    body: Leave (signed; nodeId must equal :id)
 *      Marks the node left (graceful shutdown). -> 200 LeaveResponse. 404 unknown_node; 409 stale;
 *      400 invalid_signature.
 *
 * GET  /v1/nodes[?role=primary|worker][&state=alive|suspect|dead|left]
 *      -> 200 NodeList, sorted by nodeId. 400 bad_request on an unknown role or state.
 *
 * GET  /v1/nodes/:id
 *      -> 200 NodeView. 404 not_found.
 *
 * GET  /v1/manifests
 *      -> 200 ManifestList (RFC-0006 specialist manifests, oldest first).
 *
 * GET  /v1/manifests/:contentHash
 *      -> 200 Manifest. 404 not_found.
 *
 * POST /v1/manifests                          body: Manifest (signed by publisherKey)
 *      Stores the manifest (known fields only) and answers with what it stored. -> 201 Manifest when new,
 *      200 when it replaces one from the same publisher. The signature must verify over the stored
 *      fields: 400 invalid_signature, or 400 invalid_body when it covers fields this version does not
 *      know; 413 above maxManifestBytes; 409 manifest_conflict (content hash published by another key).
 */
import type { Server } from 'node:http';
import { z } from 'zod';
import { createServer, Router } from '../../http/index.ts';
import type { RequestContext } from '../../http/index.ts';
import type { FederationConfig } from '../config.ts';
import {
  API_PREFIX,
  signingPayload,
  HeartbeatSchema,
  LeaveSchema,
  ManifestSchema,
  NodeIdSchema,
  NodeListQuerySchema,
  NodeRegistrationSchema,
  PROTOCOL_VERSION,
} from '../protocol.ts';
import type {
  Health,
  HeartbeatResponse,
  LeaveResponse,
  Manifest,
  ManifestList,
  NodeList,
  NodeView,
  RegisterResponse,
} from '../protocol.ts';
import { checkJoinToken, CoordinatorError, createCoordinatorListener } from './http.ts';
import { verifyBody, verifySignature } from '../identity.ts';
import type { Identity } from '../identity.ts';
import type { Logger } from '../../util/log.ts';
import { MembershipError } from './membership.ts';
import type { Membership } from './membership.ts';
import type { CoordinatorStore, NodeRecord } from './store.ts';

export interface ServerDeps {
  membership: Membership;
  store: CoordinatorStore;
  identity: Identity;
  config: FederationConfig;
  logger: Logger;
  /** Software version reported by /health. */
  version: string;
  /** Epoch ms the coordinator started (for uptime). */
  startedAt: number;
  now: () => number;
  joinToken?: string;
  /** PEM contents; both or neither. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Port of the relay running beside the coordinator, announced in /health. */
  relayPort?: number;
}

/** An http(s).Server serving the routes above; not listening yet. */
export function createCoordinatorServer(deps: ServerDeps): Server {
  const joinToken = deps.joinToken;
  const listener = createCoordinatorListener({
    router: buildRouter(deps),
    logger: deps.logger,
    maxBodyBytes: deps.config.maxBodyBytes,
    guard: (req, url) => {
      const versioned = url.pathname === API_PREFIX || url.pathname.startsWith(`${API_PREFIX}/`);
      if (joinToken !== undefined && versioned) checkJoinToken(req, joinToken);
    },
  });
  const server = createServer(listener, deps.tls);
  server.requestTimeout = Math.max(deps.config.requestTimeoutMs * 2, 10_000);
  // Keep idle connections open well past one heartbeat interval, so a node's kept-alive socket is
  // not closed by the server just as the next heartbeat is sent on it.
  server.keepAliveTimeout = Math.max(5_000, deps.config.heartbeatIntervalMs * 3);
  return server;
}

function buildRouter(deps: ServerDeps): Router {
  const { membership, store, identity, config } = deps;
  const coordinator = { id: identity.id, publicKey: identity.publicKey };
  const router = new Router();
  /** Per node, the last heartbeat accepted since it registered (in memory: a restart simply accepts the next). */
  const lastBeat = new Map<string, { incarnation: number; beat: number }>();

  router.add('GET', '/health', () => {
    const body: Health = {
      status: 'ok',
      version: deps.version,
      protocolVersion: PROTOCOL_VERSION,
      uptimeMs: Math.max(0, deps.now() - deps.startedAt),
      coordinator,
      nodes: membership.counts(),
      ...(deps.relayPort ? { relay: { port: deps.relayPort } } : {}),
    };
    return { body };
  });

  router.add('POST', `${API_PREFIX}/nodes/register`, async (ctx) => {
    const raw = await ctx.json({ maxBytes: config.maxRegistrationBytes, label: 'registration', setting: 'config.maxRegistrationBytes' });
    // The parsed registration holds only the fields this version knows: that is what gets stored.
    const registration = parseBody(NodeRegistrationSchema, raw, 'registration');
    if (registration.protocolVersion !== PROTOCOL_VERSION) {
      throw new CoordinatorError(
        400,
        'protocol_version',
        `node speaks protocol ${registration.protocolVersion}, this coordinator speaks ${PROTOCOL_VERSION}`,
        'run the same SharedLLM version on the node and the coordinator',
      );
    }
    // Verify over the body as received: a newer node's additive fields are covered by its signature (the
    // registration is never re-served with its signature, so storing it without them loses nothing).
    if (!verifyBody(raw as Record<string, unknown>, 'publicKey')) {
      throw new CoordinatorError(
        400,
        'invalid_signature',
        `registration of ${registration.nodeId} is not signed by its publicKey`,
        'sign signingPayload(body) with the key in publicKey (identity.ts signBody)',
      );
    }
    const { record } = membershipCall(() => membership.register(registration));
    lastBeat.delete(record.nodeId); // a new registration starts a new run of beats
    const body: RegisterResponse = {
      nodeId: record.nodeId,
      incarnation: record.incarnation,
      state: record.state,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      protocolVersion: PROTOCOL_VERSION,
      coordinator,
    };
    return { body };
  });

  router.add('POST', `${API_PREFIX}/nodes/:id/heartbeat`, async (ctx) => {
    const raw = await ctx.json();
    const beat = parseBody(HeartbeatSchema, raw, 'heartbeat');
    checkSameNode(ctx, beat.nodeId);
    checkSignedByNode(membership, raw, beat.nodeId, 'heartbeat');
    const last = lastBeat.get(beat.nodeId);
    if (last && last.incarnation === beat.incarnation && beat.beat <= last.beat) {
      throw new CoordinatorError(409, 'stale_heartbeat', `heartbeat ${beat.beat} of ${beat.nodeId} is not newer than ${last.beat}`, 'a replayed or reordered heartbeat; a node sends increasing beats');
    }
    const record = membershipCall(() => membership.heartbeat(beat));
    lastBeat.set(beat.nodeId, { incarnation: beat.incarnation, beat: beat.beat });
    const body: HeartbeatResponse = {
      nodeId: record.nodeId,
      incarnation: record.incarnation,
      state: record.state,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
    };
    return { body };
  });

  router.add('POST', `${API_PREFIX}/nodes/:id/leave`, async (ctx) => {
    const raw = await ctx.json();
    const message = parseBody(LeaveSchema, raw, 'leave');
    checkSameNode(ctx, message.nodeId);
    checkSignedByNode(membership, raw, message.nodeId, 'leave');
    const record = membershipCall(() => membership.leave(message));
    const body: LeaveResponse = { nodeId: record.nodeId, state: record.state };
    return { body };
  });

  router.add('GET', `${API_PREFIX}/nodes`, (ctx) => {
    const query = NodeListQuerySchema.safeParse(ctx.query);
    if (!query.success) {
      throw new CoordinatorError(400, 'bad_request', `bad query: ${z.prettifyError(query.error)}`, 'role is primary|worker; state is alive|suspect|dead|left');
    }
    const body: NodeList = { nodes: membership.list(query.data).map(toNodeView) };
    return { body };
  });

  router.add('GET', `${API_PREFIX}/nodes/:id`, (ctx) => {
    const nodeId = ctx.params['id'] ?? '';
    const record = NodeIdSchema.safeParse(nodeId).success ? membership.get(nodeId) : undefined;
    if (record === undefined) throw new CoordinatorError(404, 'not_found', `no node '${nodeId}'`, 'GET /v1/nodes lists the known nodes');
    const body: NodeView = toNodeView(record);
    return { body };
  });

  router.add('GET', `${API_PREFIX}/manifests`, () => {
    const body: ManifestList = { manifests: store.listManifests().map((entry) => entry.manifest) };
    return { body };
  });

  router.add('GET', `${API_PREFIX}/manifests/:hash`, (ctx) => {
    const hash = ctx.params['hash'] ?? '';
    const entry = store.getManifest(hash);
    if (entry === undefined) throw new CoordinatorError(404, 'not_found', `no manifest with content hash '${hash}'`, 'GET /v1/manifests lists them');
    const body: Manifest = entry.manifest;
    return { body };
  });

  router.add('POST', `${API_PREFIX}/manifests`, async (ctx) => {
    const raw = await ctx.json({ maxBytes: config.maxManifestBytes, label: 'manifest', setting: 'config.maxManifestBytes' });
    const manifest = parseBody(ManifestSchema, raw, 'manifest');
    checkManifestSignature(raw, manifest);
    const existing = store.getManifest(manifest.contentHash);
    if (existing !== undefined && existing.manifest.publisherKey !== manifest.publisherKey) {
      throw new CoordinatorError(
        409,
        'manifest_conflict',
        `content hash ${manifest.contentHash} is already published by another key`,
        'publish under the original key, or check the content hash',
      );
    }
    // The parsed manifest: unknown fields are dropped, so they are neither stored nor served.
    store.putManifest({ manifest, storedAt: deps.now() });
    deps.logger.info('manifest_stored', { contentHash: manifest.contentHash, modelId: manifest.modelId, replaced: existing !== undefined });
    return { status: existing === undefined ? 201 : 200, body: manifest };
  });

  return router;
}

/** Validates a body with a protocol schema, as a 400 invalid_body naming the offending fields. */
function parseBody<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new CoordinatorError(400, 'invalid_body', `invalid ${what}: ${z.prettifyError(result.error)}`, 'the message schemas are in src/federation/protocol.ts');
  }
  return result.data;
}

/**
 * A manifest is stored and served as parsed (known fields only) and everyone who reads it checks its
 * signature, so the signature must verify over exactly those fields. One signed over fields this version
 * does not know is refused, naming them, rather than stored in a form that no longer verifies.
 */
function checkManifestSignature(raw: unknown, manifest: Manifest): void {
  if (verifyBody(manifest, 'publisherKey')) return;
  const unknown = typeof raw === 'object' && raw !== null ? Object.keys(raw).filter((key) => !(key in manifest)) : [];
  if (unknown.length > 0 && verifyBody(raw as Record<string, unknown>, 'publisherKey')) {
    throw new CoordinatorError(
      400,
      'invalid_body',
      `manifest ${manifest.contentHash} is signed over fields this coordinator does not store: ${unknown.slice(0, 8).map((key) => key.slice(0, 64)).join(', ')}`,
      `the coordinator keeps only the fields of protocol version ${PROTOCOL_VERSION}'s ManifestSchema; sign signingPayload(manifest) without the others`,
    );
  }
  throw new CoordinatorError(
    400,
    'invalid_signature',
    `manifest ${manifest.contentHash} is not signed by its publisherKey`,
    'sign signingPayload(manifest) with the publisher key',
  );
}

/** A heartbeat or leave must be signed by the key the node registered with (unknown nodes: 404, to re-register). */
function checkSignedByNode(membership: Membership, raw: unknown, nodeId: string, what: string): void {
  const record = membership.get(nodeId);
  if (record === undefined) throw new CoordinatorError(404, 'unknown_node', `node '${nodeId}' is not registered`, 'register again (POST /v1/nodes/register)');
  const body = raw as Record<string, unknown>;
  if (!verifySignature(record.registration.publicKey, signingPayload(body), String(body['signature']))) {
    throw new CoordinatorError(400, 'invalid_signature', `${what} of ${nodeId} is not signed by the key it registered with`, 'sign signingPayload(body) with the node\'s identity (identity.ts signBody)');
  }
}

function checkSameNode(ctx: RequestContext, bodyNodeId: string): void {
  const pathNodeId = ctx.params['id'];
  if (pathNodeId !== bodyNodeId) {
    throw new CoordinatorError(400, 'bad_request', `path names node '${pathNodeId}' but the body names '${bodyNodeId}'`, 'use the same node id in the path and the body');
  }
}

/** Maps membership refusals to HTTP: unknown_node 404, stale_incarnation and identity_mismatch 409. */
function membershipCall<T>(call: () => T): T {
  try {
    return call();
  } catch (error) {
    if (!(error instanceof MembershipError)) throw error;
    const status = error.code === 'unknown_node' ? 404 : 409;
    throw new CoordinatorError(status, error.code, `${error.message} (expected ${error.expected}, got ${error.actual})`, error.hint);
  }
}

function toNodeView(record: NodeRecord): NodeView {
  const { signature: _signature, protocolVersion: _protocolVersion, ...registration } = record.registration;
  return {
    ...registration,
    nodeId: record.nodeId,
    incarnation: record.incarnation,
    role: record.role,
    state: record.state,
    freeMemoryBytes: record.freeMemoryBytes,
    load: record.load,
    lastSeen: record.lastSeen,
    stateChangedAt: record.stateChangedAt,
    registeredAt: record.registeredAt,
  };
}
