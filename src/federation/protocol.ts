/**
 * The wire contract of the SharedLLM control plane: every message exchanged between nodes and the
 * coordinator, as zod schemas, plus PROTOCOL_VERSION. Every role imports its schemas from here and
 * validates at its edge (a server validates request bodies, a client validates responses).
 *
 * Compatibility rules
 * - Schemas ignore unknown fields (zod strips them), so a newer peer may add optional fields freely.
 *   Removing or re-typing a field, or changing a rule below, bumps PROTOCOL_VERSION.
 * - The coordinator stores and serves only the fields its schemas know (unknown ones are dropped before
 *   anything is stored), and caps the size of what it stores (config.maxRegistrationBytes,
 *   config.maxManifestBytes: 413 above). A manifest, which is served with its signature, must therefore
 *   be signed over exactly ManifestSchema's fields: a new manifest field bumps PROTOCOL_VERSION.
 * - Error codes are open strings on the wire (`ErrorBody.error.code`): a client treats a code it does
 *   not know by its HTTP status.
 *
 * Directory rules (RFC-0006, version 3; docs/rfcs/0006-specialist-manifest.md)
 * - Manifests, revocations and serving records are signed over exactly their schema's fields; the
 *   signature is checked on the parsed entry, so an entry with fields this version does not know is refused.
 * - A model id belongs to the first publisher key seen for it; another key's entry for it is refused
 *   (409 manifest_conflict). A higher version from the owner replaces a lower one; an equal or lower one is
 *   refused (409 stale_version) unless it is the same entry (a duplicate, answered 200).
 * - A revocation leaves a tombstone at its version: the id is gone everywhere and comes back only with a
 *   higher version (409 revoked otherwise). At equal versions a revocation beats a manifest.
 * - Version 3 replaced version 2's placeholder manifest (keyed by content hash, no version, no kind).
 *
 * Membership rules (memberlist's, adapted to a lease renewed over HTTP)
 * - A node registers with an `incarnation` number. A process picks a fresh, larger incarnation on start
 *   (the default is the wall clock in ms) and increments it each time it re-registers.
 * - Any update carrying a LOWER incarnation than the one the coordinator holds is stale and answered
 *   409 `stale_incarnation` (it comes from an older process of that node, which should stop).
 * - A heartbeat renews the lease. A heartbeat for a node the coordinator does not know, or knows as
 *   dead or left, or with a HIGHER incarnation than registered, is answered 404 `unknown_node`: the node
 *   then registers again by itself (with incarnation + 1). This is how nodes recover from a coordinator
 *   that lost its data or declared them dead during a network partition.
 * - A node that misses heartbeats becomes `suspect`, then `dead`; a heartbeat or a registration with an
 *   incarnation at least as high as the held one refutes suspicion. `leave` marks it `left` at once.
 * - A registration is signed with the node's ed25519 key (see signingPayload). The coordinator binds a
 *   nodeId to the first key it sees while that node is alive or suspect (409 `identity_mismatch`
 *   otherwise); nodes should use their identity fingerprint as nodeId. Heartbeats and leaves are signed
 *   with that key too (version 2).
 *
 * Data-plane HELLO (version 3; see transport/hello-auth.ts for the exchange)
 * - Each side's HELLO carries a fresh random `nonce` and the data-plane contract version
 *   (`dataplaneVersion`, protocol-dataplane.ts); another version is refused with a clear error.
 * - A node's connection authenticates: its HELLO names the node identity (`auth`: nodeId and the ed25519 key
 *   it registered with); each side signs the transcript (both nonces, both identities, both sessions, both
 *   versions) and, where the federation has a join token, adds an HMAC of the transcript keyed by the token
 *   (the token itself never crosses the wire). Nothing but HELLO and PING is served before that completes.
 */
import { z } from 'zod';

/** Bumped on any incompatible change to the messages or rules in this file. */
export const PROTOCOL_VERSION = 3;

/** Every versioned route lives under this prefix (GET /health does not). */
export const API_PREFIX = '/v1';

