// Where GGUF bytes come from: an interface with a real implementation (positional reads from a file, never
// the whole file) and an in-memory one (tests, fuzzing, bytes received over the network).
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { GgufError } from './errors.ts';

export interface ByteSource {
  /** Total bytes available. */
  readonly size: number;
  /** Exactly `length` bytes starting at `offset`; throws SourceRangeError when that runs past `size`. */
  read(offset: number, length: number): Buffer;
  /** Releases the file handle (if any). Reading after close throws. */
  close(): void;
}

/** A read outside the source's bytes, or on a closed source. */
export class SourceRangeError extends GgufError {}

function checkRange(offset: number, length: number, size: number, what: string): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new SourceRangeError(
      `read from ${what}`,
      'a non-negative integer offset and length',
      `offset ${offset}, length ${length}`,
      'this is a bug in the caller',
    );
  }
  if (offset + length > size) {
    throw new SourceRangeError(
      `read past the end of ${what}`,
      `offset + length <= ${size}`,
      `offset ${offset} + length ${length} = ${offset + length}`,
      'the file may have been truncated or replaced while open',
    );
  }
}

// fs.readSync takes at most 2 GiB - 1 per call; read big ranges in pieces of this size.
const MAX_READ_CHUNK = 1 << 30;

/** Positional reads from a file on disk. Holds an open file descriptor until close(). */
export class FileSource implements ByteSource {
  readonly path: string;
  readonly size: number;
  private fd: number | undefined;

  constructor(path: string) {
    this.path = path;
    const fd = openSync(path, 'r');
    try {
      this.size = fstatSync(fd).size;
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    this.fd = fd;
  }

  read(offset: number, length: number): Buffer {
    const fd = this.fd;
    if (fd === undefined) {
      throw new SourceRangeError(`read from ${this.path}`, 'an open file', 'a closed FileSource', 'open it again');
    }
    checkRange(offset, length, this.size, this.path);
    const out = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = readSync(fd, out, done, Math.min(length - done, MAX_READ_CHUNK), offset + done);
      if (n === 0) {
        throw new SourceRangeError(
          `unexpected end of ${this.path}`,
          `${length} bytes at offset ${offset}`,
          `${done} bytes`,
          'the file was truncated while open',
        );
      }
      done += n;
    }
    return out;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** Reads from bytes already in memory. `read` returns views into them (no copy). */
export class MemorySource implements ByteSource {
  readonly size: number;
  private bytes: Buffer | undefined;

  constructor(bytes: Uint8Array) {
    this.bytes = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.size = bytes.byteLength;
  }

  read(offset: number, length: number): Buffer {
    if (this.bytes === undefined) {
      throw new SourceRangeError('read from memory', 'an open MemorySource', 'a closed one', 'do not read after close');
    }
    checkRange(offset, length, this.size, 'in-memory GGUF bytes');
    return this.bytes.subarray(offset, offset + length);
  }

  close(): void {
    this.bytes = undefined;
  }
}
