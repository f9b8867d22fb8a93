// The wire contract of DiLoCo training jobs over the data plane (`sharedllm diloco serve` and `diloco join`):
// zod schemas for the headers of the methods that protocol-dataplane.ts lists in DATAPLANE. Tensors travel as
// the frames' binary payloads, one tensor per frame, each with its sha256.
//
//   participant -> server  diloco_job     {afterRound?, waitMs}       -> the job, its round, the round's weights manifest
//                                                                        (long poll: answered once round > afterRound)
//   participant -> server  diloco_model   {jobId}                     -> payload: a GGUF of the base model's metadata
//                                                                        (architecture, tokenizer), no tensors
//   participant -> server  diloco_weights {jobId, round, name}        -> payload: the tensor's f32 weights
//   participant -> server  diloco_push    {jobId, round, tensor}      <- payload: the tensor's encoded delta
//   participant -> server  diloco_commit  {jobId, round, tensors, ..} -> accepted | refused (reason) | late
//
// Versioning: every header carries `v` (DILOCO_WIRE_VERSION). Optional fields may be added freely; anything
// else bumps the version, and a server refuses another version with a clear error. The data plane's own
// DATAPLANE_VERSION is unchanged by new methods (a peer that does not know them answers unknown_method).
import { z } from 'zod';

export const DILOCO_WIRE_VERSION = 1;

const v = z.literal(DILOCO_WIRE_VERSION);
const sha256 = z.string().regex(/^[0-9a-f]{64}$/);
/** A job id: 16 to 64 lowercase hex characters (it also names the job at the coordinator). */
export const JobIdSchema = z.string().regex(/^[0-9a-f]{16,64}$/, 'job id: 16-64 lowercase hex characters');
const round = z.number().int().min(0).max(1e9);
const tensorName = z.string().min(1).max(63);
const ne = z.array(z.number().int().min(1).max(1 << 24)).min(1).max(4);

/** How a participant runs its inner steps (AdamW), as the server sets them for the whole job. */
export const InnerSettingsSchema = z.object({
  /** Inner steps per round (H). */
  innerSteps: z.number().int().min(1).max(1e6),
  /** Rows per inner step and tokens per row. */
  batch: z.number().int().min(1).max(4096),
  ctx: z.number().int().min(2).max(1 << 16),
  lr: z.number().positive().max(10),
  warmup: z.number().int().min(0),
  minLrRatio: z.number().min(0).max(1),
  beta1: z.number().min(0).max(1),
  beta2: z.number().min(0).max(1),
  eps: z.number().positive(),
  weightDecay: z.number().min(0),
  clip: z.number().min(0),
  /** The schedule spans rounds x innerSteps steps; a participant sets its step to round x innerSteps. */
  totalSteps: z.number().int().min(1),
});
export type InnerSettings = z.infer<typeof InnerSettingsSchema>;

export const TensorManifestSchema = z.object({ name: tensorName, ne, sha256 });
export type TensorManifest = z.infer<typeof TensorManifestSchema>;

export const JOB_STATES = ['running', 'done'] as const;

/**
 * `diloco_job`: long poll for a round after `afterRound` (absent: answer at once); answered at once too when
 * round `afterRound` is open and the server holds no delta of the caller for it (a restarted server).
 */
export const DilocoJobRequest = z.object({
  v,
  afterRound: round.optional(),
  /** How long the server may hold the answer (it answers earlier when a new round opens). */
  waitMs: z.number().int().min(0).max(120_000).default(0),
});
export const DilocoJobResponse = z.object({
  v,
  jobId: JobIdSchema,
  state: z.enum(JOB_STATES),
  /** The round now open (equal to `rounds` once the job is done). */
  round,
  rounds: round,
  /** Encoding of the deltas the server expects. */
  compression: z.enum(['f32', 'f16', 'int8']),
  inner: InnerSettingsSchema,
  /**
   * How the weights travel (diloco_weights payloads): f32 (exact, the default), or f16 / int8 to cut the
   * download; a participant trains from the decoded weights and its delta is relative to them, so the
   * rounding only moves where its inner steps start. Absent: f32 (a server of the first version).
   */
  weightsDtype: z.enum(['f32', 'f16', 'int8']).optional(),
  /** The open round's global weights, tensor by tensor (encoded as weightsDtype), with their hashes. */
  tensors: z.array(TensorManifestSchema).max(4096),
  /** Milliseconds left before the open round's deadline. */
  deadlineInMs: z.number().min(0),
  /**
   * Whether the server holds (or refused) the caller's delta for the open round. A participant that committed
   * round r to a server that then restarted finds `round: r, handedIn: false`, and trains round r again.
   */
  handedIn: z.boolean().optional(),
});
export type DilocoJobResponse = z.infer<typeof DilocoJobResponse>;

/** `diloco_model`: the base model's metadata (answer payload: a GGUF with metadata only). */
export const DilocoModelRequest = z.object({ v, jobId: JobIdSchema });
export const DilocoModelResponse = z.object({ v, sha256, bytes: z.number().int().min(0) });

/** `diloco_weights`: one tensor of the open round's weights (answer payload: encoded as the job's weightsDtype). */
export const DilocoWeightsRequest = z.object({ v, jobId: JobIdSchema, round, name: tensorName });
export const DilocoWeightsResponse = z.object({ v, round, name: tensorName, sha256 });

/** `diloco_push`: one tensor of a participant's delta for `round` (payload: encoded as `dtype`). */
export const DilocoPushRequest = z.object({
  v,
  jobId: JobIdSchema,
  round,
  name: tensorName,
  /** An open string: the server refuses a dtype it does not know with a clear reason (wire.ts). */
  dtype: z.string().max(16),
  ne,
  sha256,
});
export const DilocoPushResponse = z.object({ v, received: z.number().int().min(0) });

/** `diloco_commit`: the participant's delta for `round` is complete; the server checks it at once. */
export const DilocoCommitRequest = z.object({
  v,
  jobId: JobIdSchema,
  round,
  /** Tensors pushed for this round (the server counts what it holds). */
  tensors: z.number().int().min(0).max(4096),
  /** Mean training loss of the inner steps (reported, for the metrics). */
  innerLoss: z.number().optional(),
  /** Milliseconds of the inner steps (reported, for the metrics). */
  computeMs: z.number().min(0).max(1e9).optional(),
  /** Milliseconds the participant spent pulling this round's weights and pushing its delta (reported). */
  transferMs: z.number().min(0).max(1e9).optional(),
  /** Training tokens in the participant's shard (0: an empty shard, refused). */
  shardTokens: z.number().int().min(0),
});
export const COMMIT_STATUSES = ['accepted', 'refused', 'late'] as const;
export const DilocoCommitResponse = z.object({ v, status: z.enum(COMMIT_STATUSES), reason: z.string().max(2000).optional() });
export type DilocoCommitResponse = z.infer<typeof DilocoCommitResponse>;

/** The largest weights or delta tensor a job may send in one frame (the transport's own frame limit, 512 MiB). */
export const MAX_DILOCO_TENSOR_BYTES = 512 << 20;

/** The coordinator's directory entry of a job: a ModelRef the server registers (role primary), see job-ref.ts. */
export const JOB_REF_SCHEME = 'diloco-job';
