// A growable little-endian byte buffer for encoding the GGUF header (metadata and tensor index).

export class ByteWriter {
  private buf: Buffer;
  /** Bytes written so far. */
  length = 0;

  constructor(initialCapacity = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initialCapacity);
  }

  /**
   * Makes room for `n` more bytes and returns the position to write them at. May replace `this.buf`, so
   * callers must call it before reading `this.buf`.
   */
  private reserve(n: number): number {
    const at = this.length;
    if (at + n > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, at + n));
      this.buf.copy(grown, 0, 0, at);
      this.buf = grown;
    }
    this.length += n;
    return at;
  }

  u8(x: number): void {
    const at = this.reserve(1);
    this.buf[at] = x & 0xff;
  }
  i8(x: number): void {
    const at = this.reserve(1);
    this.buf.writeInt8(x, at);
  }
  u16(x: number): void {
    const at = this.reserve(2);
    this.buf.writeUInt16LE(x, at);
  }
  i16(x: number): void {
    const at = this.reserve(2);
    this.buf.writeInt16LE(x, at);
  }
  u32(x: number): void {
    const at = this.reserve(4);
    this.buf.writeUInt32LE(x, at);
  }
  i32(x: number): void {
    const at = this.reserve(4);
    this.buf.writeInt32LE(x, at);
  }
  f32(x: number): void {
    const at = this.reserve(4);
    this.buf.writeFloatLE(x, at);
  }
  f64(x: number): void {
    const at = this.reserve(8);
    this.buf.writeDoubleLE(x, at);
  }
  u64(x: bigint | number): void {
    const at = this.reserve(8);
    this.buf.writeBigUInt64LE(BigInt(x), at);
  }
  i64(x: bigint): void {
    const at = this.reserve(8);
    this.buf.writeBigInt64LE(x, at);
  }

  /** A GGUF string: u64 byte length, then UTF-8 bytes. */
  string(s: string): void {
    const n = Buffer.byteLength(s, 'utf8');
    this.u64(n);
    const at = this.reserve(n);
    this.buf.write(s, at, n, 'utf8');
  }

  bytes(b: Uint8Array): void {
    const at = this.reserve(b.byteLength);
    this.buf.set(b, at);
  }

  /** Zero bytes up to the next multiple of `alignment`. */
  pad(alignment: number): void {
    const n = (alignment - (this.length % alignment)) % alignment;
    const at = this.reserve(n);
    this.buf.fill(0, at, this.length);
  }

  /** The bytes written (a view, valid until the next write). */
  view(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}
