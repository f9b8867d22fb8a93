import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { waitFor } from '../coordinator/testing.ts';
import { ConnectError, connect, listen, method, PeerClosedError, RemoteError } from './rpc.ts';
import type { MethodSpec, Peer } from './rpc.ts';
import { connectViaRelay, relayRegister, startRelayServer } from './relay.ts';
import { hasOpenssl, makeTestCert, Rng, summarize } from './testing.ts';

const methods: Record<string, MethodSpec> = {
  echo: method(z.object({ n: z.number() }), ({ header, payload, peer }) => ({ header: { n: header.n, via: peer.remote, who: peer.session }, payload })),
  void: { schema: z.unknown(), handler: () => {} },
};

test('a node registered only at the relay is reachable through it (and serves like a listener)', async () => {
  const relay = await startRelayServer({ host: '127.0.0.1', port: 0 });
  const relayAddr = `127.0.0.1:${relay.port}`;
  const registration = await relayRegister({ relayAddr, nodeId: 'hidden-1', methods });
  try {
    assert.equal(registration.registered, true);
    assert.deepEqual(relay.stats().nodes, ['hidden-1']);
    const peer = await connectViaRelay(relayAddr, 'hidden-1', { session: 'primary' });
    assert.equal(peer.session, 'hidden-1', 'HELLO end to end with the node, not the relay');
    assert.equal(peer.remote, `relay://${relayAddr}/hidden-1`);
    const payload = new Rng(5).bytes(2 * 1024 * 1024 + 5);
    const answer = await peer.request('echo', { n: 7 }, payload);
    assert.deepEqual(answer.header, { n: 7, via: `relay://${relayAddr}`, who: 'primary' });
    assert.ok(Buffer.from(answer.payload).equals(payload));
    await waitFor('the node sees the relayed peer', () => registration.peers().length === 1);
    // And the node can call the client back over the same spliced connection.
    const back = await connectViaRelay(relayAddr, 'hidden-1', { session: 'p2', methods: { hi: { schema: z.object({}), handler: () => ({ header: 'hello back' }) } } });
    await waitFor('second relayed peer', () => registration.peers().some((p) => p.session === 'p2'));
    const fromNode = registration.peers().find((p) => p.session === 'p2')!;
    assert.equal((await fromNode.request('hi', {})).header, 'hello back');
    assert.equal(relay.stats().activeSplices, 2);
    back.close();
    peer.close();
    await waitFor('splices torn down', () => relay.stats().activeSplices === 0);
  } finally {
    await registration.close();
    await relay.close();
  }
});

test('relayed connections are adopted by the node server: same methods, same peers()', async () => {
  const relay = await startRelayServer({ host: '127.0.0.1', port: 0 });
  const relayAddr = `127.0.0.1:${relay.port}`;
  const server = await listen({ host: '127.0.0.1', port: 0, session: 'node-9', methods });
  const registration = await relayRegister({ relayAddr, nodeId: 'node-9', server });
  try {
    const peer = await connectViaRelay(relayAddr, 'node-9', { session: 'primary-x' });
    assert.equal(peer.session, 'node-9');
    await waitFor('the server lists the relayed peer', () => server.peerBySession('primary-x') !== undefined);
    assert.equal(server.peerBySession('primary-x')!.remote, `relay://${relayAddr}`);
    peer.close();
  } finally {
    await registration.close();
    await server.close();
    await relay.close();
  }
});

test('relay overhead: RTT and a 4 MiB round trip, direct vs relayed (printed, not asserted)', async () => {
  const relay = await startRelayServer({ host: '127.0.0.1', port: 0 });
  const relayAddr = `127.0.0.1:${relay.port}`;
  const server = await listen({ host: '127.0.0.1', port: 0, session: 'bench-node', methods });
  const registration = await relayRegister({ relayAddr, nodeId: 'bench-node', server });
  const direct = await connect(`127.0.0.1:${server.port}`, { session: 'direct' });
  const relayed = await connectViaRelay(relayAddr, 'bench-node', { session: 'relayed' });
  try {
    const measure = async (peer: Peer, rounds: number, run: () => Promise<unknown>) => {
      for (let i = 0; i < 20; i++) await run(); // warm up
      const samples: number[] = [];
      for (let i = 0; i < rounds; i++) {
        const started = performance.now();
        await run();
        samples.push(performance.now() - started);
      }
      void peer;
      return summarize(samples);
    };
    const pingDirect = await measure(direct, 300, () => direct.rtt());
    const pingRelay = await measure(relayed, 300, () => relayed.rtt());
    const small = Buffer.alloc(4 * 1024); // one hidden state row of a 1024-wide model in f32
    const stepDirect = await measure(direct, 300, () => direct.request('echo', { n: 1 }, small));
    const stepRelay = await measure(relayed, 300, () => relayed.request('echo', { n: 1 }, small));
    const big = Buffer.alloc(4 * 1024 * 1024);
    const bigDirect = await measure(direct, 20, () => direct.request('echo', { n: 1 }, big));
    const bigRelay = await measure(relayed, 20, () => relayed.request('echo', { n: 1 }, big));
    const row = (name: string, d: { median: number; p90: number }, r: { median: number; p90: number }) =>
      `  ${name.padEnd(24)} direct median ${d.median.toFixed(3)} ms (p90 ${d.p90.toFixed(3)})   relay median ${r.median.toFixed(3)} ms (p90 ${r.p90.toFixed(3)})   added ${(r.median - d.median).toFixed(3)} ms`;
    console.log(
      [
        'relay overhead on loopback (one process, 2 cores shared by client, relay and node):',
        row('PING/PONG', pingDirect, pingRelay),
        row('request 4 KiB echo', stepDirect, stepRelay),
        row('request 4 MiB echo', bigDirect, bigRelay),
      ].join('\n'),
    );
  } finally {
    direct.close();
    relayed.close();
    await registration.close();
    await server.close();
    await relay.close();
  }
});

