// A forward-only, bounds-checked reader over a ByteSource with a growing window.
//
// The metadata section of a GGUF holds hundreds of thousands of small values (a 128k-token vocabulary is
// 128k length-prefixed strings). Reading each with its own fs.read would be slow, so the cursor reads big
// chunks (64 KiB, doubling up to 16 MiB) and decodes from memory. Every read is checked against the bytes
// left in the source first: a truncated or hostile file gets an InvalidGgufError, never a short read or an
// allocation larger than the file.
import { InvalidGgufError } from './errors.ts';
import type { ByteSource } from './source.ts';

const FIRST_CHUNK = 64 * 1024;
const MAX_CHUNK = 16 * 1024 * 1024;
const TWO_POW_32 = 4294967296;

export class Cursor {
  /** Absolute position of the next byte to read. */
  pos = 0;
  private window: Buffer = Buffer.alloc(0);
  private windowStart = 0;
  private chunk = FIRST_CHUNK;
  private readonly source: ByteSource;

  constructor(source: ByteSource) {
    this.source = source;
  }

  /** Bytes left in the source after `pos`. */
  get remaining(): number {
    return this.source.size - this.pos;
  }

  /** An InvalidGgufError at the current position (or at `offset`). */
  invalid(what: string, expected: string, actual: string, hint: string, offset = this.pos): InvalidGgufError {
    return new InvalidGgufError(what, expected, actual, hint, offset);
  }

  /** Index in `window` of `n` bytes starting at `pos`, loading them if needed. Does not advance. */
  private need(n: number, what: string): number {
    if (n > this.remaining) {
      throw this.invalid(
        `file ends inside ${what}`,
        `${n} more bytes`,
        `${this.remaining} bytes left (file size ${this.source.size})`,
        'the file is truncated: download or convert it again',
      );
    }
    const rel = this.pos - this.windowStart;
    if (rel >= 0 && rel + n <= this.window.length) return rel;
    const length = Math.min(Math.max(n, this.chunk), this.remaining);
    this.window = this.source.read(this.pos, length);
    this.windowStart = this.pos;
    this.chunk = Math.min(this.chunk * 2, MAX_CHUNK);
    return 0;
  }

  u8(what: string): number {
    const i = this.need(1, what);
    this.pos += 1;
    return this.window[i] as number;
  }

  i8(what: string): number {
    const i = this.need(1, what);
    this.pos += 1;
    return this.window.readInt8(i);
  }

  u16(what: string): number {
    const i = this.need(2, what);
    this.pos += 2;
    return this.window.readUInt16LE(i);
  }

  i16(what: string): number {
    const i = this.need(2, what);
    this.pos += 2;
    return this.window.readInt16LE(i);
  }

  u32(what: string): number {
    const i = this.need(4, what);
    this.pos += 4;
    return this.window.readUInt32LE(i);
  }

  i32(what: string): number {
    const i = this.need(4, what);
    this.pos += 4;
    return this.window.readInt32LE(i);
  }

  f32(what: string): number {
    const i = this.need(4, what);
    this.pos += 4;
    return this.window.readFloatLE(i);
  }

  f64(what: string): number {
    const i = this.need(8, what);
    this.pos += 8;
    return this.window.readDoubleLE(i);
  }

  u64(what: string): bigint {
    const i = this.need(8, what);
    this.pos += 8;
    return this.window.readBigUInt64LE(i);
  }

  i64(what: string): bigint {
    const i = this.need(8, what);
    this.pos += 8;
    return this.window.readBigInt64LE(i);
  }

  /**
   * A u64 count or length, as a number, checked so that `count * unitSize` bytes fit in what is left of the
   * file after the field. `unitSize` is the smallest possible encoding of one unit (1 for string bytes).
   */
  count(what: string, unitSize: number): number {
    const at = this.pos;
    const i = this.need(8, what);
    // Exact below 2^53; anything larger fails the bound below anyway.
    const value = this.window.readUInt32LE(i) + this.window.readUInt32LE(i + 4) * TWO_POW_32;
    this.pos += 8;
    if (value * unitSize > this.remaining) {
      const exact = this.window.readBigUInt64LE(i);
      throw this.invalid(
        `${what} is larger than the rest of the file`,
        `at most ${Math.floor(this.remaining / unitSize)} (${this.remaining} bytes left, >= ${unitSize} each)`,
        String(exact),
        'the file is corrupt or truncated',
        at,
      );
    }
    return value;
  }

  /** A GGUF string: u64 byte length, then UTF-8 bytes. */
  string(what: string): string {
    const n = this.count(`length of ${what}`, 1);
    const i = this.need(n, what);
    this.pos += n;
    return this.window.toString('utf8', i, i + n);
  }

  /**
   * `n` GGUF strings in a row (a string array's items). Same result as calling string() n times, with a
   * fast path for strings already in the window: a 128k-token vocabulary is mostly tiny strings.
   */
  strings(n: number, what: string): string[] {
    const out = new Array<string>(n);
    for (let k = 0; k < n; k++) {
      const w = this.window;
      const rel = this.pos - this.windowStart;
      if (rel >= 0 && rel + 8 <= w.length) {
        const len = w.readUInt32LE(rel) + w.readUInt32LE(rel + 4) * TWO_POW_32;
        // The window lies within the file, so a string inside it needs no further bounds check.
        if (rel + 8 + len <= w.length) {
          out[k] = w.toString('utf8', rel + 8, rel + 8 + len);
          this.pos += 8 + len;
          continue;
        }
      }
      out[k] = this.string(`item ${k} of ${what}`);
    }
    return out;
  }

  /** `n` raw bytes as a view (valid until the next read; copy to keep). */
  bytes(n: number, what: string): Buffer {
    const i = this.need(n, what);
    this.pos += n;
    return this.window.subarray(i, i + n);
  }
}