/** Response header carrying PROTOCOL_VERSION on every coordinator answer. */
export const PROTOCOL_HEADER = 'x-sharedllm-protocol';

// ---------------------------------------------------------------------------------------------------
// Vocabularies (as const arrays: the CLI and the docs list them from here)

export const NODE_ROLES = ['primary', 'worker'] as const;
export const NODE_STATES = ['alive', 'suspect', 'dead', 'left'] as const;
export const BACKENDS = ['cpu', 'cuda', 'vulkan', 'metal'] as const;
/** RFC-0001 candidate kinds, in order of preference (LAN first, relay last). */
export const CANDIDATE_KINDS = ['lan', 'wan', 'relay'] as const;

/** Error codes the coordinator emits. The wire type stays an open string (see ErrorBodySchema). */
export const ERROR_CODES = [
  'bad_request', // malformed query or path parameter
  'invalid_json', // body is not JSON
  'invalid_body', // body is JSON but does not match the schema
  'unsupported_media_type', // POST without Content-Type: application/json
  'payload_too_large', // body above the size limit
  'unauthorized', // missing or wrong join token
  'not_found', // no such route or resource
  'method_not_allowed', // route exists, method does not
  'unknown_node', // heartbeat/leave for a node not registered (or dead/left): register again
  'stale_incarnation', // update older than what the coordinator holds: this process is superseded
  'identity_mismatch', // nodeId is held by a live node with another public key
  'invalid_signature', // signature does not verify against the given public key
  'protocol_version', // peer speaks another PROTOCOL_VERSION
  'stale_heartbeat', // heartbeat `beat` not above the last one accepted: a replay
  'manifest_conflict', // model id held by another publisher key (RFC-0006)
  'stale_version', // directory entry not newer than the one held (a replay or a reordered update)
  'revoked', // model id revoked at this version or above: publish a higher version to bring it back
  'quota_exceeded', // too many entries from one publisher, or the directory is full
  'unknown_specialist', // serving record for a model id the directory does not hold (or another file)
  'rate_limited', // too many gossip messages from one peer: slow down
  'internal', // bug or I/O failure on the coordinator (logged with a stack)
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

// ---------------------------------------------------------------------------------------------------
// Primitives

/** URL-safe identifier: letters, digits, '.', '_', '-'; starts with a letter or digit; at most 64. */
export const NodeIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'node id: [A-Za-z0-9._-], 1-64 chars');
/** Non-negative integer chosen by the node process; see the membership rules above. */
export const IncarnationSchema = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
export const NodeRoleSchema = z.enum(NODE_ROLES);
export const NodeStateSchema = z.enum(NODE_STATES);
export const BackendSchema = z.enum(BACKENDS);
export type NodeRole = z.infer<typeof NodeRoleSchema>;
export type NodeState = z.infer<typeof NodeStateSchema>;
export type Backend = z.infer<typeof BackendSchema>;

/** 'host:port' where host is a DNS name, an IPv4 address, or an IPv6 address in brackets. */
export const HostPortSchema = z
  .string()
  .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/, "address must be 'host:port' ('[v6]:port' for IPv6)")
  .refine((addr) => {
    const port = Number(addr.slice(addr.lastIndexOf(':') + 1));
    return port >= 1 && port <= 65535;
  }, 'port must be 1-65535');

/** RFC-0001 endpoint candidate. Higher priority is tried first within a kind. */
export const CandidateSchema = z.object({
  kind: z.enum(CANDIDATE_KINDS),
  addr: HostPortSchema,
  priority: z.number().int().min(0).max(1000),
});
export type Candidate = z.infer<typeof CandidateSchema>;

/** Content hash of a model file, recommended form 'sha256:<64 hex>'. */
export const ContentHashSchema = z.string().regex(/^[A-Za-z0-9_-]+:[0-9a-f]{16,128}$/, "hash must look like 'sha256:<hex>'");

/** A model a node holds locally, identified by content hash. */
export const ModelRefSchema = z.object({
  hash: ContentHashSchema,
  name: z.string().min(1).max(200),
  nLayers: z.number().int().positive(),
});
export type ModelRef = z.infer<typeof ModelRefSchema>;