test('join token: registration and opening both need it', async () => {
  const relay = await startRelayServer({ host: '127.0.0.1', port: 0, joinToken: 'secret-token' });
  const relayAddr = `127.0.0.1:${relay.port}`;
  try {
    await assert.rejects(relayRegister({ relayAddr, nodeId: 'n1', methods }), (error: unknown) => error instanceof RemoteError && error.code === 'unauthorized');
    await assert.rejects(relayRegister({ relayAddr, nodeId: 'n1', methods, token: 'wrong' }), (error: unknown) => error instanceof RemoteError && error.code === 'unauthorized');
    assert.deepEqual(relay.stats().nodes, []);
    const registration = await relayRegister({ relayAddr, nodeId: 'n1', methods, token: 'secret-token' });
    try {
      await assert.rejects(connectViaRelay(relayAddr, 'n1', { session: 'c' }), (error: unknown) => error instanceof ConnectError && error.code === 'unauthorized');
      await assert.rejects(connectViaRelay(relayAddr, 'n1', { session: 'c', token: 'nope' }), (error: unknown) => error instanceof ConnectError && error.code === 'unauthorized');
      const peer = await connectViaRelay(relayAddr, 'n1', { session: 'c', token: 'secret-token' });
      assert.equal(z.object({ n: z.number() }).parse((await peer.request('echo', { n: 1 })).header).n, 1);
      peer.close();
      const alias = await connectViaRelay(relayAddr, 'n1', { session: 'c', joinToken: 'secret-token' });
      alias.close();
    } finally {
      await registration.close();
    }
  } finally {
    await relay.close();
  }
});

test('unknown node, a node that never dials back, and a node that goes away', async () => {
  const relay = await startRelayServer({ host: '127.0.0.1', port: 0, dialTimeoutMs: 150 });
  const relayAddr = `127.0.0.1:${relay.port}`;
  try {
    await assert.rejects(connectViaRelay(relayAddr, 'ghost', { session: 'c' }), (error: unknown) => error instanceof ConnectError && error.code === 'unknown_node');

    // A control connection that registers but ignores relay.dial.
    const mute = await connect(relayAddr, { session: 'mute', methods: { 'relay.dial': { schema: z.unknown(), handler: () => {} } } });
    await mute.request('relay.register', { nodeId: 'mute' });
    await assert.rejects(connectViaRelay(relayAddr, 'mute', { session: 'c' }), (error: unknown) => error instanceof ConnectError && error.code === 'relay_timeout');
    mute.close();
    await waitFor('the relay forgets the mute node', () => !relay.stats().nodes.includes('mute'));

    const registration = await relayRegister({ relayAddr, nodeId: 'leaving', methods });
    const peer = await connectViaRelay(relayAddr, 'leaving', { session: 'c' });
    const pending = peer.request('echo', { n: 1 }).then(() => peer.request('void', null, undefined, { timeoutMs: 60_000 }));
    await pending;
    const hanging = new Promise<void>((resolve) => peer.once('close', () => resolve()));
    await registration.close(); // closes the node's relayed connections too
    await hanging;
    await assert.rejects(peer.request('echo', { n: 2 }), PeerClosedError);
    assert.equal(relay.stats().pending, 0);
  } finally {
    await relay.close();
  }
});

test('a node re-registers by itself after the relay restarts', async () => {
  const first = await startRelayServer({ host: '127.0.0.1', port: 0 });
  const port = first.port;
  const relayAddr = `127.0.0.1:${port}`;
  const registration = await relayRegister({ relayAddr, nodeId: 'sticky', methods, retryBaseDelayMs: 20, retryMaxDelayMs: 100 });
  let second: Awaited<ReturnType<typeof startRelayServer>> | undefined;
  try {
    const disconnected = new Promise<void>((resolve) => registration.once('disconnected', () => resolve()));
    await first.close();
    await disconnected;
    second = await startRelayServer({ host: '127.0.0.1', port });
    await waitFor('re-registered', () => second!.stats().nodes.includes('sticky'));
    const peer = await connectViaRelay(relayAddr, 'sticky', { session: 'c' });
    assert.equal(z.object({ n: z.number() }).parse((await peer.request('echo', { n: 3 })).header).n, 3);
    peer.close();
  } finally {
    await registration.close();
    await second?.close();
  }
});

test('relay with TLS on both legs', { skip: hasOpenssl() ? false : 'openssl is not installed' }, async () => {
  const pem = await makeTestCert();
  const relay = await startRelayServer({ host: '127.0.0.1', port: 0, tls: pem });
  const relayAddr = `127.0.0.1:${relay.port}`;
  const registration = await relayRegister({ relayAddr, nodeId: 'tls-node', methods, tls: { ca: pem.cert } });
  try {
    const peer = await connectViaRelay(relayAddr, 'tls-node', { session: 'c', tls: { ca: pem.cert } });
    const payload = new Rng(6).bytes(1024 * 1024 + 1);
    assert.ok(Buffer.from((await peer.request('echo', { n: 1 }, payload)).payload).equals(payload));
    peer.close();
    await assert.rejects(connectViaRelay(relayAddr, 'tls-node', { session: 'c' }), ConnectError);
  } finally {
    await registration.close();
    await relay.close();
  }
});
