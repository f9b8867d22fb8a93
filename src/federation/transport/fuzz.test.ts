/**
 * Fuzzing the data plane's edge: malformed frames must close one connection at most, never crash the
 * process, and never throw anything but FrameError from the decoder. Seeds are fixed (reproducible);
 * set FUZZ_SEED to explore others.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { z } from 'zod';
import { classify, corpus, FUZZ_RELAY_NODE, FUZZ_RELAY_TOKEN, relayCorpus } from './fuzz-corpus.ts';
import type { Mutant } from './fuzz-corpus.ts';
import { frameBytes, FrameDecoder, FrameError, FrameKind, LIMITS } from './frame.ts';
import type { Frame } from './frame.ts';
import { connect, method } from './rpc.ts';
import { connectViaRelay, relayRegister } from './relay.ts';
import { helloFrame, Rng } from './testing.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20_240_601);
const SOCKET_FRAMES = 12_000;
const DECODER_INPUTS = 20_000;
const RELAY_INPUTS = 2_000;
const CONCURRENCY = 12;
const SENTINEL_ID = 0xfffffff7;

/** Start fuzz-server.ts in a child process; resolves with its ports. */
async function startChild() {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fuzz-server.ts')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const ports = await new Promise<{ port: number; relayPort: number }>((resolve, reject) => {
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const port = /PORT (\d+)/.exec(stdout);
      const relay = /RELAY (\d+)/.exec(stdout);
      if (port !== null && relay !== null) resolve({ port: Number(port[1]), relayPort: Number(relay[1]) });
    });
    child.once('exit', (code) => reject(new Error(`fuzz server exited (${code}) before listening: ${stderr}`)));
  });
  return { child, ...ports, stderr: () => stderr };
}

let server: Awaited<ReturnType<typeof startChild>>;
before(async () => {
  server = await startChild();
});
after(async () => {
  server.child.kill('SIGTERM');
  await new Promise((resolve) => (server.child.exitCode === null ? server.child.once('exit', resolve) : resolve(undefined)));
});

interface Job {
  survivors: Buffer[];
  fatal?: Buffer;
}

interface Tally {
  connections: number;
  framesSent: number;
  errors: Map<string, number>;
  responses: number;
  closedByServer: number;
}

/**
 * One connection: HELLO, the surviving mutants, a PING whose PONG proves they were all dispatched,
 * then the fatal mutant (if any) and our end of the stream; resolves when the socket has closed.
 */
function runJob(port: number, job: Job, tally: Tally): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    const decoder = new FrameDecoder();
    let sentFatal = false;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('a fuzz connection did not close within 10 s'));
    }, 10_000);
    const finishWithFatal = () => {
      if (sentFatal) return;
      sentFatal = true;
      if (job.fatal !== undefined) socket.write(job.fatal);
      socket.end();
    };
    socket.on('connect', () => {
      tally.connections += 1;
      socket.write(frameBytes(helloFrame(`fuzz-${tally.connections}`)));
      for (const bytes of job.survivors) socket.write(bytes);
      socket.write(frameBytes({ kind: FrameKind.PING, id: SENTINEL_ID, method: '', header: undefined, payload: new Uint8Array(0) }));
      tally.framesSent += job.survivors.length + (job.fatal === undefined ? 0 : 1);
    });
    socket.on('data', (chunk: Buffer) => {
      let frames: Frame[] = [];
      try {
        frames = decoder.push(chunk);
      } catch (error) {
        socket.destroy();
        reject(new Error(`the server sent a malformed frame: ${(error as Error).message}`));
        return;
      }
      for (const frame of frames) {
        if (frame.kind === FrameKind.PONG && frame.id === SENTINEL_ID) finishWithFatal();
        if (frame.kind === FrameKind.RESPONSE) tally.responses += 1;
        if (frame.kind === FrameKind.ERROR) {
          const code = (frame.header as { code?: string } | undefined)?.code ?? '?';
          tally.errors.set(code, (tally.errors.get(code) ?? 0) + 1);
        }
      }
    });
    socket.on('end', () => {
      if (!sentFatal) tally.closedByServer += 1; // a mutant we thought harmless closed it: counted, not fatal
    });
    socket.on('error', () => {}); // resets after the server's last words are expected
    socket.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Survivors spread over one job per fatal mutant (each fatal one closes its connection). */
