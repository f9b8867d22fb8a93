// The data-plane contract between a primary and its workers: ONE table, `DATAPLANE`, of method ->
// {request, response} zod schemas (part of the wire contract; re-exported by protocol.ts). Each message is the
// JSON header of an RPC frame; tensors travel as the frame's binary payload. The serving side builds its
// handlers with `defineMethods` and the calling side uses `call` / `notify` (dataplane.ts): both validate
// what they receive against this table, so no caller casts a header.
//
// Compatibility: as in protocol.ts, additive (optional) fields are free; anything else (a removed or re-typed
// field, a new required field, a changed meaning) bumps DATAPLANE_VERSION, which both ends check in HELLO.
//
// A step crosses the pipeline once: the primary sends `step` to the first worker with the route of the
// remaining hops; each worker runs its span and sends `step` on to the next; the last sends `step_result`
// back to the primary over the connection the primary opened to it (found by the primary's session id).
import { z } from 'zod';
import { DirectoryExchangeHeaderSchema, GOSSIP_LIMITS } from './protocol-directory.ts';
import {
  DilocoCommitRequest, DilocoCommitResponse, DilocoJobRequest, DilocoJobResponse, DilocoModelRequest, DilocoModelResponse,
  DilocoPushRequest, DilocoPushResponse, DilocoWeightsRequest, DilocoWeightsResponse, MAX_DILOCO_TENSOR_BYTES,
} from './protocol-diloco.ts';
import { GainNames, GainsApplied, MAX_GAINS_PAYLOAD_BYTES } from './protocol-adapters.ts';
import {
  MIXTURE_OPEN_MAX_PAYLOAD, MixtureCloseRequest, MixtureCloseResponse, MixtureListRequest, MixtureListResponse, MixtureOpenRequest,
  MixtureOpenResponse, MixtureStepRequest, MixtureStepResponse,
} from './protocol-mixture.ts';

export const DATAPLANE_VERSION = 2;

const seqId = z.number().int().min(0).max(2 ** 31);
const layer = z.number().int().min(0).max(4096);
const sha256 = z.string().regex(/^[0-9a-f]{64}$/);

export const SpanRef = z.object({ modelHash: sha256, first: layer, last: layer });
export type SpanRef = z.infer<typeof SpanRef>;

/** `info`: what a worker holds and can take. */
export const InfoRequest = z.object({});
export const InfoResponse = z.object({
  nodeId: z.string(),
  spans: z.array(SpanRef.extend({ nCtx: z.number().int(), bytes: z.number() })),
  freeMemoryBytes: z.number(),
  threads: z.number().int(),
  backend: z.string(),
  openSequences: z.number().int(),
});
export type InfoResponse = z.infer<typeof InfoResponse>;

/** `load_span`: hold layers [first, last) of a model, from a local file with that hash or streamed from the caller. */
export const LoadSpanRequest = SpanRef.extend({
  nCtx: z.number().int().min(16).max(1 << 20),
  nSeqMax: z.number().int().min(1).max(256).default(8),
});
export const LoadSpanResponse = z.object({ source: z.enum(['local', 'cache', 'stream']), bytes: z.number().min(0), loadMs: z.number().min(0) });
export type LoadSpanResponse = z.infer<typeof LoadSpanResponse>;

/** The answer of methods that only acknowledge. */
export const OkResponse = z.object({ ok: z.literal(true) });

/** `free_span`: drop a span and every sequence on it. */
export const FreeSpanRequest = SpanRef;

/** Served by the primary to a worker streaming a span: what to fetch and how to check it. */
export const SpanManifestRequest = SpanRef;
export const TensorEntry = z.object({ name: z.string().max(63), type: z.number().int(), dims: z.array(z.number().int().min(1)).min(1).max(4), byteSize: z.number().int().min(0), sha256 });
export const SpanManifestResponse = z.object({
  /** Model metadata (hyperparameters) as GGUF key -> {type, value} for the span file, JSON-safe. */
  metadata: z.record(z.string(), z.unknown()),
  tensors: z.array(TensorEntry),
});
export type SpanManifestResponse = z.infer<typeof SpanManifestResponse>;
/** `span_tensor`: one tensor's bytes (payload). */
export const SpanTensorRequest = z.object({ modelHash: sha256, name: z.string().max(63) });

