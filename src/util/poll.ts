/**
 * "Poll until": ask `check` again and again until it gives an answer, or time runs out. For state held
 * elsewhere that announces nothing: another process's HTTP API, a background loop, a sequence freed after
 * a response. Prefer an event where there is one, and never use this to assert a timing.
 *
 *   await pollUntil('the worker to be declared dead', async () => (await client.getNode(id)).state === 'dead');
 *   const plan = await pollUntil('the new plan', async () => newPlan(), { timeoutMs: 60_000, retryErrors: true });
 *
 * An answer is anything but `undefined`, `null` or `false` (so a boolean check resolves with `true`, and a
 * probe may return the value it waited for, 0 and '' included).
 */
import { setTimeout as sleep } from 'node:timers/promises';

export type PollAnswer<T> = T | undefined | null | false;

export interface PollOptions {
  /** Give up after this long; the checks' own time counts (default POLL_DEFAULTS.timeoutMs). */
  timeoutMs?: number;
  /** Pause between two checks (default POLL_DEFAULTS.intervalMs). */
  intervalMs?: number;
  /**
   * Count a check that throws as "not yet" (a server still starting, a coordinator restarting) and name its
   * last error on timeout. By default a throwing check ends the wait with its error.
   */
  retryErrors?: boolean;
  /** Stop waiting when this aborts (rejects with the signal's reason). */
  signal?: AbortSignal;
}

/** Defaults for waits inside one process (unit tests, local loops). */
export const POLL_DEFAULTS = {
  /** Long enough for a background loop on a loaded 2-core CI machine; a real process waits longer. */
  timeoutMs: 5_000,
  /** Short: a check is cheap next to the loops it waits for, and tests should not idle. */
  intervalMs: 10,
} as const;

/** The condition did not hold in time: names what was awaited, for how long, and the last error seen. */
export class PollTimeoutError extends Error {
  readonly expected: string;
  readonly actual: string;
  readonly hint: string;
  constructor(readonly what: string, readonly timeoutMs: number, readonly checks: number, readonly lastError?: unknown) {
    const expected = `${what} within ${timeoutMs} ms`;
    const actual = lastError === undefined ? `not yet after ${checks} checks` : `not yet after ${checks} checks; the last one threw: ${errorText(lastError)}`;
    const hint = 'the state never changed: look at the logs of whatever should have changed it, or wait longer (timeoutMs)';
    super(`timed out waiting for ${what}: expected it ${expected}, got ${actual}. ${hint}`, lastError === undefined ? undefined : { cause: lastError });
    this.name = 'PollTimeoutError';
    this.expected = expected;
    this.actual = actual;
    this.hint = hint;
  }
}

/** Resolve with the first answer of `check` (see above); reject with PollTimeoutError naming `what`. */
export async function pollUntil<T>(what: string, check: () => PollAnswer<T> | Promise<PollAnswer<T>>, options: PollOptions = {}): Promise<Exclude<T, undefined | null | false>> {
  const timeoutMs = options.timeoutMs ?? POLL_DEFAULTS.timeoutMs;
  const intervalMs = options.intervalMs ?? POLL_DEFAULTS.intervalMs;
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  for (let checks = 1; ; checks++) {
    options.signal?.throwIfAborted();
    let answer: PollAnswer<T>;
    try {
      answer = await check();
    } catch (error) {
      if (options.retryErrors !== true) throw error;
      lastError = error;
      answer = undefined;
    }
    if (answer !== undefined && answer !== null && answer !== false) return answer as Exclude<T, undefined | null | false>;
    const left = deadline - performance.now();
    if (left <= 0) throw new PollTimeoutError(what, timeoutMs, checks, lastError);
    // The last pause ends at the deadline, so the last check happens there and not an interval later.
    await pause(Math.min(intervalMs, left), options.signal);
  }
}

/** Sleep; an abort rejects with the signal's reason (timers/promises would give a bare AbortError). */
async function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal === undefined) return sleep(ms);
  try {
    await sleep(ms, undefined, { signal });
  } catch (error) {
    signal.throwIfAborted();
    throw error;
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
