// The in-memory network carries the real protocol (Peer, frames, HELLO) between many nodes in one process:
// a thousand connections with requests both ways, resets and closes that reject what is in flight, shaped
// links that still deliver every byte in order, and a reader that stops reading holding the writer back.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { pollUntil } from '../../util/poll.ts';
import { ConnectError, PeerClosedError } from './errors.ts';
import { MemoryNetwork, MemorySocket } from './memory-network.ts';
import { type MethodSpec, method } from './methods.ts';

const Empty = z.object({});
const Echo = z.object({ n: z.number().int() });

/** A method that waits until its connection closes, counting starts and aborts. */
function hanging(): { spec: MethodSpec; started: number; aborted: number } {
  const state = {
    started: 0,
    aborted: 0,
    spec: {
      schema: Empty,
      handler: ({ signal }) =>
        new Promise<void>((resolve) => {
          state.started += 1;
          signal.addEventListener('abort', () => {
            state.aborted += 1;
            resolve();
          });
        }),
    } satisfies MethodSpec,
  };
  return state;
}

test('a thousand connections to ten listeners, requests both ways on each, in one process', async (t) => {
  const net = new MemoryNetwork();
  const WORKERS = 10;
  const PER_WORKER = 100;
  for (let w = 0; w < WORKERS; w++) {
    net.listen(`w${w}:7000`, {
      session: `worker-${w}`,
      methods: {
        // Answers with who called, asked back over the same connection (a worker-to-primary request).
        echo: method(Echo, async ({ header, payload, peer }) => {
          const back = await peer.request('whoami', {});
          return { header: { n: header.n, worker: w, caller: z.object({ session: z.string() }).parse(back.header).session }, payload };
        }),
      },
    });
  }
  const started = performance.now();
  const clients = await Promise.all(
    Array.from({ length: WORKERS * PER_WORKER }, (_, i) => {
      const session = `primary-${i}`;
      return net.connect(`w${i % WORKERS}:7000`, { session, methods: { whoami: { schema: Empty, handler: () => ({ header: { session } }) } } });
    }),
  );
  assert.deepEqual([...net.links().values()], Array(WORKERS).fill(PER_WORKER), 'a hundred links open to each listener');
  const answers = await Promise.all(clients.map((peer, i) => peer.request('echo', { n: i }, Uint8Array.of(i & 0xff, i >> 8))));
  for (const [i, answer] of answers.entries()) {
    assert.deepEqual(answer.header, { n: i, worker: i % WORKERS, caller: `primary-${i}` });
    assert.deepEqual([...answer.payload], [i & 0xff, i >> 8]);
    assert.equal(clients[i]!.session, `worker-${i % WORKERS}`, 'HELLO told the client who serves');
  }
  t.diagnostic(`${clients.length} connections, ${clients.length * 2} requests in ${Math.round(performance.now() - started)} ms`);
  for (const peer of clients) peer.close();
  await pollUntil('every link closed on both ends', () => net.links().size === 0);
  await net.close();
});

test('a cut link rejects the requests in flight both ways and aborts the handlers; the address still serves', async () => {
  const net = new MemoryNetwork();
  const onServer = hanging();
  const onClient = hanging();
  const server = net.listen('w1:7000', { session: 'w1', methods: { hang: onServer.spec } });
  const client = await net.connect('w1:7000', { session: 'p1', methods: { hang: onClient.spec } });
  const toServer = client.request('hang', {});
  await pollUntil('the server sees the client', () => server.peerBySession('p1'));
  const toClient = server.peerBySession('p1')!.request('hang', {});
  await pollUntil('both handlers started', () => onServer.started === 1 && onClient.started === 1);

  assert.equal(net.cut('w1:7000'), 1);
  await assert.rejects(toServer, (e: unknown) => e instanceof PeerClosedError && /reset/.test(e.message));
  await assert.rejects(toClient, PeerClosedError);
  await pollUntil('both handlers aborted', () => onServer.aborted === 1 && onClient.aborted === 1);
  await assert.rejects(client.request('hang', {}), PeerClosedError, 'a closed peer refuses new requests at once');

  const again = await net.connect('w1:7000', { session: 'p1' });
  assert.equal(again.session, 'w1', 'the listener survives a cut link');
  await net.close();
});

test('a listener that closes rejects what waits on it; connecting to it afterwards is refused', async () => {
  const net = new MemoryNetwork();
  const onServer = hanging();
  const server = net.listen('w2:7000', { session: 'w2', methods: { hang: onServer.spec } });
  assert.throws(() => net.listen('w2:7000', { session: 'other', methods: {} }), /already has a listener/);
  const client = await net.connect('w2:7000', { session: 'p2' });
  const waiting = client.request('hang', {});
  await pollUntil('the handler started', () => onServer.started === 1);
  await server.close();
  await assert.rejects(waiting, PeerClosedError);
  await assert.rejects(net.connect('w2:7000', { session: 'p2' }), (e: unknown) => e instanceof ConnectError && e.code === 'ECONNREFUSED');
  await assert.rejects(net.connect('nowhere:1', { session: 'p2' }), /nothing listens/);
  await net.close();
});

test('a shaped link (latency, bandwidth) delivers every byte, in order, with answers matched to requests', async (t) => {
  const net = new MemoryNetwork({ link: { latencyMs: 2, bytesPerSecond: 50e6 } });
  net.listen('far:7000', {
    session: 'far',
    methods: { echo: { schema: Echo, handler: ({ header, payload }) => ({ header, payload }) } },
  });
  const client = await net.connect('far:7000', { session: 'near' });
  const big = Uint8Array.from({ length: 1 << 20 }, (_, i) => (i * 7) & 0xff);
  const started = performance.now();
  const [bulk, ...small] = await Promise.all([client.request('echo', { n: -1 }, big), ...Array.from({ length: 50 }, (_, n) => client.request('echo', { n }))]);
  assert.equal(Buffer.compare(Buffer.from(bulk!.payload), Buffer.from(big)), 0, 'the 1 MiB payload arrives intact');
  assert.deepEqual(small.map((a) => (a.header as { n: number }).n), Array.from({ length: 50 }, (_, n) => n));
  t.diagnostic(`1 MiB and 50 small requests over 2 ms / 50 MB/s: ${Math.round(performance.now() - started)} ms (printed, not asserted)`);
  await net.close();
});

test('a reader that stops reading holds the writer back, and nothing is lost when it resumes', async () => {
  const [a, b] = MemorySocket.pair();
  b.pause();
  const chunk = Buffer.alloc(64 * 1024, 1);
  const CHUNKS = 64;
  let written = 0;
  for (let i = 0; i < CHUNKS; i++) a.write(chunk, () => (written += 1));
  await new Promise((resolve) => setImmediate(resolve)); // every delivery the link could make has happened
  assert.ok(written < 4, `the paused reader took ${written} of ${CHUNKS} chunks: the rest wait, as on a full TCP window`);
  assert.ok(a.writableNeedDrain, 'the writer is told to wait for drain');
  let received = 0;
  b.on('data', (d: Buffer) => (received += d.length));
  b.resume();
  a.end();
  await new Promise((resolve) => b.once('end', resolve));
  assert.equal(written, CHUNKS);
  assert.equal(received, CHUNKS * chunk.length);
});
