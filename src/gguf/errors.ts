// Errors of the gguf layer: each says what was expected, what was found, and what to do about it.

/** Base class: every gguf error carries `expected`, `actual` and a `hint`. */
export class GgufError extends Error {
  readonly expected: string;
  readonly actual: string;
  readonly hint: string;
  constructor(message: string, expected: string, actual: string, hint: string) {
    super(`${message} (expected ${expected}, got ${actual}); ${hint}`);
    this.name = new.target.name;
    this.expected = expected;
    this.actual = actual;
    this.hint = hint;
  }
}

/**
 * The bytes are not a GGUF file we can read: bad magic, unsupported version, truncated, or a value that is
 * out of bounds. `offset` is the byte position in the file where the problem was found.
 */
export class InvalidGgufError extends GgufError {
  /** What was being read, e.g. "length of array 'tokenizer.ggml.tokens'". */
  readonly what: string;
  readonly offset: number;
  /** The file, when known. */
  readonly path: string | undefined;
  constructor(what: string, expected: string, actual: string, hint: string, offset: number, path?: string) {
    super(`invalid GGUF at byte ${offset}${path ? ` of ${path}` : ''}: ${what}`, expected, actual, hint);
    this.what = what;
    this.offset = offset;
    this.path = path;
  }

  /** The same error, naming the file it came from. */
  withPath(path: string): InvalidGgufError {
    return new InvalidGgufError(this.what, this.expected, this.actual, this.hint, this.offset, path);
  }
}

/** A ggml tensor type id that this table does not know (removed, or newer than this code). */
export class UnknownGgmlTypeError extends GgufError {
  readonly value: number;
  constructor(value: number) {
    super(
      `unknown ggml tensor type ${value}`,
      'a ggml_type id listed in src/gguf/types.ts',
      String(value),
      'the file may use a type removed from ggml (e.g. Q4_0_4_4) or one newer than this code; ' +
        're-quantize the model with a current llama.cpp or add the type to GGML_TYPES',
    );
    this.value = value;
  }
}

/** A tensor shape that cannot be stored with the given type (bad dims, row not a whole number of blocks). */
export class TensorShapeError extends GgufError {}

/** A metadata key is missing or holds a value of another type than the caller asked for. */
export class GgufKeyError extends GgufError {
  readonly key: string;
  constructor(key: string, expected: string, actual: string, hint: string) {
    super(`metadata key '${key}'`, expected, actual, hint);
    this.key = key;
  }
}

/** A tensor name that the file does not hold. */
export class GgufTensorNotFoundError extends GgufError {
  readonly tensorName: string;
  constructor(name: string, count: number) {
    super(
      `tensor '${name}' not found`,
      `one of the file's ${count} tensor names`,
      `'${name}'`,
      'list file.tensorInfos to see the names; the model may use another architecture naming scheme',
    );
    this.tensorName = name;
  }
}

/** The writer was given something it cannot encode (bad value, wrong data length, duplicate name). */
export class GgufWriteError extends GgufError {}
