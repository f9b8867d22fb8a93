// SIGTERM and SIGINT for every long-running command (coordinator, primary, worker, demo), in one place.
//
//   while starting   a signal stops the process at once (nothing to hand back yet), exit 128 + signal number
//   while serving    the first signal starts the orderly shutdown the command passes to `run` (stop admitting,
//                    end open streams, leave the coordinator, close listeners); the command then exits 0
//   while stopping   a second signal exits at once, 128 + signal number
// The orderly shutdown is bounded: past SHUTDOWN.deadlineMs the process says what it was doing and exits 1.
//
// Why `process.on` and never `process.once`: node-llama-cpp loads signal-exit (through proper-lockfile), whose
// listener re-raises the signal when it finds itself the only listener left. With `once`, our listener is
// gone by the time signal-exit looks, so it kills the process with the signal (exit 143 or 130) before the
// orderly shutdown ran: no `leave`, streams cut without an error frame. Our listener stays installed until
// dispose(), so signal-exit always sees another listener and leaves the process to us.
import { constants } from 'node:os';

/** Timings of the orderly shutdown (every role uses the same ones). */
export const SHUTDOWN = {
  /**
   * How long requests in flight (a streaming chat, say) may run on after the signal, while new ones are
   * refused with 503. Past it they are ended: a stream gets an SSE error frame. Short, because whoever sent
   * the signal (systemd, Kubernetes, a test harness, `sharedllm demo`) waits for us and kills us after its own
   * grace period (systemd's default is 90 s, Kubernetes' 30 s, the demo's below).
   */
  drainMs: 5_000,
  /**
   * The whole orderly shutdown's limit: drain, leave the coordinator (one request, with the coordinator
   * client's own timeout and retries), close listeners. Past it the process exits 1 without waiting more:
   * a shutdown must never hang.
   */
  deadlineMs: 20_000,
} as const;

/** The signals that ask for an orderly shutdown. */
export const SHUTDOWN_SIGNALS = ['SIGTERM', 'SIGINT'] as const;
export type ShutdownSignal = (typeof SHUTDOWN_SIGNALS)[number];

/** Where signals come from: `process`, or an EventEmitter in tests. */
export interface SignalSource {
  on(event: ShutdownSignal, listener: (signal: NodeJS.Signals) => void): unknown;
  off(event: ShutdownSignal, listener: (signal: NodeJS.Signals) => void): unknown;
}

export interface ShutdownOptions {
  /** Names the process in the lines it writes, e.g. 'sharedllm coordinator'. */
  name: string;
  /** Default `process`. */
  source?: SignalSource;
  /** Ends the process at once; default process.exit. */
  exit?: (code: number) => void;
  /** Writes one line for the operator; default stderr. */
  write?: (line: string) => void;
  /** Default SHUTDOWN.deadlineMs. */
  deadlineMs?: number;
}

/** The exit code of a process killed by `signal`, as shells report it (SIGINT 130, SIGTERM 143). */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 0);
}

type Phase = 'starting' | 'serving' | 'stopping';

/**
 * The signal handling of one command. Create it first thing (a signal while starting then stops the
 * process), call serving() once the command serves, await `requested`, then return `run(steps)`.
 */
export class Shutdown {
  /** Resolves with the first signal received while serving. */
  readonly requested: Promise<NodeJS.Signals>;
  readonly #name: string;
  readonly #source: SignalSource;
  readonly #exit: (code: number) => void;
  readonly #write: (line: string) => void;
  readonly #deadlineMs: number;
  readonly #listener = (signal: NodeJS.Signals) => this.#onSignal(signal);
  #phase: Phase = 'starting';
  #request: (signal: NodeJS.Signals) => void = () => {};
  #running: Promise<number> | undefined;
  #disposed = false;

  constructor(options: ShutdownOptions) {
    this.#name = options.name;
    this.#source = options.source ?? process;
    this.#exit = options.exit ?? ((code) => process.exit(code));
    this.#write = options.write ?? ((line) => process.stderr.write(`${line}\n`));
    this.#deadlineMs = options.deadlineMs ?? SHUTDOWN.deadlineMs;
    this.requested = new Promise((resolve) => (this.#request = resolve));
    for (const signal of SHUTDOWN_SIGNALS) this.#source.on(signal, this.#listener);
  }

  /** From now on the first signal starts the orderly shutdown instead of stopping the process at once. */
  serving(): void {
    if (this.#phase === 'starting') this.#phase = 'serving';
  }

  /**
   * Runs the orderly shutdown once (later calls return the same promise) and resolves with the exit code:
   * 0 when every step finished, 1 when one failed. Past the deadline it exits the process with 1.
   */
  run(steps: () => Promise<void>): Promise<number> {
    this.#phase = 'stopping';
    this.#running ??= (async () => {
      const timer = setTimeout(() => {
        this.#write(`${this.#name}: the orderly shutdown did not finish within ${this.#deadlineMs / 1000} s; exiting now`);
        this.#exit(1);
      }, this.#deadlineMs);
      try {
        await steps();
        this.#write(`${this.#name}: stopped`);
        return 0;
      } catch (error) {
        this.#write(`${this.#name}: shutdown failed: ${error instanceof Error ? error.message : String(error)}`);
        return 1;
      } finally {
        clearTimeout(timer);
      }
    })();
    return this.#running;
  }

  /** Removes the listeners (the process is about to exit, or a test is done). */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const signal of SHUTDOWN_SIGNALS) this.#source.off(signal, this.#listener);
  }

  #onSignal(signal: NodeJS.Signals): void {
    switch (this.#phase) {
      case 'starting':
        this.#write(`${this.#name}: ${signal} while starting; stopped`);
        this.#exit(signalExitCode(signal));
        return;
      case 'serving':
        this.#phase = 'stopping';
        this.#write(`${this.#name}: ${signal}: shutting down (send it again to stop at once)`);
        this.#request(signal);
        return;
      case 'stopping':
        this.#write(`${this.#name}: second ${signal}: stopping at once`);
        this.#exit(signalExitCode(signal));
        return;
    }
  }
}
