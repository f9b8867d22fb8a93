import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ByteQueue } from './byte-queue.ts';
import { encodeFrame, FIXED_HEADER_BYTES, frameBytes, FrameDecoder, FrameError, FrameKind, LIMITS } from './frame.ts';
import type { Frame, FrameErrorCode } from './frame.ts';
import { Rng } from './testing.ts';

const empty = new Uint8Array(0);

function frame(overrides: Partial<Frame> = {}): Frame {
  return { kind: FrameKind.REQUEST, id: 7, method: 'worker.step', header: { seq: 1, positions: [0, 1, 2] }, payload: empty, ...overrides };
}

/** A raw frame with chosen fixed-header fields (for sizes the encoder refuses to write). */
function rawFrame(fields: { magic?: string; version?: number; kind?: number; flags?: number; id?: number; method?: Buffer; header?: Buffer; payload?: Buffer; methodLen?: number; headerLen?: number; payloadLen?: number }): Buffer {
  const method = fields.method ?? Buffer.from('m');
  const header = fields.header ?? Buffer.from('{}');
  const payload = fields.payload ?? Buffer.alloc(0);
  const fixed = Buffer.alloc(FIXED_HEADER_BYTES);
  fixed.write(fields.magic ?? 'SLF1', 0, 'latin1');
  fixed.writeUInt8(fields.version ?? 1, 4);
  fixed.writeUInt8(fields.kind ?? FrameKind.REQUEST, 5);
  fixed.writeUInt16LE(fields.flags ?? 0, 6);
  fixed.writeUInt32LE(fields.id ?? 1, 8);
  fixed.writeUInt8(fields.methodLen ?? method.length, 12);
  fixed.writeUInt32LE(fields.headerLen ?? header.length, 13);
  fixed.writeUInt32LE(fields.payloadLen ?? payload.length, 17);
  return Buffer.concat([fixed, method, header, payload]);
}

function decodeError(bytes: Buffer, options?: ConstructorParameters<typeof FrameDecoder>[0]): FrameErrorCode {
  try {
    new FrameDecoder(options).push(bytes);
  } catch (error) {
    assert.ok(error instanceof FrameError, `expected a FrameError, got ${String(error)}`);
    return error.code;
  }
  assert.fail('decoding did not throw');
}

function roundTrip(f: Frame, splits: (n: number) => number[] = () => []): Frame[] {
  const bytes = frameBytes(f);
  const decoder = new FrameDecoder();
  const out: Frame[] = [];
  let start = 0;
  for (const end of [...splits(bytes.length), bytes.length]) {
    out.push(...decoder.push(bytes.subarray(start, end)));
    start = end;
  }
  assert.equal(decoder.buffered, 0);
  return out;
}

test('every kind round-trips, whole and split at every byte', () => {
  const payload = Uint8Array.from({ length: 300 }, (_, i) => i % 251);
  const cases: Frame[] = [
    frame(),
    frame({ kind: FrameKind.RESPONSE, method: '', header: { ok: true, text: 'héllo 世界 🎉' }, payload }),
    frame({ kind: FrameKind.ERROR, method: '', header: { code: 'bad_request', message: 'x' } }),
    frame({ kind: FrameKind.NOTIFY, id: 0, method: 'a.b:c/d-e_f', header: [1, 'two', null] }),
    frame({ kind: FrameKind.PING, id: 0xffffffff, method: '', header: undefined }),
    frame({ kind: FrameKind.PONG, method: '', header: undefined }),
    frame({ kind: FrameKind.HELLO, id: 0, method: '', header: { session: 's', protocolVersion: 1 } }),
    frame({ kind: FrameKind.RELAY_OPEN, method: '', header: 'just a string' }),
    frame({ kind: FrameKind.RELAY_ACCEPT, method: '', header: 0 }),
    frame({ kind: FrameKind.RELAY_READY, method: '', header: null }),
  ];
  for (const f of cases) {
    const whole = roundTrip(f);
    assert.equal(whole.length, 1);
    assert.deepEqual({ ...whole[0]!, payload: [...whole[0]!.payload] }, { ...f, payload: [...f.payload] });
    const bytes = frameBytes(f);
    for (let cut = 1; cut < bytes.length; cut += 1) {
      const split = roundTrip(f, () => [cut]);
      assert.equal(split.length, 1);
      assert.deepEqual(split[0]!.header, f.header);
      assert.deepEqual([...split[0]!.payload], [...f.payload]);
    }
    const byByte = roundTrip(f, (n) => Array.from({ length: n - 1 }, (_, i) => i + 1));
    assert.deepEqual(byByte[0]!.header, f.header);
  }
});