/** Sequences on a worker's span. */
export const SeqRequest = SpanRef.extend({ seq: seqId });
export const TruncateRequest = SeqRequest.extend({ n: z.number().int().min(0) });
/** `open_seq`: optionally with a user's norm gains for this span's layers (protocol-adapters.ts; payload: f32). */
export const OpenSeqRequest = SeqRequest.extend({ gains: GainNames.optional() });
export const OpenSeqResponse = OkResponse.extend({ gainsApplied: GainsApplied.optional() });

/** A hop of a step's route; `cert` is the hop's data-plane certificate when the federation uses TLS. */
export const Hop = z.object({ addr: z.string().max(300), nodeId: z.string(), span: SpanRef, cert: z.string().max(8192).optional() });
export type Hop = z.infer<typeof Hop>;

/** How long one worker computed its span for a step (its own clock; no cross-machine comparison). */
export const StageTime = z.object({
  nodeId: z.string().max(128),
  computeMs: z.number().min(0).max(3_600_000),
  /**
   * Fingerprint of the hidden states this hop produced, when the step carried a `salt` (fingerprint.ts: f32
   * rows, base64; at most ~130 rows of 16 bytes). Optional: older workers omit it, and the primary only
   * verifies what it gets. The fingerprint's definition (fingerprint.ts) is part of this contract: changing
   * it bumps DATAPLANE_VERSION, or primaries would flag honest workers of the other version.
   */
  fp: z.string().max(8192).optional(),
  /** The same fingerprint of the hidden states this hop received (tells a lie upstream from one here). */
  fpIn: z.string().max(8192).optional(),
});
export type StageTime = z.infer<typeof StageTime>;

/**
 * `step` (notify): hidden states of one or more sequences, f32, n_embd x tokens, token-major, in the order of
 * `groups`. `route` lists the hops after the receiver.
 */
export const StepMessage = z.object({
  session: z.string().max(128),
  stepId: z.number().int().min(0),
  span: SpanRef,
  groups: z.array(z.object({ seq: seqId, n: z.number().int().min(1).max(1 << 16) })).min(1).max(256),
  nEmbd: z.number().int().min(1).max(1 << 16),
  route: z.array(Hop).max(64),
  /** Compute time of each hop so far, appended by every worker (optional: older peers omit it). */
  trace: z.array(StageTime).max(64).optional(),
  /** Chosen by the primary per step: every hop fingerprints its output with it (StageTime.fp). */
  salt: z.number().int().min(0).max(2 ** 32 - 1).optional(),
});
export type StepMessage = z.infer<typeof StepMessage>;


/** `step_result` (notify, last worker -> primary): the hidden states after the last span. */
export const StepResult = z.object({ stepId: z.number().int().min(0), nTokens: z.number().int(), trace: z.array(StageTime).max(64).optional() });
/** `step_error` (notify, any worker -> primary): a hop failed; `nodeId` is the hop that failed. */
export const StepError = z.object({ stepId: z.number().int().min(0), nodeId: z.string(), message: z.string().max(2000) });

/** Largest hidden-state payload of one step (512 MiB: a long prefill of a wide model). */
export const MAX_STEP_PAYLOAD_BYTES = 512 << 20;

/**
 * What each method carries. `response` is the answer's header schema; a method without one is a
 * notification (one-way, no answer). `maxPayloadBytes` caps the request's binary payload (default: the
 * connection's limit). `servedBy` says which role serves it.
 */
export interface MethodContract {
  request: z.ZodType;
  response?: z.ZodType;
  maxPayloadBytes?: number;
  servedBy: 'worker' | 'primary' | 'any' | 'diloco-server';
}

