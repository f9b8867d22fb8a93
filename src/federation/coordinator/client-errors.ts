/** Errors thrown by CoordinatorClient (kept apart so lease.ts can use them without a cycle). */

/** The coordinator answered with an error body. */
export class CoordinatorError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint?: string,
  ) {
    super(hint === undefined ? message : `${message}. ${hint}`);
    this.name = 'CoordinatorError';
  }
}

/** No answer: connection refused, timeout, DNS, TLS verification. */
export class CoordinatorUnreachableError extends Error {
  constructor(
    readonly url: string,
    cause: Error,
    readonly hint: string,
  ) {
    super(`cannot reach the coordinator at ${url}: ${cause.message}. ${hint}`, { cause });
    this.name = 'CoordinatorUnreachableError';
  }
}
