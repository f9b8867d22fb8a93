import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server as NetServer } from 'node:net';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { waitFor } from '../coordinator/testing.ts';
import { frameBytes, FrameKind } from './frame.ts';
import { ConnectError, connect, listen, method, PeerClosedError, RemoteError, TimeoutError } from './rpc.ts';
import type { MethodSpec, Peer, TransportServer } from './rpc.ts';
import { helloFrame, RawClient, Rng } from './testing.ts';

const EchoSchema = z.object({ n: z.number().int(), delayMs: z.number().int().nonnegative().optional() });
const EchoAnswer = z.object({ n: z.number().int(), bytes: z.number().int() });

interface Fixture {
  server: TransportServer;
  notes: unknown[];
  hang: { release: () => void; started: number; aborted: number };
  cleanup: () => Promise<void>;
}

async function startServer(extra: Record<string, MethodSpec> = {}, options: { handshakeTimeoutMs?: number } = {}): Promise<Fixture> {
  const notes: unknown[] = [];
  let release = () => {};
  const gate = new Promise<void>((resolve) => (release = resolve));
  const hang = { release: () => release(), started: 0, aborted: 0 };
  const server = await listen({
    host: '127.0.0.1',
    port: 0,
    session: 'server-1',
    ...options,
    methods: {
      echo: method(
        EchoSchema,
        async ({ header, payload }) => {
          if (header.delayMs !== undefined) await sleep(header.delayMs);
          return { header: { n: header.n, bytes: payload.length }, payload };
        },
        64 * 1024 * 1024,
      ),
      small: { schema: z.object({}), maxPayloadBytes: 16, handler: ({ payload }) => ({ header: { bytes: payload.length } }) },
      note: method(z.object({ text: z.string() }), ({ header }) => void notes.push(header)),
      fail: {
        schema: z.object({ coded: z.boolean() }),
        handler: (req) => {
          if (z.object({ coded: z.boolean() }).parse(req.header).coded) throw Object.assign(new Error('no room for that span'), { code: 'out_of_memory', hint: 'add a worker' });
          throw new Error('plain failure');
        },
      },
      hang: {
        schema: z.object({}),
        handler: async ({ signal }) => {
          hang.started += 1;
          signal.addEventListener('abort', () => (hang.aborted += 1));
          await gate;
          return { header: { released: true } };
        },
      },
      void: { schema: z.unknown(), handler: () => {} },
      ...extra,
    },
  });
  return { server, notes, hang, cleanup: () => server.close() };
}

test('request/response with header and payload; HELLO sessions on both sides', async () => {
  const { server, cleanup } = await startServer();
  const peer = await connect(`127.0.0.1:${server.port}`, { session: 'client-1' });
  try {
    assert.equal(peer.session, 'server-1');
    const answer = await peer.request('echo', { n: 5 }, Buffer.from('hello'));
    assert.deepEqual(answer.header, { n: 5, bytes: 5 });
    assert.equal(Buffer.from(answer.payload).toString(), 'hello');
    const nothing = await peer.request('void', null);
    assert.equal(nothing.header, undefined);
    assert.equal(nothing.payload.length, 0);
    await waitFor('server lists the peer', () => server.peers().length === 1);
    assert.equal(server.peerBySession('client-1')?.session, 'client-1');
    assert.equal(server.peerBySession('nobody'), undefined);
    assert.ok((await peer.rtt()) >= 0);
  } finally {
    peer.close();
    await cleanup();
  }
});

test('the connection is symmetric: the server calls a method the client serves', async () => {
  const { server, cleanup } = await startServer();
  const peer = await connect(`127.0.0.1:${server.port}`, {
    session: 'worker-7',
    methods: { 'worker.ping': method(z.object({ x: z.number() }), ({ header }) => ({ header: { y: header.x * 2 } })) },
  });
  try {
    await waitFor('server sees the worker', () => server.peerBySession('worker-7') !== undefined);
    const answer = await server.peerBySession('worker-7')!.request('worker.ping', { x: 21 });
    assert.deepEqual(answer.header, { y: 42 });
  } finally {
    peer.close();
    await cleanup();
  }
});

