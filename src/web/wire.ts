/**
 * What the dashboard pages read from the network, as zod schemas (the page validates every answer before it
 * shows anything; unknown fields are ignored, so a newer node still shows). Shared by the page bundle
 * (src/web/client) and Node (tests, the live route). Imports zod only: it runs in a browser.
 *
 * Routes read (and which issue defines those not on main yet):
 *   coordinator  GET /v1/dashboard/live (SSE: CoordinatorSnapshot), GET /health
 *   primary      GET /v1/models, POST /v1/chat/completions (stream), GET /v1/dashboard/live (SSE:
 *                PrimarySnapshot, built from GET /v1/federation)
 *   issue 12     GET/POST /v1/adapters, GET/DELETE /v1/adapters/{id}, GET /v1/adapters/{id}/export,
 *                GET /v1/audit, DELETE /v1/users/me
 *   issue 13     model 'mixture'; stream chunks with `sharedllm: { attribution: [{ model, share }] }`
 *   issue 14     GET /v1/diloco/jobs (training jobs with one metrics line per round)
 */
import * as z from 'zod';

/** The route the training jobs come from (issue 14's DiLoCo jobs, on the coordinator). */
export const TRAINING_JOBS_ROUTE = '/v1/diloco/jobs';

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

/** One metrics line of a training round (issue 14); fields beyond round and loss are shown as they come. */
export const RoundMetricsSchema = z.object({
  round: z.number(),
  loss: z.number().optional(),
  heldOutLoss: z.number().optional(),
  perplexity: z.number().optional(),
  participants: z.number().optional(),
}).loose();

export const TrainingJobSchema = z.object({
  id: z.string(),
  state: z.string().optional(),
  rounds: z.number().optional(),
  aggregator: z.string().optional(),
  metrics: z.array(RoundMetricsSchema).default([]),
}).loose();
export type TrainingJob = z.infer<typeof TrainingJobSchema>;
export const TrainingJobListSchema = z.object({ jobs: z.array(TrainingJobSchema) });

export const CoordinatorSnapshotSchema = z.object({
  kind: z.literal('coordinator'),
  at: z.number(),
  version: z.string(),
  uptimeMs: z.number(),
  nodes: z.array(NodeCardSchema),
  specialists: z.array(SpecialistCardSchema),
  /** Training jobs, or null when this coordinator has no training route (issue 14 not merged). */
  jobs: z.array(TrainingJobSchema).nullable(),
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
// A user's own data on a primary (issue 12)

export const AdapterSchema = z.object({
  id: z.string(),
  name: z.string().optional(),
  model: z.string().optional(),
  kind: z.string().optional(),
  state: z.string().optional(),
  step: z.number().optional(),
  steps: z.number().optional(),
  loss: z.number().optional(),
  etaMs: z.number().optional(),
  consent: z.object({ purpose: z.string().optional(), keepText: z.boolean().optional(), at: z.union([z.number(), z.string()]).optional(), textHash: z.string().optional() }).loose().optional(),
}).loose();
export type Adapter = z.infer<typeof AdapterSchema>;
export const AdapterListSchema = z.object({ data: z.array(AdapterSchema) }).or(z.object({ adapters: z.array(AdapterSchema) }).transform((v) => ({ data: v.adapters })));

export const AuditEventSchema = z.object({
  at: z.union([z.number(), z.string()]).optional(),
  event: z.string().optional(),
  type: z.string().optional(),
  adapterId: z.string().optional(),
}).loose();
export type AuditEvent = z.infer<typeof AuditEventSchema>;
export const AuditListSchema = z.object({ data: z.array(AuditEventSchema) }).or(z.object({ events: z.array(AuditEventSchema) }).transform((v) => ({ data: v.events })));
