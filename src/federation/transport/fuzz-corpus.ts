/**
 * Seeded malformed frames for the fuzz tests: valid frames for the fuzz server's methods, mutated
 * every way a broken or hostile peer could (bit flips, truncation, huge declared lengths, wrong magic,
 * version, kind or flags, garbage JSON, bad UTF-8, schema-invalid headers, unknown methods, oversized
 * payloads, unsolicited answers, random blobs). The same seed gives the same corpus.
 */
import { FIXED_HEADER_BYTES, frameBytes, FrameDecoder, FrameError, FrameKind, LIMITS } from './frame.ts';
import type { Frame } from './frame.ts';
import { Rng } from './testing.ts';

/** The methods fuzz-server.ts serves (and their payload limit). */
export const FUZZ_METHODS = { echo: 'echo', sink: 'sink', fail: 'fail' } as const;
export const FUZZ_ECHO_MAX_PAYLOAD = 64 * 1024;
/** The fuzz server's relay join token, and the node the relay fuzz registers there. */
export const FUZZ_RELAY_TOKEN = 'fuzz-token';
export const FUZZ_RELAY_NODE = 'fuzz-node';

export interface Mutant {
  label: string;
  bytes: Buffer;
}

const empty = new Uint8Array(0);

/** A valid frame the fuzz server would accept (before mutation). */
export function seedFrame(rng: Rng): Frame {
  const id = 1 + rng.int(0xfffffffe);
  switch (rng.int(6)) {
    case 0:
    case 1:
      return { kind: FrameKind.REQUEST, id, method: 'echo', header: { n: rng.int(1000) }, payload: rng.bytes(rng.int(3000)) };
    case 2:
      return { kind: FrameKind.REQUEST, id, method: 'fail', header: { coded: rng.next() < 0.5 }, payload: empty };
    case 3:
      return { kind: FrameKind.NOTIFY, id: 0, method: 'sink', header: { text: 'x'.repeat(rng.int(200)) }, payload: rng.bytes(rng.int(100)) };
    case 4:
      return { kind: FrameKind.PING, id, method: '', header: undefined, payload: empty };
    default:
      return { kind: FrameKind.REQUEST, id, method: 'echo', header: { n: rng.int(10), extra: ['ignored', { deep: true }] }, payload: empty };
  }
}

/** Raw frame with any field values, including ones the encoder refuses. */
function assemble(fields: { magic?: Buffer; version?: number; kind?: number; flags?: number; id?: number; method: Buffer; header: Buffer; payload: Buffer; methodLen?: number; headerLen?: number; payloadLen?: number }): Buffer {
  const fixed = Buffer.alloc(FIXED_HEADER_BYTES);
  (fields.magic ?? Buffer.from('SLF1')).copy(fixed, 0, 0, 4);
  fixed.writeUInt8(fields.version ?? 1, 4);
  fixed.writeUInt8(fields.kind ?? FrameKind.REQUEST, 5);
  fixed.writeUInt16LE(fields.flags ?? 0, 6);
  fixed.writeUInt32LE(fields.id ?? 1, 8);
  fixed.writeUInt8((fields.methodLen ?? fields.method.length) & 0xff, 12);
  fixed.writeUInt32LE((fields.headerLen ?? fields.header.length) >>> 0, 13);
  fixed.writeUInt32LE((fields.payloadLen ?? fields.payload.length) >>> 0, 17);
  return Buffer.concat([fixed, fields.method, fields.header, fields.payload]);
}

function partsOf(f: Frame) {
  return {
    kind: f.kind as number,
    id: f.id,
    method: Buffer.from(f.method, 'latin1'),
    header: f.header === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(f.header)),
    payload: Buffer.from(f.payload),
  };
}

/** Header JSON texts that parse but match no method's schema (some are hostile: prototype keys, depth). */
const SCHEMA_INVALID: string[] = [
  '{"n":"five"}',
  '{"n":1.5}',
  '{"coded":"yes"}',
  '[]',
  'null',
  '"echo"',
  '12',
  '{}',
  '{"n":1e308}',
  '{"n":-0.0000001}',
  '{"__proto__":{"polluted":true},"n":"x"}',
  '{"constructor":{"prototype":{"polluted":true}}}',
  '{"text":{"toString":1}}',
  '['.repeat(30_000) + ']'.repeat(30_000),
  '{"a":'.repeat(5_000) + '1' + '}'.repeat(5_000),
];
const UNKNOWN_METHODS = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', 'relay.register', 'worker.step', 'a', 'x'.repeat(64), 'ECHO', 'echo.', 'echo/'];