test('notifications arrive in order; refused ones are dropped without closing', async () => {
  const { server, notes, cleanup } = await startServer();
  const peer = await connect(`127.0.0.1:${server.port}`, { session: 'c' });
  try {
    peer.notify('note', { text: 'one' });
    peer.notify('nope', { text: 'unknown method' });
    peer.notify('note', { text: 42 });
    peer.notify('note', { text: 'two' });
    await peer.request('void', null); // ordered after the notifications
    await waitFor('notes', () => notes.length === 2);
    assert.deepEqual(notes, [{ text: 'one' }, { text: 'two' }]);
  } finally {
    peer.close();
    await cleanup();
  }
});

test('unknown method, bad header, too large, handler errors: ERROR frames, connection stays usable', async () => {
  const { server, cleanup } = await startServer();
  const peer = await connect(`127.0.0.1:${server.port}`, { session: 'c' });
  const code = async (promise: Promise<unknown>) => {
    try {
      await promise;
    } catch (error) {
      assert.ok(error instanceof RemoteError, String(error));
      return { code: error.code, hint: error.hint, message: error.message };
    }
    assert.fail('expected a RemoteError');
  };
  try {
    const unknown = await code(peer.request('does.not.exist', {}));
    assert.equal(unknown.code, 'unknown_method');
    assert.match(unknown.hint ?? '', /echo/);
    assert.equal((await code(peer.request('echo', { n: 'five' }))).code, 'bad_request');
    assert.equal((await code(peer.request('echo', undefined))).code, 'bad_request');
    assert.equal((await code(peer.request('small', {}, Buffer.alloc(17)))).code, 'too_large');
    assert.deepEqual((await peer.request('small', {}, Buffer.alloc(16))).header, { bytes: 16 });
    const coded = await code(peer.request('fail', { coded: true }));
    assert.deepEqual([coded.code, coded.hint], ['out_of_memory', 'add a worker']);
    assert.match(coded.message, /no room/);
    assert.equal((await code(peer.request('fail', { coded: false }))).code, 'internal');
    assert.equal((await code(peer.request('constructor', {}))).code, 'unknown_method', 'prototype names are not methods');
    assert.deepEqual((await peer.request('echo', { n: 1 })).header, { n: 1, bytes: 0 });
    assert.equal(peer.closed, false);
  } finally {
    peer.close();
    await cleanup();
  }
});

test('concurrent requests complete out of order and each gets its own answer', async () => {
  const { server, cleanup } = await startServer();
  const peer = await connect(`127.0.0.1:${server.port}`, { session: 'c' });
  try {
    const order: number[] = [];
    const requests = Array.from({ length: 40 }, (_, n) =>
      peer.request('echo', { n, delayMs: (40 - n) * 2 }, Buffer.from(`payload-${n}`)).then((answer) => {
        const { n: echoed } = EchoAnswer.parse(answer.header);
        order.push(echoed);
        assert.equal(Buffer.from(answer.payload).toString(), `payload-${n}`);
        return echoed;
      }),
    );
    assert.deepEqual(await Promise.all(requests), Array.from({ length: 40 }, (_, n) => n));
    assert.notDeepEqual(order, [...order].sort((a, b) => a - b), 'answers arrived out of request order');
  } finally {
    peer.close();
    await cleanup();
  }
});

