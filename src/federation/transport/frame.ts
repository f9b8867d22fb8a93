/**
 * Binary frames of the data plane (RFC-0001), validated at the edge.
 *
 * Layout, little endian, 21 fixed bytes then three variable parts:
 *
 *   offset  size  field
 *        0     4  magic 'SLF1'
 *        4     1  version (FRAME_VERSION)
 *        5     1  kind (FrameKind)
 *        6     2  flags (none defined in version 1: must be 0)
 *        8     4  id (u32: pairs a REQUEST with its RESPONSE/ERROR, a PING with its PONG)
 *       12     1  methodLen (bytes of method)
 *       13     4  headerLen (bytes of header)
 *       17     4  payloadLen (bytes of payload)
 *       21     m  method: ASCII [A-Za-z0-9._:/-], required for REQUEST and NOTIFY
 *     21+m     h  header: UTF-8 JSON (headerLen 0 means no header: `undefined`)
 *   21+m+h     p  payload: raw bytes (hidden states, weights), never copied on encode
 *
 * The decoder checks magic, version, kind and flags as soon as those bytes arrive, and every declared
 * size against LIMITS before waiting for the bytes; it buffers only bytes actually received, and
 * copies a payload at most once (when it arrived in several socket chunks).
 */
import { ByteQueue } from './byte-queue.ts';

export const MAGIC = Buffer.from('SLF1', 'ascii');
export const FRAME_VERSION = 1;
/** Bytes before the method: magic, version, kind, flags, id, methodLen, headerLen, payloadLen. */
export const FIXED_HEADER_BYTES = 21;

/** Protocol maxima. A server may lower them (ServerOptions.limits), never raise them. */
export const LIMITS = { maxHeaderBytes: 64 * 1024, maxPayloadBytes: 512 * 1024 * 1024, maxMethodLen: 64 };
export type Limits = typeof LIMITS;

/** Frame kinds. 1-6 are the RPC layer's, 7 opens every connection, 8-10 belong to the relay handshake. */
export const FrameKind = {
  REQUEST: 1,
  RESPONSE: 2,
  ERROR: 3,
  NOTIFY: 4,
  PING: 5,
  PONG: 6,
  /** First frame each way on a data connection: header TransportHello. */
  HELLO: 7,
  /** Client -> relay, first frame: header RelayOpen (which node to reach). */
  RELAY_OPEN: 8,
  /** Hidden node -> relay, first frame of a data connection: header RelayAccept (the ticket). */
  RELAY_ACCEPT: 9,
  /** Relay -> client: spliced; everything after this frame is end to end. Header RelayReady. */
  RELAY_READY: 10,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];
const KIND_NAMES = new Map<number, string>(Object.entries(FrameKind).map(([name, value]) => [value, name]));

export function kindName(kind: number): string {
  return KIND_NAMES.get(kind) ?? `unknown(${kind})`;
}

export interface Frame {
  kind: FrameKind;
  id: number;
  method: string;
  header: unknown;
  payload: Uint8Array;
  /**
   * Set by the decoder (never on encode) when the payload was over the receiver's per-method limit:
   * the declared size; the bytes were skipped and `payload` is empty. The connection stays in sync.
   */
  skippedPayloadBytes?: number;
}

export const FRAME_ERROR_CODES = [
  'bad_magic',
  'bad_version',
  'bad_kind',
  'bad_flags',
  'bad_id',
  'bad_method',
  'method_too_long',
  'header_too_large',
  'payload_too_large',
  'bad_utf8',
  'bad_json',
] as const;
export type FrameErrorCode = (typeof FRAME_ERROR_CODES)[number];

/** A malformed frame (decode) or an unencodable one (encode). The connection cannot be trusted after it. */
export class FrameError extends Error {
  constructor(
    readonly code: FrameErrorCode,
    message: string,
    readonly expected: string,
    readonly actual: string,
    readonly hint: string,
  ) {
    super(`${message}: expected ${expected}, got ${actual}. ${hint}`);
    this.name = 'FrameError';
  }
}