test('several frames in one chunk, and a 1 MiB payload in random chunks', () => {
  const rng = new Rng(1);
  const big = rng.bytes(1024 * 1024 + 17);
  const frames = [frame({ id: 1 }), frame({ id: 2, payload: big }), frame({ kind: FrameKind.PING, id: 3, method: '', header: undefined })];
  const bytes = Buffer.concat(frames.map(frameBytes));
  const decoder = new FrameDecoder();
  const out: Frame[] = [];
  for (let at = 0; at < bytes.length; ) {
    const size = 1 + rng.int(70_000);
    out.push(...decoder.push(bytes.subarray(at, at + size)));
    at += size;
  }
  assert.deepEqual(out.map((f) => f.id), [1, 2, 3]);
  assert.ok(Buffer.from(out[1]!.payload).equals(big));
});

test('encodeFrame does not copy the payload', () => {
  const payload = new Float32Array([1, 2, 3, 4]);
  const bytes = new Uint8Array(payload.buffer, 4, 8);
  const pieces = encodeFrame(frame({ payload: bytes }));
  assert.equal(pieces.length, 2);
  assert.equal(pieces[1]!.buffer, payload.buffer);
  assert.equal(pieces[1]!.byteOffset, 4);
  assert.equal(pieces[1]!.length, 8);
  assert.equal(encodeFrame(frame()).length, 1, 'no payload piece when the payload is empty');
});

test('method length limit: 64 bytes pass, 65 are refused on encode and decode', () => {
  const ok = 'm'.repeat(LIMITS.maxMethodLen);
  assert.equal(roundTrip(frame({ method: ok }))[0]!.method, ok);
  assert.throws(() => encodeFrame(frame({ method: `${ok}x` })), (e: unknown) => e instanceof FrameError && e.code === 'method_too_long');
  assert.equal(decodeError(rawFrame({ method: Buffer.from(`${ok}x`) })), 'method_too_long');
  assert.equal(decodeError(rawFrame({ methodLen: 255, method: Buffer.alloc(0) })), 'method_too_long');
  assert.equal(decodeError(rawFrame({ method: Buffer.from('abcd') }), { limits: { maxMethodLen: 3 } }), 'method_too_long');
});

test('method characters: ASCII [A-Za-z0-9._:/-] only; REQUEST and NOTIFY need one', () => {
  for (const bad of ['has space', 'é', 'a\nb', 'a"b', '\u0000']) {
    assert.throws(() => encodeFrame(frame({ method: bad })), FrameError, bad);
  }
  assert.equal(decodeError(rawFrame({ method: Buffer.from([0x61, 0xff]) })), 'bad_method');
  assert.equal(decodeError(rawFrame({ method: Buffer.from('a b') })), 'bad_method');
  assert.equal(decodeError(rawFrame({ method: Buffer.alloc(0) })), 'bad_method');
  assert.equal(decodeError(rawFrame({ kind: FrameKind.NOTIFY, method: Buffer.alloc(0) })), 'bad_method');
  assert.equal(new FrameDecoder().push(rawFrame({ kind: FrameKind.RESPONSE, method: Buffer.alloc(0) })).length, 1);
});