test('timeouts and aborts reject one request; the connection stays usable', async () => {
  const { server, hang, cleanup } = await startServer();
  const peer = await connect(`127.0.0.1:${server.port}`, { session: 'c' });
  try {
    await assert.rejects(peer.request('hang', {}, undefined, { timeoutMs: 50 }), TimeoutError);
    const controller = new AbortController();
    const aborted = peer.request('hang', {}, undefined, { signal: controller.signal });
    controller.abort(new Error('caller gave up'));
    await assert.rejects(aborted, /caller gave up/);
    await assert.rejects(peer.request('echo', { n: 1 }, undefined, { signal: AbortSignal.abort(new Error('already')) }), /already/);
    assert.deepEqual((await peer.request('echo', { n: 2 })).header, { n: 2, bytes: 0 });
    hang.release(); // late answers to the timed-out requests are ignored
    assert.deepEqual((await peer.request('echo', { n: 3 })).header, { n: 3, bytes: 0 });
  } finally {
    peer.close();
    await cleanup();
  }
});

test('peer closed mid-request rejects every pending request (both directions of closing)', async () => {
  const { server, hang, cleanup } = await startServer();
  try {
    const peer = await connect(`127.0.0.1:${server.port}`, { session: 'a' });
    const pending = [peer.request('hang', {}), peer.request('hang', {}), peer.request('echo', { n: 1, delayMs: 5_000 })];
    await waitFor('handlers started', () => hang.started === 2);
    await waitFor('server sees the client', () => server.peerBySession('a') !== undefined);
    server.peerBySession('a')!.close(); // the server drops the connection
    for (const request of pending) await assert.rejects(request, PeerClosedError);
    await waitFor('server handlers see their signal aborted', () => hang.aborted === 2);
    assert.equal(peer.closed, true);
    await assert.rejects(peer.request('echo', { n: 1 }), PeerClosedError);
    assert.throws(() => peer.notify('note', { text: 'x' }), PeerClosedError);

    const second = await connect(`127.0.0.1:${server.port}`, { session: 'b' });
    let closeEvents = 0;
    second.on('close', () => (closeEvents += 1));
    const waiting = second.request('hang', {});
    second.close(); // the client gives up
    await assert.rejects(waiting, PeerClosedError);
    second.close();
    assert.equal(closeEvents, 1);
    await waitFor('server forgets closed peers', () => server.peers().length === 0);
  } finally {
    hang.release();
    await cleanup();
  }
});

test('payloads of 1 MiB and more cross intact, both ways, several at once', async () => {
  const { server, cleanup } = await startServer();
  const peer = await connect(`127.0.0.1:${server.port}`, { session: 'c' });
  const digest = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
  try {
    const rng = new Rng(3);
    const sizes = [1024 * 1024, 1024 * 1024 + 1, 9 * 1024 * 1024 + 3, 24 * 1024 * 1024];
    const payloads = sizes.map((size) => rng.bytes(size));
    const answers = await Promise.all(payloads.map((payload, n) => peer.request('echo', { n }, payload)));
    answers.forEach((answer, n) => {
      assert.equal(EchoAnswer.parse(answer.header).bytes, sizes[n]);
      assert.equal(digest(answer.payload), digest(payloads[n]!));
    });
    const floats = new Float32Array(960 * 300).map((_, i) => Math.sin(i)); // a prefill's hidden states
    const back = await peer.request('echo', { n: 9 }, new Uint8Array(floats.buffer));
    assert.deepEqual(new Float32Array(back.payload.buffer.slice(back.payload.byteOffset, back.payload.byteOffset + back.payload.length)), floats);
    await peer.drained();
    assert.equal(peer.bufferedBytes, 0);
  } finally {
    peer.close();
    await cleanup();
  }
});

test('a malformed frame closes that connection only, after an ERROR bad_frame', async () => {
  const { server, cleanup } = await startServer();
  const good = await connect(`127.0.0.1:${server.port}`, { session: 'good' });
  try {
    const raw = await RawClient.open(server.port);
    raw.send(helloFrame('raw'));
    await raw.waitFor((frame) => frame.kind === FrameKind.HELLO);
    raw.send(Buffer.from('SLF1\u0001\u0001\u0000\u0000garbage that is not a frame at all'));
    const error = await raw.waitFor((frame) => frame.kind === FrameKind.ERROR);
    assert.equal((error.header as { code: string }).code, 'bad_frame');
    await raw.closed;
    assert.deepEqual((await good.request('echo', { n: 1 })).header, { n: 1, bytes: 0 });

    const early = await RawClient.open(server.port); // a request before HELLO is a protocol violation
    early.send({ kind: FrameKind.REQUEST, id: 1, method: 'echo', header: { n: 1 }, payload: new Uint8Array(0) });
    await early.closed;
    assert.equal(early.frames.some((frame) => frame.kind === FrameKind.RESPONSE), false);
  } finally {
    good.close();
    await cleanup();
  }
});

