// Ctrl-C in an interactive command (chat, demo): the first one during an answer stops that answer and the
// command returns to its prompt; one at the prompt, or a second during the same answer, leaves.
//
// Ctrl-C arrives two ways: as SIGINT (stdin is not a terminal, or `kill -INT`), or, when readline has the
// terminal in raw mode, as readline's own 'SIGINT' event. Both come here. The SIGINT listener uses `on` and
// stays installed until dispose(): node-llama-cpp's signal-exit kills the process when it finds itself the
// only SIGINT listener (see shutdown.ts).
import type { Interface } from 'node:readline';

export class AnswerInterrupts {
  #answer: AbortController | undefined;
  readonly #leave: () => void;
  readonly #listener = () => this.interrupt();
  #readline: Pick<Interface, 'on' | 'off'> | undefined;
  #disposed = false;

  /** `leave` runs on a Ctrl-C that stops no answer. */
  constructor(leave: () => void, private readonly source: NodeJS.EventEmitter = process) {
    this.#leave = leave;
    source.on('SIGINT', this.#listener);
  }

  /** Also take Ctrl-C from a readline interface that has the terminal in raw mode. */
  attach(rl: Pick<Interface, 'on' | 'off'>): void {
    this.#readline = rl;
    rl.on('SIGINT', this.#listener);
  }

  /** The signal of one answer: a Ctrl-C while it runs aborts it. Call answered() when it is over. */
  answering(): AbortSignal {
    this.#answer = new AbortController();
    return this.#answer.signal;
  }

  answered(): void {
    this.#answer = undefined;
  }

  interrupt(): void {
    if (this.#answer && !this.#answer.signal.aborted) {
      this.#answer.abort();
      return;
    }
    this.#leave();
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.source.off('SIGINT', this.#listener);
    this.#readline?.off('SIGINT', this.#listener);
  }
}