function plan(mutants: Mutant[]): Job[] {
  const survivors = mutants.filter((m) => classify(m.bytes) === 'survives').map((m) => m.bytes);
  const fatal = mutants.filter((m) => classify(m.bytes) === 'fatal').map((m) => m.bytes);
  const jobs: Job[] = fatal.map((bytes) => ({ survivors: [], fatal: bytes }));
  if (jobs.length === 0) jobs.push({ survivors: [] });
  survivors.forEach((bytes, i) => jobs[i % jobs.length]!.survivors.push(bytes));
  return jobs;
}

test(`fuzz: ${SOCKET_FRAMES} malformed frames against a live server process over real sockets`, { timeout: 120_000 }, async () => {
  {
    const mutants = corpus(SEED, SOCKET_FRAMES);
    const jobs = plan(mutants);
    const tally: Tally = { connections: 0, framesSent: 0, errors: new Map(), responses: 0, closedByServer: 0 };
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < jobs.length) await runJob(server.port, jobs[next++]!, tally);
      }),
    );
    const seconds = (performance.now() - started) / 1000;

    assert.equal(server.child.exitCode, null, `the server process died: ${server.stderr()}`);
    const peer = await connect(`127.0.0.1:${server.port}`, { session: 'after-fuzz' });
    try {
      assert.deepEqual((await peer.request('echo', { n: 42 }, Buffer.from('still here'))).header, { n: 42 });
      const stats = (await peer.request('stats', {})).header as { events: Record<string, number>; notifications: number; memoryRss: number };
      const labels = new Map<string, number>();
      for (const m of mutants) labels.set(m.label, (labels.get(m.label) ?? 0) + 1);
      console.log(
        [
          `fuzz seed ${SEED}: ${tally.framesSent} malformed frames over ${tally.connections} connections (${CONCURRENCY} at a time) in ${seconds.toFixed(1)} s`,
          `  mutations: ${[...labels].map(([k, v]) => `${k} ${v}`).join(', ')}`,
          `  server answers: ${tally.responses} responses; errors ${[...tally.errors].map(([k, v]) => `${k} ${v}`).join(', ')}`,
          `  server log events: ${Object.entries(stats.events).map(([k, v]) => `${k} ${v}`).join(', ')}; notifications handled ${stats.notifications}; rss ${(stats.memoryRss / 2 ** 20).toFixed(0)} MiB`,
          `  connections closed before the fatal frame: ${tally.closedByServer}`,
        ].join('\n'),
      );
      assert.ok(tally.framesSent >= 10_000);
      for (const code of ['bad_frame', 'bad_request', 'unknown_method', 'too_large']) assert.ok((tally.errors.get(code) ?? 0) > 0, `the server answered some '${code}'`);
    } finally {
      peer.close();
    }
    assert.equal(server.child.exitCode, null, `the server process died: ${server.stderr()}`);
  }
});

/**
 * One relay connection: the bytes, then our end of the stream, then wait for the relay (or the splice)
 * to close it. A valid handshake holds the stream open until the relay answers, so that splices happen
 * and the garbage behind the handshake reaches the hidden node.
 */
function runRelayJob(port: number, input: Mutant): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('a relay fuzz connection did not close within 10 s'));
    }, 10_000);
    const holdOpen = input.label.startsWith('relay-valid');
    let hold: NodeJS.Timeout | undefined;
    const end = () => {
      clearTimeout(hold);
      socket.end();
    };
    socket.on('connect', () => {
      socket.write(input.bytes);
      if (holdOpen) hold = setTimeout(end, 500);
      else end();
    });
    socket.on('data', () => {
      if (holdOpen) end();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      clearTimeout(hold);
      resolve();
    });
  });
}

