// What one worker gives the primaries that use it, at most. Every limit is enforced on the worker itself with
// a typed error (code 'limit' and a hint), whatever a primary asks for: a primary cannot open more sequences
// than it reserved, nor fill the worker's memory with KV caches or spans, nor send frames over the cap.
import { ModelError } from '../../model/errors.ts';

export interface WorkerLimits {
  /** Sequences one primary may hold open on one span. A primary's own load_span `nSeqMax` lowers it. */
  maxSequencesPerPrimary: number;
  /** KV cache memory of all open sequences together (bytes, f16 K and V for every layer of the span). */
  maxKvBytes: number;
  /** Weights of all held spans together (bytes). `--max-memory` lowers it. */
  maxSpanBytes: number;
  /** Largest payload of one incoming frame (a step's hidden states; bytes). */
  maxFramePayloadBytes: number;
  /** Largest JSON header of one incoming frame (bytes). */
  maxFrameHeaderBytes: number;
  /** Coordinator member list: served this long from cache before a background refresh. */
  membershipTtlMs: number;
  /** Coordinator member list: at most one refresh per this interval for a node it does not list. */
  membershipMinRefreshMs: number;
}

/** Defaults: room for a few primaries with a handful of long sequences each, on a machine with some GiB. */
export function defaultWorkerLimits(): WorkerLimits {
  return {
    maxSequencesPerPrimary: 64, // a primary's batch; its nSeqMax is usually lower
    maxKvBytes: 8 * 1024 ** 3, // 8 GiB of KV caches in all
    maxSpanBytes: 64 * 1024 ** 3, // 64 GiB of weights in all (then capped by --max-memory and free memory)
    maxFramePayloadBytes: 256 * 1024 ** 2, // a 64k-token prefill of a 1024-wide model is 256 MiB of f32
    maxFrameHeaderBytes: 64 * 1024, // the transport's own maximum
    membershipTtlMs: 5_000,
    membershipMinRefreshMs: 1_000,
  };
}

/** A request that would go over one of the worker's limits. */
export class WorkerLimitError extends ModelError {
  readonly code = 'limit';
}

/** A caller that may not do what it asked (not a member, not a primary, not the sequence's owner). */
export class WorkerAuthError extends ModelError {
  constructor(
    readonly code: 'forbidden' | 'not_member' | 'bad_route',
    message: string,
    expected: string,
    actual: string,
    hint: string,
  ) {
    super(message, expected, actual, hint);
  }
}
