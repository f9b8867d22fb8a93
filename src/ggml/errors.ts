// Errors of the ggml layer: each says what was expected, what was found, and what to do.

export interface ExpectedActual {
  expected: string;
  actual: string;
}

export class GgmlError extends Error {
  readonly expected: string;
  readonly actual: string;
  readonly hint: string;
  constructor(message: string, ea: ExpectedActual, hint: string) {
    super(`${message} (expected ${ea.expected}, got ${ea.actual}); ${hint}`);
    this.name = new.target.name;
    this.expected = ea.expected;
    this.actual = ea.actual;
    this.hint = hint;
  }
}

/** The shared libraries could not be found or loaded. */
export class GgmlLoadError extends GgmlError {}

/** A computation or allocation failed inside ggml. */
export class GgmlComputeError extends GgmlError {}