const MUTATORS: { label: string; weight: number; make: (rng: Rng) => Buffer }[] = [
  { label: 'bitflip', weight: 3, make: (rng) => flipBits(rng, frameBytes(seedFrame(rng)), 1 + rng.int(4), undefined) },
  { label: 'bitflip-head', weight: 3, make: (rng) => flipBits(rng, frameBytes(seedFrame(rng)), 1 + rng.int(3), FIXED_HEADER_BYTES) },
  {
    label: 'truncate',
    weight: 2,
    make: (rng) => {
      const bytes = frameBytes(seedFrame(rng));
      return bytes.subarray(0, rng.int(bytes.length));
    },
  },
  {
    label: 'huge-length',
    weight: 2,
    make: (rng) => {
      const p = partsOf(seedFrame(rng));
      const which = rng.int(3);
      const big = (limit: number) => (rng.next() < 0.5 ? limit + 1 + rng.int(1000) : 0xffffffff - rng.int(1000));
      if (which === 0) return assemble({ ...p, methodLen: LIMITS.maxMethodLen + 1 + rng.int(255 - LIMITS.maxMethodLen) });
      if (which === 1) return assemble({ ...p, headerLen: big(LIMITS.maxHeaderBytes) });
      return assemble({ ...p, payloadLen: big(LIMITS.maxPayloadBytes) });
    },
  },
  {
    label: 'length-mismatch',
    weight: 2,
    make: (rng) => {
      const p = partsOf(seedFrame(rng));
      const delta = rng.int(64) - 32 || 1;
      return rng.next() < 0.5
        ? assemble({ ...p, headerLen: Math.max(0, p.header.length + delta) })
        : assemble({ ...p, methodLen: Math.max(0, p.method.length + delta) });
    },
  },
  { label: 'magic', weight: 1, make: (rng) => assemble({ ...partsOf(seedFrame(rng)), magic: rng.bytes(4) }) },
  { label: 'version', weight: 1, make: (rng) => assemble({ ...partsOf(seedFrame(rng)), version: 2 + rng.int(254) }) },
  { label: 'kind', weight: 1, make: (rng) => assemble({ ...partsOf(seedFrame(rng)), kind: rng.next() < 0.3 ? 0 : 11 + rng.int(245) }) },
  { label: 'flags', weight: 1, make: (rng) => assemble({ ...partsOf(seedFrame(rng)), flags: 1 + rng.int(0xfffe) }) },
  {
    label: 'garbage-json',
    weight: 2,
    make: (rng) => {
      const texts = ['{', '{"n":}', "{'n':1}", 'undefined', 'NaN', '{"n":1}}', '[1,2', '"unterminated', '\u0000', '{"n":1,}', ''];
      const text = rng.next() < 0.5 ? rng.pick(texts) : rng.bytes(1 + rng.int(40)).toString('latin1');
      const header = text === '' ? Buffer.from(' ') : Buffer.from(text, 'utf8');
      return assemble({ ...partsOf(seedFrame(rng)), header });
    },
  },
  {
    label: 'bad-utf8',
    weight: 1,
    make: (rng) => {
      const bad = rng.pick([[0xc3, 0x28], [0xed, 0xa0, 0x80], [0xff], [0xe2, 0x82], [0xf0, 0x90, 0x80], [0xc0, 0xaf]]);
      return assemble({ ...partsOf(seedFrame(rng)), header: Buffer.from([0x22, ...bad, 0x22]) });
    },
  },
  {
    label: 'schema-invalid',
    weight: 3,
    make: (rng) => {
      const method = rng.pick(['echo', 'fail', 'sink']);
      const kind = method === 'sink' ? FrameKind.NOTIFY : FrameKind.REQUEST;
      return assemble({ kind, id: 1 + rng.int(1000), method: Buffer.from(method), header: Buffer.from(rng.pick(SCHEMA_INVALID)), payload: rng.bytes(rng.int(50)) });
    },
  },
  {
    label: 'unknown-method',
    weight: 2,
    make: (rng) => frameBytes({ kind: rng.next() < 0.8 ? FrameKind.REQUEST : FrameKind.NOTIFY, id: 1 + rng.int(1000), method: rng.pick(UNKNOWN_METHODS), header: { n: 1 }, payload: rng.bytes(rng.int(5000)) }),
  },
  { label: 'bad-method-chars', weight: 1, make: (rng) => assemble({ ...partsOf(seedFrame(rng)), method: rng.bytes(1 + rng.int(20)) }) },
  {
    label: 'too-large',
    weight: 1,
    make: (rng) => frameBytes({ kind: FrameKind.REQUEST, id: 1 + rng.int(1000), method: 'echo', header: { n: 1 }, payload: rng.bytes(FUZZ_ECHO_MAX_PAYLOAD + 1 + rng.int(100_000)) }),
  },
  {
    label: 'unsolicited',
    weight: 2,
    make: (rng) => {
      const kind = rng.pick([FrameKind.RESPONSE, FrameKind.ERROR, FrameKind.PONG, FrameKind.HELLO, FrameKind.RELAY_OPEN, FrameKind.RELAY_ACCEPT, FrameKind.RELAY_READY]);
      const header = rng.pick([undefined, null, { code: 'x', message: 'y' }, { code: 5 }, { session: 'again', protocolVersion: 1 }, { ticket: 'ab' }]);
      return frameBytes({ kind, id: rng.int(0xffffffff), method: '', header, payload: rng.bytes(rng.int(30)) });
    },
  },
  { label: 'blob', weight: 2, make: (rng) => rng.bytes(1 + rng.int(2000)) },
  {
    label: 'blob-after-magic',
    weight: 1,
    make: (rng) => Buffer.concat([Buffer.from([0x53, 0x4c, 0x46, 0x31, 0x01, 1 + rng.int(10)]), rng.bytes(1 + rng.int(200))]),
  },
  {
    label: 'splice',
    weight: 1,
    make: (rng) => {
      const a = frameBytes(seedFrame(rng));
      const b = frameBytes(seedFrame(rng));
      return Buffer.concat([a.subarray(0, rng.int(a.length)), b.subarray(rng.int(b.length))]);
    },
  },
];
const TOTAL_WEIGHT = MUTATORS.reduce((sum, m) => sum + m.weight, 0);