const METHOD_CHAR = new Uint8Array(128);
for (const char of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:/-') METHOD_CHAR[char.charCodeAt(0)] = 1;
const EMPTY = Buffer.alloc(0);
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Limits in force: the protocol's, lowered (never raised) by `override`. */
export function effectiveLimits(override: Partial<Limits> = {}): Limits {
  const pick = (key: keyof Limits) => Math.min(LIMITS[key], Math.max(0, override[key] ?? LIMITS[key]));
  return { maxHeaderBytes: pick('maxHeaderBytes'), maxPayloadBytes: pick('maxPayloadBytes'), maxMethodLen: pick('maxMethodLen') };
}

function needsMethod(kind: number): boolean {
  return kind === FrameKind.REQUEST || kind === FrameKind.NOTIFY;
}

function checkMethodBytes(bytes: Uint8Array, kind: number): void {
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i]!;
    if (byte >= 128 || METHOD_CHAR[byte] !== 1) {
      throw new FrameError('bad_method', 'method name has a forbidden byte', 'ASCII [A-Za-z0-9._:/-]', `0x${byte.toString(16)} at ${i}`, 'name methods like "worker.step"');
    }
  }
  if (bytes.length === 0 && needsMethod(kind)) {
    throw new FrameError('bad_method', `${kindName(kind)} frame without a method`, 'a method name', 'an empty one', 'REQUEST and NOTIFY frames name the method to call');
  }
}

/**
 * The bytes of one frame as pieces: [fixed header + method + header JSON, payload] (the payload piece
 * is a view of f.payload, not a copy; omitted when empty). Write the pieces in order, back to back.
 * Throws FrameError when the frame breaks a protocol limit.
 */
export function encodeFrame(f: Frame): Buffer[] {
  if (!KIND_NAMES.has(f.kind)) throw new FrameError('bad_kind', 'unknown frame kind', 'one of FrameKind', String(f.kind), 'use the FrameKind table');
  if (!Number.isInteger(f.id) || f.id < 0 || f.id > 0xffffffff) throw new FrameError('bad_id', 'frame id out of range', 'an integer in [0, 2^32)', String(f.id), 'ids are u32');
  const method = Buffer.from(f.method, 'latin1');
  if (method.length !== f.method.length || method.toString('latin1') !== f.method) {
    throw new FrameError('bad_method', 'method name is not ASCII', 'ASCII [A-Za-z0-9._:/-]', JSON.stringify(f.method), 'name methods like "worker.step"');
  }
  if (method.length > LIMITS.maxMethodLen) {
    throw new FrameError('method_too_long', 'method name too long', `at most ${LIMITS.maxMethodLen} bytes`, `${method.length}`, 'use a shorter method name');
  }
  checkMethodBytes(method, f.kind);
  let json: string | undefined;
  try {
    json = f.header === undefined ? undefined : JSON.stringify(f.header);
  } catch (error) {
    throw new FrameError('bad_json', 'header cannot be written as JSON', 'a JSON value', (error as Error).message, 'headers carry plain data: no bigint, no cycles');
  }
  const header = json === undefined ? EMPTY : Buffer.from(json, 'utf8');
  if (header.length > LIMITS.maxHeaderBytes) {
    throw new FrameError('header_too_large', 'header too large', `at most ${LIMITS.maxHeaderBytes} bytes of JSON`, `${header.length}`, 'move bulk data into the payload');
  }
  if (f.payload.length > LIMITS.maxPayloadBytes) {
    throw new FrameError('payload_too_large', 'payload too large', `at most ${LIMITS.maxPayloadBytes} bytes`, `${f.payload.length}`, 'split the data over several requests');
  }

  const head = Buffer.allocUnsafe(FIXED_HEADER_BYTES + method.length + header.length);
  MAGIC.copy(head, 0);
  head.writeUInt8(FRAME_VERSION, 4);
  head.writeUInt8(f.kind, 5);
  head.writeUInt16LE(0, 6);
  head.writeUInt32LE(f.id, 8);
  head.writeUInt8(method.length, 12);
  head.writeUInt32LE(header.length, 13);
  head.writeUInt32LE(f.payload.length, 17);
  method.copy(head, FIXED_HEADER_BYTES);
  header.copy(head, FIXED_HEADER_BYTES + method.length);
  if (f.payload.length === 0) return [head];
  const payload = Buffer.isBuffer(f.payload) ? f.payload : Buffer.from(f.payload.buffer, f.payload.byteOffset, f.payload.length);
  return [head, payload];
}

