/**
 * What the dashboard pages read from the network, as zod schemas (the page validates every answer before it
 * shows anything; unknown fields are ignored, so a newer node still shows). Shared by the page bundle
 * (src/web/client) and Node (tests, the live route). Imports zod only: it runs in a browser.
 *
 * Routes read (the shapes are those the routes answer; the file that answers each is named):
 *   coordinator  GET /v1/dashboard/live (SSE: CoordinatorSnapshot, built from GET /health, /v1/nodes and
 *                /v1/specialists; training jobs are the nodes' `diloco-job:<id>` model refs,
 *                src/federation/diloco/job-ref.ts)
 *   primary      GET /v1/models, POST /v1/chat/completions (stream; src/api/chat.ts), GET /v1/dashboard/live
 *                (SSE: PrimarySnapshot, built from GET /v1/federation)
 *   adapters     src/api/adapters/routes.ts: GET/POST /v1/adapters, GET/DELETE /v1/adapters/{id},
 *                GET /v1/adapters/{id}/export, GET /v1/audit, GET/DELETE /v1/users/me
 *   mixture      model 'mixture' (src/api/mixture.ts); stream chunks with `sharedllm: { attribution:
 *                [{ model, share }] }` (src/api/attributions.ts)
 */
import * as z from 'zod';

/** How a `diloco serve` node names its job among its models (src/federation/diloco/job-ref.ts). */
export const JOB_REF_PREFIX = 'diloco-job:';

// ----------------------------------------------------------------------------------------------------
// Coordinator

export const CandidateViewSchema = z.object({ kind: z.string(), addr: z.string(), priority: z.number().optional() });

export const NodeCardSchema = z.object({
  nodeId: z.string(),
  name: z.string(),
  role: z.string(),
  state: z.string(),
  candidates: z.array(CandidateViewSchema),
  freeMemoryBytes: z.number(),
  threads: z.number(),
  backend: z.string(),
  models: z.array(z.object({ hash: z.string(), name: z.string(), nLayers: z.number() })),
  version: z.string().optional(),
  load: z.number().optional(),
  lastSeen: z.number().optional(),
  /** Layer spans a primary placed (its heartbeats report them): the coordinator page draws who holds which. */
  spans: z.array(z.object({ model: z.string(), nodeId: z.string(), first: z.number(), last: z.number() })).optional(),
  /** A `diloco serve` node's job progress (its heartbeats report it): the rounds' metrics lines, the latest ones. */
  training: z.object({
    jobId: z.string(),
    round: z.number(),
    rounds: z.number(),
    metrics: z.array(z.object({ round: z.number() }).catchall(z.unknown())),
  }).loose().optional(),
});
export type NodeCard = z.infer<typeof NodeCardSchema>;

export const SpecialistCardSchema = z.object({
  modelId: z.string(),
  version: z.number(),
  status: z.string(),
  /** The RFC-0006 manifest while active (fields shown as they come: architecture, domains, sizes...). */
  manifest: z.record(z.string(), z.unknown()).optional(),
  servedBy: z.array(z.object({ nodeId: z.string() }).loose()).default([]),
  source: z.string(),
  receivedAt: z.number().optional(),
}).loose();
export type SpecialistCard = z.infer<typeof SpecialistCardSchema>;

/**
 * A DiLoCo job published at the coordinator: the `diloco serve` node that registered a `diloco-job:<id>`
 * model ref, with the progress its heartbeats report (NodeCard.training): the round, and the latest rounds'
 * metrics lines (as in its --out metrics.jsonl). A server that does not report them shows the job alone.
 */
export const TrainingJobSchema = z.object({
  id: z.string(),
  /** The ref's name: `diloco job <id8> (<model>)`. */
  name: z.string(),
  /** The serving node. */
  nodeId: z.string(),
  nodeName: z.string(),
  state: z.string(),
  round: z.number().optional(),
  rounds: z.number().optional(),
  metrics: z.array(z.object({ round: z.number() }).catchall(z.unknown())),
});
export type TrainingJob = z.infer<typeof TrainingJobSchema>;

/** The jobs among the coordinator's nodes (alive ones: a job whose server left is over). */
export function trainingJobsOf(nodes: readonly NodeCard[]): TrainingJob[] {
  return nodes
    .filter((n) => n.state === 'alive')
    .flatMap((n) => n.models.filter((m) => m.hash.startsWith(JOB_REF_PREFIX)).map((m) => ({
      id: m.hash.slice(JOB_REF_PREFIX.length),
      name: m.name,
      nodeId: n.nodeId,
      nodeName: n.name,
      state: n.state,
      ...(n.training?.jobId === m.hash.slice(JOB_REF_PREFIX.length) ? { round: n.training.round, rounds: n.training.rounds, metrics: n.training.metrics } : { metrics: [] }),
    })));
}