function flipBits(rng: Rng, bytes: Buffer, flips: number, within: number | undefined): Buffer {
  const out = Buffer.from(bytes);
  const span = Math.min(out.length, within ?? out.length);
  for (let i = 0; i < flips; i++) {
    const at = rng.int(span);
    out[at] = out[at]! ^ (1 << rng.int(8));
  }
  return out;
}

export function mutant(rng: Rng): Mutant {
  let pick = rng.next() * TOTAL_WEIGHT;
  for (const mutator of MUTATORS) {
    pick -= mutator.weight;
    if (pick < 0) return { label: mutator.label, bytes: mutator.make(rng) };
  }
  const last = MUTATORS[MUTATORS.length - 1]!;
  return { label: last.label, bytes: last.make(rng) };
}

export function corpus(seed: number, count: number): Mutant[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => mutant(rng));
}

/**
 * What a server does with these bytes after HELLO: 'survives' when they decode to whole frames it
 * answers without closing (requests, notifications, pings, stray answers), 'fatal' when they make it
 * close the connection (a FrameError, a HELLO or relay frame after HELLO, or bytes left over that
 * would swallow whatever comes next).
 */
export function classify(bytes: Buffer): 'survives' | 'fatal' {
  const decoder = new FrameDecoder();
  let frames: Frame[];
  try {
    frames = decoder.push(bytes);
  } catch (error) {
    if (error instanceof FrameError) return 'fatal';
    throw error;
  }
  if (decoder.buffered > 0) return 'fatal';
  const closing = new Set<number>([FrameKind.HELLO, FrameKind.RELAY_OPEN, FrameKind.RELAY_ACCEPT, FrameKind.RELAY_READY]);
  return frames.some((frame) => closing.has(frame.kind)) ? 'fatal' : 'survives';
}

/** Valid first frames of relay connections (what relay-server.ts dispatches on). */
function relaySeed(rng: Rng): Frame {
  const token = rng.next() < 0.5 ? FUZZ_RELAY_TOKEN : 'wrong';
  switch (rng.int(3)) {
    case 0:
      return { kind: FrameKind.RELAY_OPEN, id: 0, method: '', header: { nodeId: rng.next() < 0.7 ? FUZZ_RELAY_NODE : 'ghost', token }, payload: empty };
    case 1:
      return { kind: FrameKind.RELAY_ACCEPT, id: 0, method: '', header: { ticket: rng.bytes(16).toString('hex') }, payload: empty };
    default:
      return { kind: FrameKind.HELLO, id: 0, method: '', header: { session: 'fuzz', protocolVersion: 1 }, payload: empty };
  }
}

/**
 * Inputs for a relay port: half general mutants, half relay handshakes, some valid, some bit-flipped,
 * truncated, or followed by garbage (which a splice would carry to the hidden node).
 */
export function relayCorpus(seed: number, count: number): Mutant[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => {
    if (rng.next() < 0.5) return mutant(rng);
    const bytes = frameBytes(relaySeed(rng));
    switch (rng.int(4)) {
      case 0:
        return { label: 'relay-valid+garbage', bytes: Buffer.concat([bytes, rng.bytes(rng.int(300))]) };
      case 1:
        return { label: 'relay-truncate', bytes: bytes.subarray(0, rng.int(bytes.length)) };
      case 2:
        return { label: 'relay-valid+frames', bytes: Buffer.concat([bytes, frameBytes(seedFrame(rng)), mutant(rng).bytes]) };
      default:
        return { label: 'relay-bitflip', bytes: flipBits(rng, bytes, 1 + rng.int(3), undefined) };
    }
  });
}