/** One contiguous buffer (copies the payload): for tests and small frames. */
export function frameBytes(f: Frame): Buffer {
  return Buffer.concat(encodeFrame(f));
}

/** The fixed part of a frame being received. */
interface Head {
  kind: FrameKind;
  id: number;
  methodLen: number;
  headerLen: number;
  payloadLen: number;
  /** Method and header, parsed once they have arrived (before the payload). */
  parsed?: { method: string; header: unknown };
}

export interface DecoderOptions {
  /** Lower the protocol LIMITS for this connection. */
  limits?: Partial<Limits>;
  /**
   * Largest payload accepted for this kind and method (at most limits.maxPayloadBytes). A frame
   * declaring more is delivered with an empty payload and `skippedPayloadBytes`, its payload bytes
   * skipped as they arrive, so the connection survives an oversized request.
   */
  payloadLimit?: (kind: FrameKind, method: string) => number;
}

/**
 * Streaming decoder: push socket chunks, get whole frames. Throws FrameError on anything malformed;
 * once it has thrown it stays failed (every later push throws the same error).
 */
export class FrameDecoder {
  private readonly queue = new ByteQueue();
  private readonly limits: Limits;
  private readonly payloadLimit: DecoderOptions['payloadLimit'];
  private head: Head | undefined;
  /** Payload bytes still to drop for a frame delivered with skippedPayloadBytes. */
  private skipping = 0;
  private failure: FrameError | undefined;

  constructor(options: DecoderOptions = {}) {
    this.limits = effectiveLimits(options.limits);
    this.payloadLimit = options.payloadLimit;
  }

  /** Bytes received and not yet part of a delivered frame. */
  get buffered(): number {
    return this.queue.length;
  }

  /** Decode every whole frame in what has arrived so far (write + read until undefined). */
  push(chunk: Buffer): Frame[] {
    this.write(chunk);
    const frames: Frame[] = [];
    for (let frame = this.read(); frame !== undefined; frame = this.read()) frames.push(frame);
    return frames;
  }

  /** Pull interface, part 1: add received bytes without decoding them yet. */
  write(chunk: Buffer): void {
    if (this.failure !== undefined) throw this.failure;
    this.queue.push(chunk);
  }

  /**
   * Pull interface, part 2: the next whole frame, or undefined until more bytes arrive. Pulling one
   * frame at a time lets the caller act on it (a HELLO changes payload limits) before the next one is
   * decoded, and lets it act on the frames that came before a malformed one.
   */
  read(): Frame | undefined {
    if (this.failure !== undefined) throw this.failure;
    try {
      return this.next();
    } catch (error) {
      if (error instanceof FrameError) this.failure = error;
      throw error;
    }
  }

  /**
   * The bytes received after the last delivered frame, removed from the decoder. Exact only between
   * frames (not while skipping a payload): the relay uses it to pass on bytes that followed a
   * handshake frame.
   */
  takeRemaining(): Buffer {
    this.head = undefined;
    return this.queue.drain();
  }

  private next(): Frame | undefined {
    if (this.skipping > 0) {
      this.skipping -= this.queue.skip(this.skipping);
      if (this.skipping > 0) return undefined;
    }
    if (this.head === undefined) {
      this.checkEarly();
      if (this.queue.length < FIXED_HEADER_BYTES) return undefined;
      this.head = this.parseFixed(this.queue.peek(FIXED_HEADER_BYTES));
    }
    const head = this.head;
    const prefix = FIXED_HEADER_BYTES + head.methodLen + head.headerLen;
    if (this.queue.length < prefix) return undefined;

    // The payload decision needs the method, so method and header are parsed before the payload arrives.
    head.parsed ??= this.parseVariable(this.queue.peek(prefix), head);
    const { method, header } = head.parsed;
    const limit = Math.min(this.limits.maxPayloadBytes, this.payloadLimit?.(head.kind, method) ?? Infinity);
    if (head.payloadLen > limit) {
      this.queue.skip(prefix);
      this.head = undefined;
      this.skipping = head.payloadLen;
      this.skipping -= this.queue.skip(this.skipping);
      return { kind: head.kind, id: head.id, method, header, payload: EMPTY, skippedPayloadBytes: head.payloadLen };
    }
    if (this.queue.length < prefix + head.payloadLen) return undefined;
    this.queue.skip(prefix);
    const payload = head.payloadLen === 0 ? EMPTY : this.queue.take(head.payloadLen);
    this.head = undefined;
    return { kind: head.kind, id: head.id, method, header, payload };
  }