/** Ed25519 public key: base64 of the 32 raw key bytes. */
export const PublicKeySchema = z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'public key: base64 of 32 raw ed25519 bytes');
/** Ed25519 signature: base64 of 64 bytes, over signingPayload(body). */
export const SignatureSchema = z.string().regex(/^[A-Za-z0-9+/]{86}==$/, 'signature: base64 of 64 bytes');

const Bytes = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
/** Fraction of compute busy over the last heartbeat interval: 0 idle, 1 saturated (may exceed 1 when queued). */
const Load = z.number().nonnegative().max(1000);

// ---------------------------------------------------------------------------------------------------
// Node registration: POST /v1/nodes/register

export const NodeRegistrationSchema = z.object({
  protocolVersion: z.number().int().positive(),
  nodeId: NodeIdSchema,
  incarnation: IncarnationSchema,
  role: NodeRoleSchema,
  /** Human-readable name shown on the dashboard. */
  name: z.string().min(1).max(64),
  candidates: z.array(CandidateSchema).max(16),
  freeMemoryBytes: Bytes,
  threads: z.number().int().positive().max(4096),
  backend: BackendSchema,
  models: z.array(ModelRefSchema).max(256),
  /**
   * PEM certificate (self-signed) of the node's data-plane TLS listener, present when the federation uses TLS.
   * Covered by the registration's signature; peers trust exactly this certificate for direct connections.
   */
  dataPlaneCert: z.string().max(8192).optional(),
  /** Software version of the node (package.json version). */
  version: z.string().min(1).max(64),
  publicKey: PublicKeySchema,
  /** ed25519 over signingPayload(the JSON body as sent, minus `signature`). */
  signature: SignatureSchema,
});
export type NodeRegistration = z.infer<typeof NodeRegistrationSchema>;
/** What a node fills in before signing. */
export type UnsignedNodeRegistration = Omit<NodeRegistration, 'signature'>;

export const RegisterResponseSchema = z.object({
  nodeId: NodeIdSchema,
  incarnation: IncarnationSchema,
  state: NodeStateSchema,
  /** The coordinator's heartbeat interval; nodes use it instead of their own setting. */
  heartbeatIntervalMs: z.number().int().positive(),
  protocolVersion: z.number().int().positive(),
  coordinator: z.object({ id: z.string(), publicKey: PublicKeySchema }),
});
export type RegisterResponse = z.infer<typeof RegisterResponseSchema>;

// ---------------------------------------------------------------------------------------------------
// Heartbeat: POST /v1/nodes/:id/heartbeat   (nodeId must equal :id)

/**
 * Signed with the key the node registered with, so that nobody else (even with the join token) can keep a
 * dead node alive or change what it reports. `beat` increases with every heartbeat of a registration; the
 * coordinator refuses one that does not (a replay).
 */
/**
 * A layer span a primary placed: layers [first, last) of the model `model` run on node `nodeId` (the primary
 * itself or a worker). Primaries report their plan in heartbeats so that the dashboard can draw it; additive
 * and optional (a coordinator that does not know the field drops it).
 */
export const PlacedSpanSchema = z.object({
  model: ContentHashSchema,
  nodeId: NodeIdSchema,
  first: z.number().int().nonnegative().max(65_536),
  last: z.number().int().nonnegative().max(65_536),
});
export type PlacedSpan = z.infer<typeof PlacedSpanSchema>;

/** Most rounds a DiLoCo server reports in one heartbeat (the latest ones): bounds a heartbeat's size. */
export const MAX_REPORTED_ROUNDS = 128;

/** One finished round of a DiLoCo job, as its metrics.jsonl line has it (the fields the dashboard draws). */
export const TrainingRoundSchema = z.object({
  round: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  /** Mean inner training loss the accepted participants reported. */
  innerLoss: z.number().optional(),
  /** Loss on the server's held-out text after the round (with --eval-corpus). */
  heldOutLoss: z.number().optional(),
  participants: z.number().int().nonnegative().max(1_000_000).optional(),
});
export type TrainingRound = z.infer<typeof TrainingRoundSchema>;

