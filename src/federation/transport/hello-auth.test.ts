// The authenticated HELLO (hello-auth.ts) over real sockets: a good pair learns each other's identity; a
// signature by another key, a replayed handshake, a wrong or missing join token, a connection without an
// identity, another data-plane version, and a request before the proof are each refused with an ERROR
// naming why, before any method runs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { createEphemeralIdentity } from '../identity.ts';
import type { Identity } from '../identity.ts';
import { DATAPLANE_VERSION } from '../protocol-dataplane.ts';
import { PROTOCOL_VERSION } from '../protocol.ts';
import { FrameKind } from './frame.ts';
import type { Frame } from './frame.ts';
import { helloTranscript, NonceMemory, proveHello } from './hello-auth.ts';
import type { PeerAuth, PeerIdentity } from './hello-auth.ts';
import { ConnectError, connect, listen } from './rpc.ts';
import type { TransportServer } from './rpc.ts';
import { helloFrame, RawClient } from './testing.ts';

const TOKEN = 'the-join-token';

interface Fixture {
  server: TransportServer;
  identity: Identity;
  calls: number;
  seen: PeerIdentity[];
  close: () => Promise<void>;
}

async function startServer(auth: Partial<PeerAuth> = {}): Promise<Fixture> {
  const identity = createEphemeralIdentity();
  const fixture: Fixture = { server: undefined!, identity, calls: 0, seen: [], close: async () => {} };
  fixture.server = await listen({
    host: '127.0.0.1',
    port: 0,
    session: 'worker-session',
    auth: { identity, token: TOKEN, nonces: new NonceMemory(), verifyPeer: (remote) => void fixture.seen.push(remote), ...auth },
    methods: {
      whoami: {
        schema: z.object({}),
        handler: ({ peer }) => {
          fixture.calls += 1;
          return { header: { nodeId: peer.identity?.nodeId } };
        },
      },
    },
  });
  fixture.close = () => fixture.server.close();
  return fixture;
}

const addr = (f: Fixture) => `127.0.0.1:${f.server.port}`;
const refusedWith = (code: string) => (error: unknown) => error instanceof ConnectError && error.code === code;

test('a good pair: both identities proven, the token proven both ways, then requests flow', async () => {
  const f = await startServer();
  const client = createEphemeralIdentity();
  const seenByClient: PeerIdentity[] = [];
  const peer = await connect(addr(f), { session: 'primary-session', auth: { identity: client, token: TOKEN, verifyPeer: (remote) => void seenByClient.push(remote) } });
  try {
    assert.deepEqual(peer.identity, { nodeId: f.identity.id, publicKey: f.identity.publicKey });
    assert.deepEqual(seenByClient, [{ nodeId: f.identity.id, publicKey: f.identity.publicKey }]);
    assert.deepEqual(f.seen, [{ nodeId: client.id, publicKey: client.publicKey }]);
    assert.deepEqual((await peer.request('whoami', {})).header, { nodeId: client.id });
    assert.equal(f.server.peers()[0]?.identity?.publicKey, client.publicKey);
  } finally {
    peer.close();
    await f.close();
  }
});

test('a signature by another key than the one shown is refused', async () => {
  const f = await startServer();
  const mine = createEphemeralIdentity();
  const victim = createEphemeralIdentity();
  // Claims the victim's key (and nodeId) but can only sign with its own.
  const impostor: Identity = { id: victim.id, publicKey: victim.publicKey, sign: (data) => mine.sign(data) };
  try {
    await assert.rejects(connect(addr(f), { session: 'x', auth: { identity: impostor, token: TOKEN } }), refusedWith('bad_signature'));
    // And the other way: a server signing with another key than it shows is refused by the client.
    const liar = await startServer({ identity: { id: 'liar', publicKey: victim.publicKey, sign: (data) => mine.sign(data) } });
    await assert.rejects(connect(addr(liar), { session: 'x', auth: { identity: mine, token: TOKEN } }), refusedWith('bad_signature'));
    await liar.close();
    assert.equal(f.calls, 0);
  } finally {
    await f.close();
  }
});

/** Raw client: first HELLO with `identity`, returns the server's HELLO and the transcript to sign. */
async function rawHello(f: Fixture, identity: Identity, nonce?: string): Promise<{ raw: RawClient; hello: Frame; transcript: string; first: Frame }> {
  const raw = await RawClient.open(f.server.port);
  const first = helloFrame('raw-primary', PROTOCOL_VERSION, { auth: { nodeId: identity.id, publicKey: identity.publicKey }, ...(nonce === undefined ? {} : { nonce }) });
  raw.send(first);
  const hello = await raw.waitFor((frame) => frame.kind === FrameKind.HELLO || frame.kind === FrameKind.ERROR);
  const c = first.header as { session: string; nonce: string };
  const s = hello.header as { session: string; nonce: string; auth?: { nodeId: string; publicKey: string } };
  const transcript = hello.kind === FrameKind.HELLO
    ? helloTranscript({ protocolVersion: PROTOCOL_VERSION, dataplaneVersion: DATAPLANE_VERSION }, { session: c.session, nonce: c.nonce, nodeId: identity.id, publicKey: identity.publicKey }, { session: s.session, nonce: s.nonce, nodeId: s.auth!.nodeId, publicKey: s.auth!.publicKey })
    : '';
  return { raw, hello, transcript, first };
}