test('frames in the same chunk as HELLO, or ahead of a malformed frame, are served', async () => {
  const { server, cleanup } = await startServer();
  try {
    const raw = await RawClient.open(server.port);
    const request = (id: number, method: string) => frameBytes({ kind: FrameKind.REQUEST, id, method, header: { n: id }, payload: Buffer.alloc(1000, 1) });
    raw.send(Buffer.concat([frameBytes(helloFrame('eager')), request(1, 'echo'), request(2, 'nope'), Buffer.from('SLF1\u0001\u00ff')]));
    await raw.closed;
    const byId = new Map(raw.frames.map((frame) => [frame.id, frame]));
    assert.equal((byId.get(2)?.header as { code: string }).code, 'unknown_method', 'answered before the bad frame closed the connection');
    const last = raw.frames.at(-1)!;
    assert.equal((last.header as { code: string }).code, 'bad_frame');
    // The echo is async: it may or may not have been answered before the close; never with too_large.
    assert.notEqual((byId.get(1)?.header as { code?: string } | undefined)?.code, 'too_large');

    const pipelined = await RawClient.open(server.port);
    pipelined.send(Buffer.concat([frameBytes(helloFrame('eager-2')), request(3, 'echo')]));
    const answer = await pipelined.waitFor((frame) => frame.id === 3);
    assert.equal(answer.kind, FrameKind.RESPONSE);
    assert.equal(answer.payload.length, 1000);
    pipelined.close();
  } finally {
    await cleanup();
  }
});

test('HELLO: another protocol version is refused; silence is cut off', async () => {
  const { server, cleanup } = await startServer({}, { handshakeTimeoutMs: 100 });
  try {
    const raw = await RawClient.open(server.port);
    raw.send(helloFrame('future', 999));
    const error = await raw.waitFor((frame) => frame.kind === FrameKind.ERROR);
    assert.equal((error.header as { code: string }).code, 'protocol_version');
    await raw.closed;

    const silent = await RawClient.open(server.port);
    await silent.closed; // closed by the handshake timer
  } finally {
    await cleanup();
  }
});

test('connect failures are typed: refused, wrong service, closed server', async () => {
  const { server, cleanup } = await startServer();
  const port = server.port;
  await cleanup();
  await assert.rejects(connect(`127.0.0.1:${port}`, { session: 'c' }), (error: unknown) => error instanceof ConnectError && error.code === 'ECONNREFUSED' && /nothing listens/.test(error.hint));
  await assert.rejects(connect('not an address', { session: 'c' }), /host:port/);

  const http = createNetServer((socket) => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
  const silent = createNetServer(() => {});
  await Promise.all([http, silent].map((s) => new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))));
  const portOf = (s: NetServer) => (s.address() as AddressInfo).port;
  try {
    await assert.rejects(connect(`127.0.0.1:${portOf(http)}`, { session: 'c' }), (error: unknown) => error instanceof ConnectError && error.code === 'bad_frame');
    await assert.rejects(connect(`127.0.0.1:${portOf(silent)}`, { session: 'c', timeoutMs: 100 }), TimeoutError);
  } finally {
    http.close();
    silent.close();
  }
});

test('closing the server closes its peers', async () => {
  const { server, cleanup } = await startServer();
  const peer: Peer = await connect(`127.0.0.1:${server.port}`, { session: 'c' });
  const closed = new Promise<void>((resolve) => peer.once('close', () => resolve()));
  await cleanup();
  await closed;
  assert.equal(peer.closed, true);
});