/**
 * A `diloco serve` node's progress, reported in its heartbeats so that the coordinator's dashboard can draw
 * the loss curves; additive and optional like spans (a coordinator that does not know the field drops it).
 */
export const TrainingProgressSchema = z.object({
  jobId: z.string().min(1).max(128),
  /** The open round (rounds finished so far). */
  round: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  rounds: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  /** The latest finished rounds, oldest first. */
  metrics: z.array(TrainingRoundSchema).max(MAX_REPORTED_ROUNDS),
});
export type TrainingProgress = z.infer<typeof TrainingProgressSchema>;

export const HeartbeatSchema = z.object({
  nodeId: NodeIdSchema,
  incarnation: IncarnationSchema,
  freeMemoryBytes: Bytes,
  load: Load,
  /** A primary's current placement of its model's layers (PlacedSpanSchema). */
  spans: z.array(PlacedSpanSchema).max(256).optional(),
  /** A DiLoCo server's progress (TrainingProgressSchema). */
  training: TrainingProgressSchema.optional(),
  beat: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  signature: SignatureSchema,
});
export type Heartbeat = z.infer<typeof HeartbeatSchema>;
export type HeartbeatBody = Omit<Heartbeat, 'beat' | 'signature'>;

export const HeartbeatResponseSchema = z.object({
  nodeId: NodeIdSchema,
  incarnation: IncarnationSchema,
  state: NodeStateSchema,
  heartbeatIntervalMs: z.number().int().positive(),
});
export type HeartbeatResponse = z.infer<typeof HeartbeatResponseSchema>;

// ---------------------------------------------------------------------------------------------------
// Leave: POST /v1/nodes/:id/leave   (nodeId must equal :id)

/** Signed like a heartbeat: only the node itself can announce that it leaves. */
export const LeaveSchema = z.object({ nodeId: NodeIdSchema, incarnation: IncarnationSchema, signature: SignatureSchema });
export type Leave = z.infer<typeof LeaveSchema>;
export type LeaveBody = Omit<Leave, 'signature'>;
export const LeaveResponseSchema = z.object({ nodeId: NodeIdSchema, state: NodeStateSchema });
export type LeaveResponse = z.infer<typeof LeaveResponseSchema>;

// ---------------------------------------------------------------------------------------------------
// Node list / view: GET /v1/nodes[?role=&state=], GET /v1/nodes/:id

/** The coordinator's view of one node: its registration (minus signature) and its lease. */
export const NodeViewSchema = NodeRegistrationSchema.omit({ signature: true, protocolVersion: true }).extend({
  state: NodeStateSchema,
  /** Latest value from a heartbeat (or the registration). */
  load: Load,
  /** Epoch ms of the last registration or heartbeat. */
  lastSeen: z.number().int().nonnegative(),
  /** Epoch ms when `state` last changed. */
  stateChangedAt: z.number().int().nonnegative(),
  /** Epoch ms of the registration of the current incarnation. */
  registeredAt: z.number().int().nonnegative(),
  /** A primary's placement of its layers, from its latest heartbeat (absent until one reports it). */
  spans: z.array(PlacedSpanSchema).max(256).optional(),
  /** A DiLoCo server's progress, from its latest heartbeat. */
  training: TrainingProgressSchema.optional(),
});
export type NodeView = z.infer<typeof NodeViewSchema>;

export const NodeListSchema = z.object({ nodes: z.array(NodeViewSchema) });
export type NodeList = z.infer<typeof NodeListSchema>;

export const NodeListQuerySchema = z.object({
  role: NodeRoleSchema.optional(),
  state: NodeStateSchema.optional(),
});
export type NodeListQuery = z.infer<typeof NodeListQuerySchema>;

// ---------------------------------------------------------------------------------------------------
// Health: GET /health (no auth)