const errorCode = (frame: Frame) => (frame.header as { code: string }).code;

test('a replayed handshake is refused: the same nonce again, or an old proof on a fresh connection', async () => {
  const f = await startServer();
  const identity = createEphemeralIdentity();
  try {
    const first = await rawHello(f, identity);
    const proof = proveHello({ identity, token: TOKEN }, 'client', first.transcript);
    first.raw.send({ kind: FrameKind.HELLO, id: 0, method: '', header: { proof }, payload: new Uint8Array(0) });
    const accepted = await first.raw.waitFor((frame) => frame.kind === FrameKind.HELLO && (frame.header as { accepted?: boolean }).accepted === true);
    assert.ok(accepted, 'the genuine handshake is accepted');

    const sameNonce = await rawHello(f, identity, (first.first.header as { nonce: string }).nonce);
    assert.equal(sameNonce.hello.kind, FrameKind.ERROR);
    assert.equal(errorCode(sameNonce.hello), 'replayed_nonce');
    await sameNonce.raw.closed;

    const fresh = await rawHello(f, identity);
    fresh.raw.send({ kind: FrameKind.HELLO, id: 0, method: '', header: { proof }, payload: new Uint8Array(0) }); // the old proof
    assert.equal(errorCode(await fresh.raw.waitFor((frame) => frame.kind === FrameKind.ERROR)), 'bad_signature');
    await fresh.raw.closed;
    first.raw.close();
  } finally {
    await f.close();
  }
});

test('a wrong or missing join token is refused, and the token never crosses the wire', async () => {
  const f = await startServer();
  try {
    // The client checks the server's proof first: a server without our token is refused by us.
    await assert.rejects(connect(addr(f), { session: 'x', auth: { identity: createEphemeralIdentity(), token: 'not-the-token' } }), refusedWith('bad_token'));
    // A client without any token cannot prove it to the server.
    await assert.rejects(connect(addr(f), { session: 'x', auth: { identity: createEphemeralIdentity() } }), refusedWith('bad_token'));
    const { raw, hello } = await rawHello(f, createEphemeralIdentity());
    assert.equal(JSON.stringify(hello.header).includes(TOKEN), false);
    raw.close();
    assert.equal(f.calls, 0);
  } finally {
    await f.close();
  }
});

test('a connection without a node identity is refused before any method runs', async () => {
  const f = await startServer();
  try {
    await assert.rejects(connect(addr(f), { session: 'anonymous' }), refusedWith('unauthenticated'));
    // An authenticating client does not accept an anonymous server either.
    const anonymous = await listen({ host: '127.0.0.1', port: 0, session: 'anon', methods: {} });
    await assert.rejects(connect(`127.0.0.1:${anonymous.port}`, { session: 'x', auth: { identity: createEphemeralIdentity(), token: TOKEN } }), refusedWith('unauthenticated'));
    await anonymous.close();
    assert.equal(f.calls, 0);
  } finally {
    await f.close();
  }
});

test('another data-plane version is refused with both versions named', async () => {
  const f = await startServer();
  try {
    const raw = await RawClient.open(f.server.port);
    raw.send(helloFrame('future', PROTOCOL_VERSION, { dataplaneVersion: DATAPLANE_VERSION + 7 }));
    const error = await raw.waitFor((frame) => frame.kind === FrameKind.ERROR);
    assert.equal(errorCode(error), 'dataplane_version');
    assert.match((error.header as { message: string }).message, new RegExp(`${DATAPLANE_VERSION + 7}.*${DATAPLANE_VERSION}`));
    await raw.closed;
  } finally {
    await f.close();
  }
});

test('a request before the proof is refused and closes the connection; the handler never runs', async () => {
  const f = await startServer();
  try {
    const { raw } = await rawHello(f, createEphemeralIdentity());
    raw.send({ kind: FrameKind.PING, id: 9, method: '', header: undefined, payload: new Uint8Array(0) });
    await raw.waitFor((frame) => frame.kind === FrameKind.PONG && frame.id === 9); // PING is answered
    raw.send({ kind: FrameKind.REQUEST, id: 1, method: 'whoami', header: {}, payload: new Uint8Array(0) });
    const error = await raw.waitFor((frame) => frame.kind === FrameKind.ERROR);
    assert.equal(errorCode(error), 'unauthenticated');
    assert.match((error.header as { message: string }).message, /whoami/);
    await raw.closed;
    assert.equal(f.calls, 0);
  } finally {
    await f.close();
  }
});

test('verifyPeer refuses an identity that is not a member: the connect fails with its code', async () => {
  const f = await startServer({ verifyPeer: () => { throw Object.assign(new Error('not an alive primary of this federation'), { code: 'not_member', hint: 'register first' }); } });
  try {
    await assert.rejects(connect(addr(f), { session: 'x', auth: { identity: createEphemeralIdentity(), token: TOKEN } }), (error: unknown) => refusedWith('not_member')(error) && /alive primary/.test((error as Error).message));
    assert.equal(f.calls, 0);
  } finally {
    await f.close();
  }
});
