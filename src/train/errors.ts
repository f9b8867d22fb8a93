// Errors of the training layer: what was expected, what was found, and what to do about it.

export class TrainError extends Error {
  readonly expected: string;
  readonly actual: string;
  readonly hint: string;
  constructor(message: string, expected: string, actual: string, hint: string) {
    super(`${message}: expected ${expected}, got ${actual}. ${hint}`);
    this.name = new.target.name;
    this.expected = expected;
    this.actual = actual;
    this.hint = hint;
  }
}

/** The model and its training state would not fit in the memory available. */
export class TrainMemoryError extends TrainError {}

/** A checkpoint that cannot be resumed here (not a checkpoint, another model, damaged). */
export class CheckpointError extends TrainError {}