export const HealthSchema = z.object({
  status: z.literal('ok'),
  version: z.string(),
  protocolVersion: z.number().int().positive(),
  uptimeMs: z.number().nonnegative(),
  coordinator: z.object({ id: z.string(), publicKey: PublicKeySchema }),
  nodes: z.object({
    total: z.number().int().nonnegative(),
    alive: z.number().int().nonnegative(),
    suspect: z.number().int().nonnegative(),
    dead: z.number().int().nonnegative(),
    left: z.number().int().nonnegative(),
  }),
  /** The data-plane relay next to this coordinator (RFC-0001), when it runs one; `--relay` workers use it. */
  relay: z.object({ port: z.number().int().min(1).max(65535) }).optional(),
});
export type Health = z.infer<typeof HealthSchema>;

// ---------------------------------------------------------------------------------------------------
// Errors: every non-2xx answer has this body.

export const ErrorBodySchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    hint: z.string().optional(),
  }),
});
export type ErrorBody = z.infer<typeof ErrorBodySchema>;

// ---------------------------------------------------------------------------------------------------
// Signing

/**
 * Canonical JSON (RFC 8785 / JCS for the values JSON messages carry): object keys sorted by UTF-16
 * code units, no whitespace, numbers and strings as JSON.stringify writes them, undefined members
 * dropped. Throws on values JSON cannot represent (NaN, Infinity, bigint, functions).
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`canonicalJson: ${value} is not representable in JSON`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) {
    return `[${value.map((item) => (item === undefined ? 'null' : canonicalJson(item))).join(',')}]`;
  }
  if (typeof value === 'object') {
    const record = value as Record<string, unknown>;
    const members = Object.keys(record)
      .filter((key) => record[key] !== undefined)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key])}`);
    return `{${members.join(',')}}`;
  }
  throw new TypeError(`canonicalJson: cannot encode a ${typeof value}`);
}

/**
 * The bytes a signature covers: canonicalJson of the body without its `signature` member. Verifiers
 * use the body AS RECEIVED (before schema stripping), so fields added by newer peers stay covered.
 */
export function signingPayload(body: Record<string, unknown>): Buffer {
  const { signature: _signature, ...rest } = body;
  return Buffer.from(canonicalJson(rest), 'utf8');
}

// ---------------------------------------------------------------------------------------------------
// Data plane (RFC-0001): headers of the transport's binary frames (src/federation/transport/frame.ts).
// Role methods (worker steps, weights) add their own header schemas below this section.

/** Announced by a data-plane connection's session in HELLO frames: any printable id, at most 128. */
export const SessionIdSchema = z.string().regex(/^[\x21-\x7e]{1,128}$/, 'session id: 1-128 printable ASCII characters');

/** A HELLO nonce: base64 of 32 random bytes, fresh per connection and side. */
export const HelloNonceSchema = z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'nonce: base64 of 32 random bytes');
/** HMAC-SHA256 (base64, 32 bytes) of the HELLO transcript keyed by the join token. */
export const TokenProofSchema = z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'token proof: base64 of a 32-byte HMAC');

/**
 * The node identity a HELLO shows. In the accepting side's HELLO it also carries that side's proofs (it has
 * both nonces by then); the connecting side sends its proofs in a second HELLO (TransportHelloProofSchema).
 */
export const HelloAuthSchema = z.object({
  nodeId: NodeIdSchema,
  publicKey: PublicKeySchema,
  signature: SignatureSchema.optional(),
  tokenProof: TokenProofSchema.optional(),
});
export type HelloAuth = z.infer<typeof HelloAuthSchema>;

/**
 * HELLO header, sent first by the connecting side and answered in kind by the accepting side.
 * Version 3 added `dataplaneVersion` and `nonce` (required) and `auth`.
 */
