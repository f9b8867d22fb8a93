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
 *      Renews the lease, updates free memory and load (and a primary's layer placement, `spans`, shown in
 *      its NodeView until it registers again); refutes suspicion. -> 200 HeartbeatResponse.
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
 * RFC-0006 specialist directory (server-directory.ts; rules in federation/directory/rules.ts). Entries are
 * signed over exactly their schema's fields, at most config.maxManifestBytes (413). Refusals: 400
 * invalid_body | invalid_signature; 409 manifest_conflict (model id held by another publisher key) |
 * stale_version (not newer than the one held: a replay) | revoked (tombstone at that version or above) |
 * unknown_specialist (serving record for a model or file not held); 403 quota_exceeded.
 *
 * GET  /v1/specialists
 *      -> 200 SpecialistList: this coordinator's view, each entry with its version, status (active|revoked),
 *      the nodes serving it, its source ('local' or the peer it came from) and when it was stored.
 * GET  /v1/specialists/:modelId               -> 200 SpecialistView. 404 not_found.
 * POST /v1/specialists                        body: Manifest (signed by publisherKey)
 *      -> 201 AcceptResult when new, 200 when it replaced a lower version or was already held (duplicate).
 * POST /v1/specialists/revoke                 body: Revocation (signed by the publisher)
 *      Removes the specialist and its serving records; leaves a tombstone. -> 201/200 AcceptResult.
 * POST /v1/specialists/serving                body: ServingRecord (signed by the serving node)  -> AcceptResult.
 * POST /v1/directory/exchange                 body: GossipRequest
 *      Anti-entropy with a node (push-pull) -> 200 GossipResponse. 429 rate_limited (per `from`).
 *
 * GET  /v1/manifests                          -> 200 ManifestList (the active manifests; version 2's route).
 * GET  /v1/manifests/:contentHash             -> 200 Manifest. 404 not_found.
 * POST /v1/manifests                          alias of POST /v1/specialists.
 *
 * + whatever `extraRoutes` adds: `sharedllm coordinator` adds the dashboard (src/web/dashboard.ts: GET /,
 * /catalogue and /ui/* without auth, they hold no data; GET /v1/dashboard/live under the join token).
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
  NodeIdSchema,
  NodeListQuerySchema,
  NodeRegistrationSchema,
  PROTOCOL_VERSION,
} from '../protocol.ts';
import type {
  Health,
  PlacedSpan,
  TrainingProgress,
  HeartbeatResponse,
  LeaveResponse,
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
import { lanDirectoryConfig } from '../directory/config.ts';
import type { DirectoryConfig } from '../directory/config.ts';
import { Directory } from '../directory/directory.ts';
import { GossipNode } from '../directory/gossip.ts';
import { addDirectoryRoutes } from './server-directory.ts';

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
  /** Caps and rate limits of the specialist directory (default lanDirectoryConfig()). */
  directoryConfig?: DirectoryConfig;
  /** Adds routes after the ones above (the dashboard, from the CLI: federation/ does not import web/). */
  extraRoutes?: (router: Router) => void;
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
  /** Per primary, the layer placement its last heartbeat reported (in memory: the next heartbeat restores it). */
  const placed = new Map<string, { incarnation: number; spans: PlacedSpan[] }>();
  /** Per DiLoCo server, the progress its last heartbeat reported (in memory, like the placements). */
  const progress = new Map<string, { incarnation: number; training: TrainingProgress }>();
  const toNodeView = (record: NodeRecord): NodeView => {
    const spans = placed.get(record.nodeId);
    const training = progress.get(record.nodeId);
    return {
      ...nodeView(record),
      ...(spans?.incarnation === record.incarnation ? { spans: spans.spans } : {}),
      ...(training?.incarnation === record.incarnation ? { training: training.training } : {}),
    };
  };

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
    placed.delete(record.nodeId);
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
    if (beat.spans !== undefined) placed.set(beat.nodeId, { incarnation: beat.incarnation, spans: beat.spans });
    if (beat.training !== undefined) progress.set(beat.nodeId, { incarnation: beat.incarnation, training: beat.training });
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

  const directory = new Directory(store.directory, deps.directoryConfig ?? lanDirectoryConfig(), deps.now);
  // The coordinator answers exchanges; it starts none (nodes come to it), so its exchange is never called.
  const gossip = new GossipNode({
    id: identity.id,
    directory,
    exchange: () => Promise.reject(new Error('the coordinator does not start gossip rounds')),
    now: deps.now,
    logger: deps.logger,
  });
  addDirectoryRoutes(router, { directory, gossip, config, logger: deps.logger });
  deps.extraRoutes?.(router);

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

function nodeView(record: NodeRecord): NodeView {
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
