/**
 * The authenticated HELLO of a data-plane connection: who the other end is, proven for THIS connection.
 *
 *   client -> server  HELLO  {session, protocolVersion, dataplaneVersion, nonce: Nc, auth: {nodeId, publicKey}}
 *   server -> client  HELLO  {session, protocolVersion, dataplaneVersion, nonce: Ns,
 *                             auth: {nodeId, publicKey, signature: sig_S("server", T), tokenProof: hmac_token("server", T)}}
 *   client -> server  HELLO  {proof: {signature: sig_C("client", T), tokenProof: hmac_token("client", T)}}
 *   server -> client  HELLO  {accepted: true}
 *
 * T (the transcript) is canonicalJson of both versions and, for each side, its session, nonce, nodeId and
 * public key. Each side checks the other's ed25519 signature of T against the key it showed, the token HMAC
 * where it has a join token itself (so the token never crosses the wire and a proof is bound to both fresh
 * nonces), and then asks its `verifyPeer` callback whether that identity may connect (e.g. the coordinator
 * lists it as an alive member with that key). Replaying a recorded handshake fails: the other side's fresh
 * nonce is in T; a nonce seen twice is refused outright (NonceMemory).
 *
 * What this does not give: secrecy or integrity of the frames after HELLO. Without TLS, someone on the path
 * can still read or splice the TCP stream after the handshake; with TLS (the worker's pinned certificate on
 * direct connections) the channel is protected and the HELLO authenticates both identities on top of it.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { verifySignature } from '../identity.ts';
import type { Identity } from '../identity.ts';
import { canonicalJson } from '../protocol.ts';

/** The identity the other end of a connection proved (its registered nodeId and ed25519 public key). */
export interface PeerIdentity {
  nodeId: string;
  publicKey: string;
}

/** Authentication of one end of a connection (PeerOptions.auth, ServerOptions.auth, ConnectOptions.auth). */
export interface PeerAuth {
  /** Our key pair: signs the transcript. */
  identity: Identity;
  /** The nodeId we registered with (default identity.id, the key's fingerprint). */
  nodeId?: string;
  /** The federation's join token, where it has one: both ends must prove it. */
  token?: string;
  /**
   * Called with the other end's identity once its signature checked out: throw (an error with `code` and
   * `hint`, e.g. 'not_member') to refuse the connection. Absent: any identity that signs correctly.
   */
  verifyPeer?: (remote: PeerIdentity) => void | Promise<void>;
  /** Remembers nonces seen (default: one memory per process). */
  nonces?: NonceMemory;
}

/** A refused handshake: the code and hint travel to the other side in an ERROR frame. */
export class HandshakeRefusal extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly hint: string,
  ) {
    super(message);
    this.name = 'HandshakeRefusal';
  }
}

/** Fresh HELLO nonce: base64 of 32 random bytes. */
export function newNonce(): string {
  return randomBytes(32).toString('base64');
}

/**
 * Nonces seen lately, bounded (the oldest are forgotten first). A replayed HELLO is refused by its stale
 * signature anyway (the other side's nonce is fresh); this refuses it early and names it.
 */
export class NonceMemory {
  private readonly seen = new Set<string>();
  constructor(private readonly capacity = 65_536) {}

  /** Remember `nonce`; false when it was seen before. */
  remember(nonce: string): boolean {
    if (this.seen.has(nonce)) return false;
    this.seen.add(nonce);
    if (this.seen.size > this.capacity) this.seen.delete(this.seen.values().next().value!);
    return true;
  }
}

export const processNonces = new NonceMemory();

export interface HelloSide {
  session: string;
  nonce: string;
  nodeId: string;
  publicKey: string;
}

export type HelloRole = 'client' | 'server';

/** The bytes both ends sign: everything either side said in its first HELLO. */
export function helloTranscript(versions: { protocolVersion: number; dataplaneVersion: number }, client: HelloSide, server: HelloSide): string {
  return canonicalJson({ purpose: 'sharedllm-dataplane-hello', ...versions, client, server });
}

/** What `role` sends to prove itself: its signature of the transcript and, with a token, the token HMAC. */
export function proveHello(auth: PeerAuth, role: HelloRole, transcript: string): { signature: string; tokenProof?: string } {
  const signature = auth.identity.sign(Buffer.from(`${role}\n${transcript}`, 'utf8'));
  return auth.token === undefined ? { signature } : { signature, tokenProof: tokenProof(auth.token, role, transcript) };
}

export function tokenProof(token: string, role: HelloRole, transcript: string): string {
  return createHmac('sha256', token).update(`${role}\n${transcript}`, 'utf8').digest('base64');
}

/** Check the proofs `role` sent; throws HandshakeRefusal. Our own token decides whether one is required. */
export function checkHelloProof(auth: PeerAuth, role: HelloRole, remote: PeerIdentity, transcript: string, proof: { signature?: string | undefined; tokenProof?: string | undefined }): void {
  if (proof.signature === undefined || !verifySignature(remote.publicKey, Buffer.from(`${role}\n${transcript}`, 'utf8'), proof.signature)) {
    throw new HandshakeRefusal('bad_signature', `the HELLO signature of ${remote.nodeId} does not verify against the key it showed`, 'the node must sign with the key it registered with; a replayed or forged handshake is refused');
  }
  if (auth.token === undefined) return;
  const expected = Buffer.from(tokenProof(auth.token, role, transcript), 'base64');
  const got = Buffer.from(proof.tokenProof ?? '', 'base64');
  if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
    throw new HandshakeRefusal('bad_token', `${remote.nodeId} did not prove the federation's join token${proof.tokenProof === undefined ? ' (no proof sent)' : ''}`, 'start the node with the same --join-token as the coordinator');
  }
}