export const TransportHelloSchema = z.object({
  session: SessionIdSchema,
  protocolVersion: z.number().int().positive(),
  dataplaneVersion: z.number().int().positive(),
  nonce: HelloNonceSchema,
  auth: HelloAuthSchema.optional(),
});
/** Third HELLO (connecting side, authenticated connections only): its signature and token proof. */
export const TransportHelloProofSchema = z.object({
  proof: z.object({ signature: SignatureSchema, tokenProof: TokenProofSchema.optional() }),
});
/** Fourth HELLO (accepting side): the proof checked out, requests may flow. */
export const TransportHelloAcceptSchema = z.object({ accepted: z.literal(true) });
export type TransportHello = z.infer<typeof TransportHelloSchema>;

/** Error codes of the data plane (ERROR frames). Open strings on the wire like ErrorBody codes. */
export const TRANSPORT_ERROR_CODES = [
  'bad_request', // header does not match the method's schema
  'unknown_method', // no handler registered under that method name
  'too_large', // payload above the method's limit (the payload was skipped, the connection stays usable)
  'bad_frame', // malformed frame: the sender closes the connection after this
  'protocol_version', // HELLO with another PROTOCOL_VERSION
  'dataplane_version', // HELLO with another DATAPLANE_VERSION (protocol-dataplane.ts)
  'unauthenticated', // no node identity in HELLO where one is required, or a frame before the HELLO completed
  'bad_signature', // the HELLO transcript signature does not verify against the key shown
  'bad_token', // the join-token proof is missing or wrong
  'replayed_nonce', // a HELLO nonce seen before: a replayed handshake
  'not_member', // the identity is not an alive member of the federation (as the coordinator lists it)
  'forbidden', // an authenticated member may not call this method (e.g. a worker calling load_span)
  'limit', // a worker limit (sequences per primary, KV memory, span memory) would be exceeded
  'unauthorized', // relay: missing or wrong join token
  'unknown_node', // relay: no node registered under that id
  'relay_timeout', // relay: the hidden node did not open its data connection in time
  'relay_busy', // relay: too many pending connections for that node
  'internal', // a handler threw without a code
] as const;

/** ERROR frame header. Handlers' errors map to it: `code` from error.code when a string, else 'internal'. */
export const TransportErrorSchema = z.object({
  code: z.string().max(64),
  message: z.string().max(4096),
  hint: z.string().max(4096).optional(),
});
export type TransportError = z.infer<typeof TransportErrorSchema>;

/** Relay join tokens travel in headers; bounded so a header cannot be spent on them. */
const RelayTokenSchema = z.string().min(1).max(512);
/** A relay ticket: 32 hex characters (128 random bits) naming one pending splice. */
const RelayTicketSchema = z.string().regex(/^[0-9a-f]{32}$/, 'ticket: 32 lowercase hex characters');

/** Request `relay.register` on a hidden node's control connection to the relay. */
export const RelayRegisterSchema = z.object({ nodeId: NodeIdSchema, token: RelayTokenSchema.optional() });
export type RelayRegister = z.infer<typeof RelayRegisterSchema>;
export const RelayRegisteredSchema = z.object({ nodeId: NodeIdSchema, relay: z.string().max(128) });
export type RelayRegistered = z.infer<typeof RelayRegisteredSchema>;

/** Notification `relay.dial` from the relay to a hidden node: open a data connection for this ticket. */
export const RelayDialSchema = z.object({ ticket: RelayTicketSchema });
export type RelayDial = z.infer<typeof RelayDialSchema>;

/** RELAY_OPEN frame header: first frame of a client's connection to the relay, asking for a node. */
export const RelayOpenSchema = z.object({ nodeId: NodeIdSchema, token: RelayTokenSchema.optional() });
export type RelayOpen = z.infer<typeof RelayOpenSchema>;

/** RELAY_ACCEPT frame header: first frame of a hidden node's data connection to the relay. */
export const RelayAcceptSchema = z.object({ ticket: RelayTicketSchema });
export type RelayAccept = z.infer<typeof RelayAcceptSchema>;

/** RELAY_READY frame header: the relay spliced the client to the node; HELLO follows end to end. */
export const RelayReadySchema = z.object({ nodeId: NodeIdSchema });
export type RelayReady = z.infer<typeof RelayReadySchema>;