export const CoordinatorSnapshotSchema = z.object({
  kind: z.literal('coordinator'),
  at: z.number(),
  version: z.string(),
  uptimeMs: z.number(),
  nodes: z.array(NodeCardSchema),
  specialists: z.array(SpecialistCardSchema),
  /** DiLoCo jobs whose server is a member now. */
  jobs: z.array(TrainingJobSchema),
});
export type CoordinatorSnapshot = z.infer<typeof CoordinatorSnapshotSchema>;

// ----------------------------------------------------------------------------------------------------
// Primary

export const FederationViewSchema = z.object({
  model: z.string(),
  layers: z.number(),
  plan: z.array(z.object({ nodeId: z.string(), first: z.number(), last: z.number(), where: z.string() })),
  recoveries: z.array(z.object({ nodeId: z.string(), ms: z.number(), replacement: z.string(), reason: z.string().optional() })),
  bans: z.array(z.object({ nodeId: z.string(), until: z.number(), strikes: z.number() })).default([]),
  verification: z.object({
    checked: z.number(), tokens: z.number(), sequences: z.number(), mismatches: z.number(), unverifiable: z.number(), maxPassedError: z.number(),
  }).loose().nullable().default(null),
  decodeTimings: z.object({
    steps: z.number(), totalMs: z.number(), localMs: z.number(), workerMs: z.record(z.string(), z.number()), hopsMs: z.number(),
  }).optional(),
});
export type FederationView = z.infer<typeof FederationViewSchema>;

export const PrimarySnapshotSchema = z.object({
  kind: z.literal('primary'),
  at: z.number(),
  /** GET /v1/federation's answer, or null on a primary that serves alone (no federation route). */
  federation: FederationViewSchema.nullable(),
  health: z.object({ model: z.string(), active: z.number(), queued: z.number(), maxConcurrent: z.number() }).loose().nullable(),
});
export type PrimarySnapshot = z.infer<typeof PrimarySnapshotSchema>;

export const ModelListSchema = z.object({ data: z.array(z.object({ id: z.string(), owned_by: z.string().optional() }).loose()) });

/** One share of a token's probability (issue 13); shares of a token sum to 1. */
export const AttributionSchema = z.array(z.object({ model: z.string(), share: z.number() }));
export type Attribution = z.infer<typeof AttributionSchema>;

export const ChatChunkSchema = z.object({
  id: z.string().optional(),
  choices: z.array(z.object({ delta: z.object({ content: z.string().nullish() }).loose().optional(), finish_reason: z.string().nullish() }).loose()),
  sharedllm: z.object({ attribution: AttributionSchema.optional() }).loose().optional(),
}).loose();

// ----------------------------------------------------------------------------------------------------
// A user's own data on a primary (src/api/adapters/routes.ts; `sharedllm users add NAME` makes the key)

export const AdapterSchema = z.object({
  id: z.string(),
  name: z.string(),
  /** The model id to chat with it: `<base>@<name>`. */
  model: z.string(),
  kind: z.string(),
  rank: z.number().optional(),
  /** queued, training, ready or failed (store.ts). */
  state: z.string(),
  step: z.number(),
  steps: z.number(),
  loss: z.number().nullable(),
  eta_seconds: z.number().nullable(),
  queue_position: z.number().nullable(),
  error: z.string().nullable(),
  created_at: z.string().nullable(),
  finished_at: z.string().nullable(),
  text_kept: z.boolean(),
  consent: z.object({ purpose: z.string(), keep_text: z.boolean(), text_sha256: z.string(), given_at: z.string().nullable() }).loose(),
}).loose();
export type Adapter = z.infer<typeof AdapterSchema>;
export const AdapterListSchema = z.object({ data: z.array(AdapterSchema) }).loose();

/** POST /v1/adapters's body (request.ts); the consent is the user's own words and choice. */
export interface AdapterRequest {
  name: string;
  kind: 'norm' | 'lora';
  steps: number;
  text: string;
  consent: { purpose: string; keep_text: boolean };
}

/** One audit event: seq, when (ISO), what, the adapter, then the event's details (name, format, steps...). */
export const AuditEventSchema = z.object({
  seq: z.number(),
  at: z.string(),
  event: z.string(),
  adapter_id: z.string().nullable(),
}).loose();
export type AuditEvent = z.infer<typeof AuditEventSchema>;
export const AuditListSchema = z.object({ data: z.array(AuditEventSchema), has_more: z.boolean().optional() }).loose();

export const MeSchema = z.object({ id: z.string(), name: z.string(), created_at: z.union([z.number(), z.string()]).nullable(), adapters: z.number() }).loose();
export type Me = z.infer<typeof MeSchema>;