test(`fuzz: ${RELAY_INPUTS} malformed handshakes against a live relay; a registered node stays reachable`, { timeout: 120_000 }, async () => {
  const relayAddr = `127.0.0.1:${server.relayPort}`;
  const methods = { echo: method(z.object({ n: z.number() }), ({ header }) => ({ header: { n: header.n } })) };
  const registration = await relayRegister({ relayAddr, nodeId: FUZZ_RELAY_NODE, token: FUZZ_RELAY_TOKEN, methods });
  try {
    const inputs = relayCorpus(SEED + 5, RELAY_INPUTS);
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < inputs.length) await runRelayJob(server.relayPort, inputs[next++]!);
      }),
    );
    assert.equal(server.child.exitCode, null, `the relay process died: ${server.stderr()}`);
    assert.equal(registration.registered, true, 'the node kept its registration');
    const peer = await connectViaRelay(relayAddr, FUZZ_RELAY_NODE, { session: 'after-relay-fuzz', token: FUZZ_RELAY_TOKEN });
    try {
      assert.deepEqual((await peer.request('echo', { n: 7 })).header, { n: 7 });
    } finally {
      peer.close();
    }
    const stats = await connect(`127.0.0.1:${server.port}`, { session: 'stats' });
    const relayStats = ((await stats.request('stats', {})).header as { relay: { totalSplices: number; pending: number } }).relay;
    stats.close();
    console.log(`relay fuzz: ${inputs.length} connections in ${((performance.now() - started) / 1000).toFixed(1)} s; ${relayStats.totalSplices} reached the node through a splice; ${relayStats.pending} still parked`);
  } finally {
    await registration.close();
  }
});

test(`fuzz: ${DECODER_INPUTS} inputs to the decoder in memory throw nothing but FrameError`, () => {
  const rng = new Rng(SEED + 1);
  const inputs = corpus(SEED + 2, DECODER_INPUTS).map((m) => m.bytes);
  for (let i = 0; i < 2_000; i++) inputs.push(rng.bytes(rng.int(300))); // raw noise, some empty
  const outcomes = { frames: 0, frameErrors: 0, incomplete: 0 };
  for (const bytes of inputs) {
    const decoder = new FrameDecoder({ payloadLimit: (_kind, method) => (method === 'echo' ? 1024 : Infinity), limits: rng.next() < 0.2 ? { maxHeaderBytes: 64, maxPayloadBytes: 4096 } : {} });
    try {
      for (let at = 0; at < bytes.length; ) {
        const size = 1 + rng.int(Math.max(1, bytes.length));
        for (const frame of decoder.push(bytes.subarray(at, at + size))) {
          outcomes.frames += 1;
          assert.ok(frame.kind >= FrameKind.REQUEST && frame.kind <= FrameKind.RELAY_READY);
          assert.ok(frame.method.length <= LIMITS.maxMethodLen && /^[A-Za-z0-9._:/-]*$/.test(frame.method));
          assert.ok(frame.payload.length <= LIMITS.maxPayloadBytes);
          assert.ok(Number.isInteger(frame.id) && frame.id >= 0 && frame.id <= 0xffffffff);
        }
        at += size;
      }
      if (decoder.buffered > 0) outcomes.incomplete += 1;
    } catch (error) {
      if (!(error instanceof FrameError)) throw new Error(`decoder threw ${String(error)} (not a FrameError) on ${bytes.toString('hex').slice(0, 200)}`, { cause: error });
      outcomes.frameErrors += 1;
      assert.throws(() => decoder.push(Buffer.from('SLF1')), (again: unknown) => again === error, 'a failed decoder stays failed');
    }
  }
  console.log(`decoder fuzz: ${inputs.length} inputs -> ${outcomes.frames} frames, ${outcomes.frameErrors} FrameErrors, ${outcomes.incomplete} incomplete`);
  assert.ok(outcomes.frameErrors > inputs.length / 4 && outcomes.frames > 1_000);
});

test('fuzz survivors decode back to back on one stream exactly as they did alone', () => {
  const survivors = corpus(SEED + 3, 3_000)
    .map((m) => m.bytes)
    .filter((bytes) => classify(bytes) === 'survives');
  const alone = survivors.reduce((sum, bytes) => sum + new FrameDecoder().push(bytes).length, 0);
  const stream = Buffer.concat(survivors);
  const decoder = new FrameDecoder();
  const rng = new Rng(SEED + 4);
  let together = 0;
  for (let at = 0; at < stream.length; ) {
    const size = 1 + rng.int(5_000);
    together += decoder.push(stream.subarray(at, at + size)).length;
    at += size;
  }
  assert.equal(together, alone);
  assert.equal(decoder.buffered, 0);
});