test('header limit: 64 KiB passes, one byte more is refused on encode and decode', () => {
  const fits = 'x'.repeat(LIMITS.maxHeaderBytes - 2); // JSON adds two quotes
  assert.equal(roundTrip(frame({ header: fits }))[0]!.header, fits);
  assert.throws(() => encodeFrame(frame({ header: `${fits}x` })), (e: unknown) => e instanceof FrameError && e.code === 'header_too_large');
  assert.equal(decodeError(rawFrame({ header: Buffer.from(JSON.stringify(`${fits}x`)) })), 'header_too_large');
  // The declared length alone is refused before any header byte arrives.
  assert.equal(decodeError(rawFrame({ headerLen: 0xffffffff, header: Buffer.alloc(0) }).subarray(0, FIXED_HEADER_BYTES)), 'header_too_large');
  assert.equal(decodeError(rawFrame({ header: Buffer.from('"abcdef"') }), { limits: { maxHeaderBytes: 4 } }), 'header_too_large');
});

test('payload limit: declared sizes over 512 MiB are refused from the 21 fixed bytes', () => {
  for (const declared of [LIMITS.maxPayloadBytes + 1, 0xffffffff]) {
    const fixed = rawFrame({ payloadLen: declared }).subarray(0, FIXED_HEADER_BYTES);
    assert.equal(decodeError(fixed), 'payload_too_large');
  }
  const atLimit = rawFrame({ payloadLen: LIMITS.maxPayloadBytes });
  const decoder = new FrameDecoder();
  assert.deepEqual(decoder.push(atLimit), [], 'a declared 512 MiB payload waits for its bytes');
  assert.equal(decoder.buffered, atLimit.length, 'and holds only the bytes received');
  assert.equal(decodeError(rawFrame({ payload: Buffer.alloc(10) }), { limits: { maxPayloadBytes: 9 } }), 'payload_too_large');
  assert.throws(() => encodeFrame(frame({ payload: { length: LIMITS.maxPayloadBytes + 1 } as Uint8Array })), (e: unknown) => e instanceof FrameError && e.code === 'payload_too_large');
});

test('limits can be lowered, never raised', () => {
  const decoder = new FrameDecoder({ limits: { maxHeaderBytes: 10 * LIMITS.maxHeaderBytes } });
  const bytes = rawFrame({ headerLen: LIMITS.maxHeaderBytes + 1, header: Buffer.alloc(0) }).subarray(0, FIXED_HEADER_BYTES);
  assert.throws(() => decoder.push(bytes), (e: unknown) => e instanceof FrameError && e.code === 'header_too_large');
});

test('magic, version, kind and flags are checked as soon as their bytes arrive', () => {
  assert.equal(decodeError(Buffer.from('G')), 'bad_magic', 'the first wrong byte is enough');
  assert.equal(decodeError(Buffer.from('GET / HTTP/1.1\r\n')), 'bad_magic');
  assert.equal(decodeError(Buffer.from([0x16, 0x03, 0x01])), 'bad_magic', 'a TLS ClientHello');
  assert.equal(decodeError(rawFrame({ magic: 'SLF2' })), 'bad_magic');
  assert.equal(decodeError(Buffer.from('SLF1\u0002')), 'bad_version');
  assert.equal(decodeError(Buffer.from('SLF1\u0001\u0000')), 'bad_kind');
  for (const kind of [0, 11, 99, 255]) assert.equal(decodeError(rawFrame({ kind })), 'bad_kind');
  assert.equal(decodeError(rawFrame({ flags: 1 })), 'bad_flags');
  assert.equal(decodeError(rawFrame({ flags: 0x8000 })), 'bad_flags');
});

test('header must be strict UTF-8 JSON', () => {
  assert.equal(decodeError(rawFrame({ header: Buffer.from([0x22, 0xc3, 0x28, 0x22]) })), 'bad_utf8');
  assert.equal(decodeError(rawFrame({ header: Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22]) })), 'bad_utf8', 'a lone surrogate');
  assert.equal(decodeError(rawFrame({ header: Buffer.from('{"a":') })), 'bad_json');
  assert.equal(decodeError(rawFrame({ header: Buffer.from("{'a':1}") })), 'bad_json');
  assert.equal(decodeError(rawFrame({ header: Buffer.from('\ufeff{}') })), 'bad_json', 'no byte order mark');
  assert.equal(decodeError(rawFrame({ header: Buffer.from('NaN') })), 'bad_json');
  const deep = '['.repeat(30_000) + ']'.repeat(30_000);
  assert.equal(new FrameDecoder().push(rawFrame({ header: Buffer.from(deep) })).length, 1, 'deep nesting parses (bounded by the header limit)');
  assert.throws(() => encodeFrame(frame({ header: { big: 1n } })), (e: unknown) => e instanceof FrameError && e.code === 'bad_json');
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.throws(() => encodeFrame(frame({ header: cyclic })), FrameError);
});

