/**
 * The HELLO exchange of one connection as a small state machine (the messages are in hello-auth.ts): the
 * Peer hands it each HELLO header it receives and does what the answer says (send a HELLO, ask verifyPeer
 * about an identity, finish). A refusal is thrown as HandshakeRefusal; the Peer sends it as an ERROR.
 *
 *   without auth:  client HELLO -> server HELLO                                       (both done)
 *   with auth:     client HELLO -> server HELLO+proof -> client proof -> server accepted (both done)
 */
import { z } from 'zod';
import { DATAPLANE_VERSION } from '../protocol-dataplane.ts';
import { PROTOCOL_VERSION, TransportHelloAcceptSchema, TransportHelloProofSchema, TransportHelloSchema } from '../protocol.ts';
import type { TransportHello } from '../protocol.ts';
import { checkHelloProof, HandshakeRefusal, helloTranscript, newNonce, processNonces, proveHello } from './hello-auth.ts';
import type { HelloSide, PeerAuth, PeerIdentity } from './hello-auth.ts';

/** What the Peer does next: send `send` (a HELLO header), then ask verifyPeer about `verify` and continue
 *  with `after()`, or finish when `done`. */
export interface HelloStep {
  send?: unknown;
  verify?: { identity: PeerIdentity; after: () => HelloStep };
  done?: boolean;
}

const VERSIONS = { protocolVersion: PROTOCOL_VERSION, dataplaneVersion: DATAPLANE_VERSION };

export class HelloExchange {
  /** The other side's session and (once proven) identity. */
  session?: string;
  identity?: PeerIdentity;
  /** Which HELLO we wait for: the first, the client's proof (server), the acceptance (client). */
  expecting: 'hello' | 'proof' | 'accept' = 'hello';
  private readonly nonce = newNonce();
  private transcript = '';
  /** The identity the client claimed in its first HELLO (server side, until its proof checks out). */
  private claimed?: PeerIdentity;

  constructor(
    private readonly role: 'client' | 'server',
    private readonly ourSession: string,
    private readonly auth: PeerAuth | undefined,
  ) {}

  /** Our first HELLO: session, versions, nonce and (with auth) our identity. */
  hello(): TransportHello {
    return { session: this.ourSession, ...VERSIONS, nonce: this.nonce, ...(this.auth === undefined ? {} : { auth: this.ours() }) };
  }

  /** One HELLO header from the other side. */
  receive(header: unknown): HelloStep {
    if (this.expecting === 'proof') return this.onProof(header);
    if (this.expecting === 'accept') {
      if (!TransportHelloAcceptSchema.safeParse(header).success) throw new HandshakeRefusal('unauthenticated', 'expected the HELLO that accepts our proof', 'is the other side a SharedLLM node of the same version?');
      return { done: true };
    }
    return this.onFirstHello(header);
  }

  /** `identity` passed verifyPeer (or there is none): it is the other side's from now on. */
  verified(identity: PeerIdentity): void {
    this.identity = identity;
  }

  private ours(): { nodeId: string; publicKey: string } {
    return { nodeId: this.auth!.nodeId ?? this.auth!.identity.id, publicKey: this.auth!.identity.publicKey };
  }

  private onFirstHello(header: unknown): HelloStep {
    const version = z.object({ protocolVersion: z.number() }).safeParse(header);
    if (version.success && version.data.protocolVersion !== PROTOCOL_VERSION) {
      throw new HandshakeRefusal('protocol_version', `protocol version ${version.data.protocolVersion}, this side speaks ${PROTOCOL_VERSION}`, 'run the same SharedLLM version on both ends');
    }
    const parsed = TransportHelloSchema.safeParse(header);
    if (!parsed.success) throw new HandshakeRefusal('bad_frame', `malformed HELLO: ${z.prettifyError(parsed.error).slice(0, 2000)}`, 'is the other side a SharedLLM node of the same version?');
    const hello = parsed.data;
    if (hello.dataplaneVersion !== DATAPLANE_VERSION) {
      throw new HandshakeRefusal('dataplane_version', `data-plane version ${hello.dataplaneVersion}, this side speaks ${DATAPLANE_VERSION}`, 'run the same SharedLLM version on both ends (protocol-dataplane.ts DATAPLANE_VERSION)');
    }
    this.session = hello.session;
    const auth = this.auth;
    if (auth === undefined) return this.role === 'server' ? { send: this.hello(), done: true } : { done: true };
    if (hello.auth === undefined) {
      throw new HandshakeRefusal('unauthenticated', `the ${this.role === 'server' ? 'connecting' : 'accepting'} side showed no node identity in HELLO`, 'this node serves authenticated connections only: connect with a node identity (and the join token), as SharedLLM nodes do');
    }
    if (!(auth.nonces ?? processNonces).remember(hello.nonce)) {
      throw new HandshakeRefusal('replayed_nonce', `HELLO nonce of ${hello.auth.nodeId} was seen before`, 'a replayed handshake is refused: every connection needs a fresh nonce');
    }
    const identity = { nodeId: hello.auth.nodeId, publicKey: hello.auth.publicKey };
    const remote: HelloSide = { session: hello.session, nonce: hello.nonce, ...identity };
    const ours: HelloSide = { session: this.ourSession, nonce: this.nonce, ...this.ours() };
    if (this.role === 'server') {
      this.transcript = helloTranscript(VERSIONS, remote, ours);
      this.claimed = identity;
      this.expecting = 'proof';
      return { send: { ...this.hello(), auth: { ...this.ours(), ...proveHello(auth, 'server', this.transcript) } } };
    }
    this.transcript = helloTranscript(VERSIONS, ours, remote);
    checkHelloProof(auth, 'server', identity, this.transcript, hello.auth);
    return {
      verify: {
        identity,
        after: () => {
          this.expecting = 'accept';
          return { send: { proof: proveHello(auth, 'client', this.transcript) } };
        },
      },
    };
  }

  /** Server: the client's signature and token proof over the transcript. */
  private onProof(header: unknown): HelloStep {
    const parsed = TransportHelloProofSchema.safeParse(header);
    if (!parsed.success) throw new HandshakeRefusal('unauthenticated', `malformed HELLO proof: ${z.prettifyError(parsed.error).slice(0, 1000)}`, 'send the signed transcript as the second HELLO');
    const identity = this.claimed!;
    checkHelloProof(this.auth!, 'client', identity, this.transcript, parsed.data.proof);
    return { verify: { identity, after: () => ({ send: { accepted: true }, done: true }) } };
  }
}
