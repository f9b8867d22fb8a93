/**
 * Fixtures for the transport's tests (and for node-role tests that need raw access to the wire):
 * a seeded random generator, a raw frame-level client, TLS material, timing summaries.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { createSelfSignedCert } from '../coordinator/certs.ts';
import { tempDir } from '../coordinator/testing.ts';
import { DATAPLANE_VERSION } from '../protocol-dataplane.ts';
import { PROTOCOL_VERSION } from '../protocol.ts';
import { newNonce } from './hello-auth.ts';
import { frameBytes, FrameDecoder, FrameKind } from './frame.ts';
import type { Frame } from './frame.ts';
import { mulberry32 } from '../../util/random.ts';

/** The project's seeded PRNG (mulberry32), with helpers to drive fuzzing reproducibly from a seed. */
export class Rng {
  private readonly draw: () => number;
  constructor(seed: number) {
    this.draw = mulberry32(seed);
  }
  /** Uniform in [0, 1). */
  next(): number {
    return this.draw();
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A self-signed certificate for 127.0.0.1/localhost, as PEM strings. */
export async function makeTestCert(): Promise<{ cert: string; key: string }> {
  const dir = tempDir();
  try {
    const made = await createSelfSignedCert({ hosts: ['127.0.0.1'], outDir: dir.path, name: 'transport', days: 2 });
    return { cert: readFileSync(made.certPath, 'utf8'), key: readFileSync(made.keyPath, 'utf8') };
  } finally {
    dir.cleanup();
  }
}

export function helloFrame(session: string, protocolVersion = PROTOCOL_VERSION, extra: Record<string, unknown> = {}): Frame {
  const header = { session, protocolVersion, dataplaneVersion: DATAPLANE_VERSION, nonce: newNonce(), ...extra };
  return { kind: FrameKind.HELLO, id: 0, method: '', header, payload: new Uint8Array(0) };
}

/** A frame-level client without the Peer's rules: send anything, read what comes back. */
export class RawClient {
  readonly frames: Frame[] = [];
  readonly closed: Promise<void>;
  decodeError: Error | undefined;
  private readonly decoder = new FrameDecoder();
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      try {
        this.frames.push(...this.decoder.push(chunk));
      } catch (error) {
        this.decodeError = error as Error;
      }
      for (const wake of this.waiters.splice(0)) wake();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    void this.closed.then(() => {
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  static async open(port: number, host = '127.0.0.1'): Promise<RawClient> {
    const socket = netConnect({ host, port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.setNoDelay(true);
    return new RawClient(socket);
  }

  send(frame: Frame | Buffer): void {
    this.socket.write(Buffer.isBuffer(frame) ? frame : frameBytes(frame));
  }

  /** The first received frame matching `predicate` (waits; rejects when the socket closes first). */
  async waitFor(predicate: (frame: Frame) => boolean, timeoutMs = 5_000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames.find(predicate);
      if (found !== undefined) return found;
      if (this.socket.destroyed || this.socket.readableEnded) throw new Error('connection closed before the frame arrived');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching frame within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Median and 90th percentile of a sample, for printed (never asserted) timings. */
export function summarize(samples: number[]): { median: number; p90: number; n: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return { median: at(0.5), p90: at(0.9), n: sorted.length };
}
