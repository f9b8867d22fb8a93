// Errors of DiLoCo jobs over the data plane: what was expected, what was found, what to do. A handler's
// error travels to the participant as an ERROR frame with its `code` and `hint` (transport/methods.ts).

export const DILOCO_ERROR_CODES = [
  'stale_round', // a call for a round that is not the open one: poll diloco_job again
  'late_round', // a delta for a round that is over: it is discarded
  'bad_hash', // a tensor whose bytes do not match the sha256 its header named: send it again
  'wrong_job', // a call naming another job id than this server's
  'bad_checkpoint', // the server's checkpoint is damaged or of another job
  'no_job', // no DiLoCo job at the coordinator (or not the one asked for)
  'bad_shard', // the participant's corpus cannot make one batch
  'unauthenticated', // a call on a connection whose HELLO proved no node identity
] as const;
export type DilocoErrorCode = (typeof DILOCO_ERROR_CODES)[number];

export class DilocoError extends Error {
  constructor(
    readonly code: DilocoErrorCode,
    message: string,
    readonly expected: string,
    readonly actual: string,
    readonly hint: string,
  ) {
    super(`${message}: expected ${expected}, got ${actual}. ${hint}`);
    this.name = 'DilocoError';
  }
}