  /** Reject garbage from its first bytes: magic, version and kind are checked as they arrive. */
  private checkEarly(): void {
    const available = Math.min(this.queue.length, 6);
    for (let i = 0; i < available; i++) {
      const byte = this.queue.byteAt(i);
      if (i < 4 && byte !== MAGIC[i]) {
        const seen = this.queue.peek(Math.min(4, this.queue.length));
        throw new FrameError('bad_magic', 'not a SharedLLM frame', `magic 'SLF1'`, `0x${seen.toString('hex')}`, 'the peer is not speaking the SharedLLM data plane (wrong port, or TLS on one side only?)');
      }
      if (i === 4 && byte !== FRAME_VERSION) {
        throw new FrameError('bad_version', 'unsupported frame version', String(FRAME_VERSION), String(byte), 'run the same SharedLLM version on both ends');
      }
      if (i === 5 && !KIND_NAMES.has(byte)) {
        throw new FrameError('bad_kind', 'unknown frame kind', 'one of FrameKind (1-10)', String(byte), 'run the same SharedLLM version on both ends');
      }
    }
  }

  private parseFixed(bytes: Buffer): Head {
    const kind = bytes.readUInt8(5) as FrameKind;
    const flags = bytes.readUInt16LE(6);
    if (flags !== 0) throw new FrameError('bad_flags', 'unknown frame flags', '0 (no flags in version 1)', `0x${flags.toString(16)}`, 'run the same SharedLLM version on both ends');
    const head: Head = {
      kind,
      id: bytes.readUInt32LE(8),
      methodLen: bytes.readUInt8(12),
      headerLen: bytes.readUInt32LE(13),
      payloadLen: bytes.readUInt32LE(17),
    };
    const { maxMethodLen, maxHeaderBytes, maxPayloadBytes } = this.limits;
    if (head.methodLen > maxMethodLen) {
      throw new FrameError('method_too_long', 'method name too long', `at most ${maxMethodLen} bytes`, String(head.methodLen), 'use a shorter method name');
    }
    if (head.headerLen > maxHeaderBytes) {
      throw new FrameError('header_too_large', 'header too large', `at most ${maxHeaderBytes} bytes`, String(head.headerLen), 'move bulk data into the payload');
    }
    if (head.payloadLen > maxPayloadBytes) {
      throw new FrameError('payload_too_large', 'payload too large', `at most ${maxPayloadBytes} bytes`, String(head.payloadLen), 'split the data over several requests');
    }
    return head;
  }

  private parseVariable(bytes: Buffer, head: Head): { method: string; header: unknown } {
    const methodBytes = bytes.subarray(FIXED_HEADER_BYTES, FIXED_HEADER_BYTES + head.methodLen);
    checkMethodBytes(methodBytes, head.kind);
    const method = methodBytes.toString('latin1');
    if (head.headerLen === 0) return { method, header: undefined };
    const headerBytes = bytes.subarray(FIXED_HEADER_BYTES + head.methodLen, FIXED_HEADER_BYTES + head.methodLen + head.headerLen);
    let text: string;
    try {
      text = utf8.decode(headerBytes);
    } catch {
      throw new FrameError('bad_utf8', 'header is not valid UTF-8', 'UTF-8 JSON', `${head.headerLen} bytes that do not decode`, 'encode headers with JSON.stringify and UTF-8');
    }
    try {
      return { method, header: JSON.parse(text) as unknown };
    } catch (error) {
      throw new FrameError('bad_json', 'header is not JSON', 'a JSON value', (error as Error).message.slice(0, 200), 'encode headers with JSON.stringify');
    }
  }
}