test('encode refuses unknown kinds and ids out of u32', () => {
  assert.throws(() => encodeFrame(frame({ kind: 42 as FrameKind })), (e: unknown) => e instanceof FrameError && e.code === 'bad_kind');
  for (const id of [-1, 2 ** 32, 1.5, Number.NaN]) assert.throws(() => encodeFrame(frame({ id })), (e: unknown) => e instanceof FrameError && e.code === 'bad_id');
});

test('a failed decoder stays failed; errors carry expected, actual and a hint', () => {
  const decoder = new FrameDecoder();
  let first: FrameError | undefined;
  try {
    decoder.push(Buffer.from('XXXX'));
  } catch (error) {
    first = error as FrameError;
  }
  assert.ok(first instanceof FrameError);
  assert.equal(first.expected, "magic 'SLF1'");
  assert.equal(first.actual, '0x58585858');
  assert.match(first.hint, /wrong port|TLS/);
  assert.throws(() => decoder.push(frameBytes(frame())), (e: unknown) => e === first);
});

test('payloadLimit skips an oversized payload and stays in sync', () => {
  const rng = new Rng(2);
  const decoder = new FrameDecoder({ payloadLimit: (_kind, method) => (method === 'small' ? 100 : Infinity) });
  const bytes = Buffer.concat([
    frameBytes(frame({ id: 1, method: 'small', payload: rng.bytes(5000) })),
    frameBytes(frame({ id: 2, method: 'small', payload: rng.bytes(100) })),
    frameBytes(frame({ id: 3, method: 'big', payload: rng.bytes(5000) })),
  ]);
  const out: Frame[] = [];
  for (let at = 0; at < bytes.length; at += 333) out.push(...decoder.push(bytes.subarray(at, at + 333)));
  assert.deepEqual(out.map((f) => [f.id, f.payload.length, f.skippedPayloadBytes]), [
    [1, 0, 5000],
    [2, 100, undefined],
    [3, 5000, undefined],
  ]);
  assert.equal(out[0]!.method, 'small');
  assert.deepEqual(out[0]!.header, frame().header);
});

test('takeRemaining returns the bytes after the delivered frames', () => {
  const strict = new FrameDecoder();
  const tail = Buffer.from('SLF1 and more'); // ' ' as the version byte: refused early
  assert.throws(() => strict.push(Buffer.concat([frameBytes(frame()), tail])), (e: unknown) => e instanceof FrameError && e.code === 'bad_version');
  const d2 = new FrameDecoder();
  const partial = frameBytes(frame({ id: 9 })).subarray(0, 10);
  assert.equal(d2.push(Buffer.concat([frameBytes(frame()), partial])).length, 1);
  assert.ok(d2.takeRemaining().equals(partial));
  assert.equal(d2.buffered, 0);
});

test('ByteQueue: peek, take and skip across chunk boundaries', () => {
  const queue = new ByteQueue();
  queue.push(Buffer.from('abc'));
  queue.push(Buffer.alloc(0));
  queue.push(Buffer.from('defg'));
  queue.push(Buffer.from('h'));
  assert.equal(queue.length, 8);
  assert.equal(String.fromCharCode(queue.byteAt(3)), 'd');
  assert.equal(queue.peek(5).toString(), 'abcde');
  assert.equal(queue.take(2).toString(), 'ab');
  assert.equal(queue.skip(2), 2);
  assert.equal(queue.take(3).toString(), 'efg');
  assert.equal(queue.skip(10), 1);
  assert.equal(queue.length, 0);
  assert.throws(() => queue.peek(1), RangeError);
});
