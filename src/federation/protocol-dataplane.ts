// Data-plane messages between a primary and its workers (part of the wire contract; re-exported by
// protocol.ts). Each is the JSON header of an RPC frame; tensors travel as the frame's binary payload.
//
// A step crosses the pipeline once: the primary sends `step` to the first worker with the route of the
// remaining hops; each worker runs its span and sends `step` on to the next; the last sends `step_result`
// back to the primary over the connection the primary opened to it (found by the primary's session id).
import { z } from 'zod';

export const DATAPLANE_VERSION = 1;

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
export const LoadSpanResponse = z.object({ source: z.enum(['local', 'cache', 'stream']), bytes: z.number(), loadMs: z.number() });

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

/** A hop of a step's route; `cert` is the hop's data-plane certificate when the federation uses TLS. */
export const Hop = z.object({ addr: z.string().max(300), nodeId: z.string(), span: SpanRef, cert: z.string().max(8192).optional() });
export type Hop = z.infer<typeof Hop>;

/** How long one worker computed its span for a step (its own clock; no cross-machine comparison). */
export const StageTime = z.object({ nodeId: z.string().max(128), computeMs: z.number().min(0).max(3_600_000) });
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
});
export type StepMessage = z.infer<typeof StepMessage>;


/** `step_result` (notify, last worker -> primary): the hidden states after the last span. */
export const StepResult = z.object({ stepId: z.number().int().min(0), nTokens: z.number().int(), trace: z.array(StageTime).max(64).optional() });
/** `step_error` (notify, any worker -> primary): a hop failed; `nodeId` is the hop that failed. */
export const StepError = z.object({ stepId: z.number().int().min(0), nodeId: z.string(), message: z.string().max(2000) });

export const DATAPLANE_METHODS = ['info', 'load_span', 'free_span', 'span_manifest', 'span_tensor', 'open_seq', 'close_seq', 'truncate_seq', 'step', 'step_result', 'step_error'] as const;