export const DATAPLANE = {
  /** What a worker holds and can take. */
  info: { request: InfoRequest, response: InfoResponse, servedBy: 'worker' },
  /** Hold a span (from a local file, the disk cache, or streamed from the caller). */
  load_span: { request: LoadSpanRequest, response: LoadSpanResponse, servedBy: 'worker' },
  free_span: { request: FreeSpanRequest, response: OkResponse, servedBy: 'worker' },
  open_seq: { request: OpenSeqRequest, response: OpenSeqResponse, maxPayloadBytes: MAX_GAINS_PAYLOAD_BYTES, servedBy: 'worker' },
  close_seq: { request: SeqRequest, response: OkResponse, servedBy: 'worker' },
  truncate_seq: { request: TruncateRequest, response: OkResponse, servedBy: 'worker' },
  /** Hidden states in, passed on along the route (payload: f32, n_embd x tokens). */
  step: { request: StepMessage, maxPayloadBytes: MAX_STEP_PAYLOAD_BYTES, servedBy: 'worker' },
  /** A worker streaming a span asks the primary what to fetch, then each tensor (answer payload: its bytes). */
  span_manifest: { request: SpanManifestRequest, response: SpanManifestResponse, servedBy: 'primary' },
  span_tensor: { request: SpanTensorRequest, response: OkResponse, maxPayloadBytes: 0, servedBy: 'primary' },
  /** The last hop's output (payload: f32, n_embd x tokens), and a hop's failure. */
  step_result: { request: StepResult, maxPayloadBytes: MAX_STEP_PAYLOAD_BYTES, servedBy: 'primary' },
  step_error: { request: StepError, maxPayloadBytes: 0, servedBy: 'primary' },
  /** RFC-0006 anti-entropy between any two nodes (payload: JSON GossipRequest; answer payload: GossipResponse). */
  directory_exchange: { request: DirectoryExchangeHeaderSchema, response: DirectoryExchangeHeaderSchema, maxPayloadBytes: GOSSIP_LIMITS.maxPayloadBytes, servedBy: 'any' },
  /** DiLoCo training jobs (protocol-diloco.ts): a participant asks `diloco serve` for the job, its weights, and hands in its delta. */
  diloco_job: { request: DilocoJobRequest, response: DilocoJobResponse, maxPayloadBytes: 0, servedBy: 'diloco-server' },
  diloco_model: { request: DilocoModelRequest, response: DilocoModelResponse, maxPayloadBytes: 0, servedBy: 'diloco-server' },
  diloco_weights: { request: DilocoWeightsRequest, response: DilocoWeightsResponse, maxPayloadBytes: 0, servedBy: 'diloco-server' },
  diloco_push: { request: DilocoPushRequest, response: DilocoPushResponse, maxPayloadBytes: MAX_DILOCO_TENSOR_BYTES, servedBy: 'diloco-server' },
  diloco_commit: { request: DilocoCommitRequest, response: DilocoCommitResponse, maxPayloadBytes: 0, servedBy: 'diloco-server' },
  /** The mixture drives another primary's specialists step by step (protocol-mixture.ts). */
  mixture_list: { request: MixtureListRequest, response: MixtureListResponse, maxPayloadBytes: 0, servedBy: 'primary' },
  mixture_open: { request: MixtureOpenRequest, response: MixtureOpenResponse, maxPayloadBytes: MIXTURE_OPEN_MAX_PAYLOAD, servedBy: 'primary' },
  mixture_step: { request: MixtureStepRequest, response: MixtureStepResponse, maxPayloadBytes: 0, servedBy: 'primary' },
  mixture_close: { request: MixtureCloseRequest, response: MixtureCloseResponse, maxPayloadBytes: 0, servedBy: 'primary' },
} as const satisfies Record<string, MethodContract>;

export type DataPlane = typeof DATAPLANE;
export type DataPlaneMethod = keyof DataPlane;
/** Methods answered with a header (request/response). */
export type RequestMethod = { [M in DataPlaneMethod]: DataPlane[M] extends { response: z.ZodType } ? M : never }[DataPlaneMethod];
/** One-way methods. */
export type NotifyMethod = Exclude<DataPlaneMethod, RequestMethod>;
/** A method's request header as the caller writes it (defaults may be left out). */
export type RequestOf<M extends DataPlaneMethod> = z.input<DataPlane[M]['request']>;
/** A method's request header as the handler receives it (parsed, defaults applied). */
export type ParsedRequestOf<M extends DataPlaneMethod> = z.output<DataPlane[M]['request']>;
/** A request method's answer header. */
export type ResponseOf<M extends RequestMethod> = DataPlane[M] extends { response: infer R extends z.ZodType } ? z.output<R> : never;

export const DATAPLANE_METHODS = Object.keys(DATAPLANE) as DataPlaneMethod[];
