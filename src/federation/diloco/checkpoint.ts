// The `diloco serve` checkpoint: everything a restarted server needs to continue exactly (the job id, the next
// round, the global weights, the outer momentum, centered clipping's previous aggregate), written after every
// round through a temp file and a rename, so a crash leaves the previous checkpoint or the new one, never half.
//
//   bytes 0..7    magic "SLDILOCO"
//   bytes 8..11   format version, u32 little-endian (CHECKPOINT_VERSION)
//   bytes 12..15  header length H, u32
//   H bytes       header, JSON (CheckpointHeader): job, round, tensor list, sha256 of the body
//   the body      f32 little-endian tensors, in the header's order
//
// A checkpoint whose magic, version, header, length or hash does not check out is refused with a line that
// says what was wrong and what to do; it is never half-loaded.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { DilocoServerState } from '../../train/diloco/round.ts';
import { JobIdSchema } from '../protocol-diloco.ts';
import { DilocoError } from './errors.ts';

const MAGIC = Buffer.from('SLDILOCO', 'latin1');
export const CHECKPOINT_VERSION = 1;
const SECTIONS = ['params', 'momentum', 'previous'] as const;

const CheckpointHeader = z.object({
  jobId: JobIdSchema,
  /** Rounds completed: the round a restart opens. */
  round: z.number().int().min(0),
  tensors: z.array(z.object({ section: z.enum(SECTIONS), name: z.string().max(63), n: z.number().int().min(0) })),
  bodySha256: z.string().regex(/^[0-9a-f]{64}$/),
});

export interface ServerCheckpoint {
  jobId: string;
  state: DilocoServerState;
}

export function saveServerCheckpoint(path: string, ck: ServerCheckpoint): void {
  const parts: { section: (typeof SECTIONS)[number]; name: string; v: Float32Array }[] = [];
  for (const [name, v] of ck.state.params) parts.push({ section: 'params', name, v });
  for (const [name, v] of ck.state.momentum ?? []) parts.push({ section: 'momentum', name, v });
  for (const [name, v] of ck.state.previous ?? []) parts.push({ section: 'previous', name, v });
  const hash = createHash('sha256');
  for (const p of parts) hash.update(new Uint8Array(p.v.buffer, p.v.byteOffset, p.v.byteLength));
  const header = Buffer.from(JSON.stringify({ jobId: ck.jobId, round: ck.state.round, tensors: parts.map((p) => ({ section: p.section, name: p.name, n: p.v.length })), bodySha256: hash.digest('hex') }), 'utf8');
  const pre = Buffer.alloc(16);
  MAGIC.copy(pre, 0);
  pre.writeUInt32LE(CHECKPOINT_VERSION, 8);
  pre.writeUInt32LE(header.length, 12);
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, pre);
    writeSync(fd, header);
    for (const p of parts) writeSync(fd, new Uint8Array(p.v.buffer, p.v.byteOffset, p.v.byteLength));
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
}

export function loadServerCheckpoint(path: string): ServerCheckpoint {
  const bytes = readFileSync(path);
  const bad = (what: string, expected: string, actual: string) =>
    new DilocoError('bad_checkpoint', `the checkpoint ${path} is damaged (${what})`, expected, actual, 'restore it from a backup, or move it away to start the job again from --init (its rounds are lost)');
  if (bytes.length < 16 || !bytes.subarray(0, 8).equals(MAGIC)) throw bad('not a diloco serve checkpoint', "magic 'SLDILOCO'", JSON.stringify(bytes.subarray(0, 8).toString('latin1')));
  const version = bytes.readUInt32LE(8);
  if (version !== CHECKPOINT_VERSION) throw bad('another format version', String(CHECKPOINT_VERSION), String(version));
  const hlen = bytes.readUInt32LE(12);
  if (16 + hlen > bytes.length) throw bad('cut short in its header', `${16 + hlen} bytes at least`, `${bytes.length}`);
  let header: z.infer<typeof CheckpointHeader>;
  try {
    header = CheckpointHeader.parse(JSON.parse(bytes.subarray(16, 16 + hlen).toString('utf8')));
  } catch (e) {
    throw bad('unreadable header', 'the JSON header this version writes', (e as Error).message.slice(0, 200));
  }
  const body = bytes.subarray(16 + hlen);
  const want = header.tensors.reduce((n, t) => n + 4 * t.n, 0);
  if (body.length !== want) throw bad('wrong length', `${want} bytes of tensors`, `${body.length}`);
  const got = createHash('sha256').update(body).digest('hex');
  if (got !== header.bodySha256) throw bad('hash mismatch', header.bodySha256, got);
  const aligned = Uint8Array.from(body).buffer;
  const params = new Map<string, Float32Array>();
  const momentum = new Map<string, Float32Array>();
  const previous = new Map<string, Float32Array>();
  let off = 0;
  for (const t of header.tensors) {
    const v = new Float32Array(aligned, off, t.n);
    off += 4 * t.n;
    ({ params, momentum, previous })[t.section].set(t.name, v);
  }
  return {
    jobId: header.jobId,
    state: { round: header.round, params, momentum: momentum.size > 0 ? momentum : undefined, previous: previous.size > 0 ? previous : undefined },
  };
}
