// Errors of the model layer: what was expected, what was found, what to do.

export class ModelError extends Error {
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

export class UnsupportedArchitectureError extends ModelError {}
export class MissingTensorError extends ModelError {}
export class ContextLimitError extends ModelError {}
export class SequenceError extends ModelError {}
export class OutOfMemoryError extends ModelError {}
