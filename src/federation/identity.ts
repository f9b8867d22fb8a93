/**
 * Ed25519 identities for the coordinator and for nodes: a key pair created on first start in a data
 * directory (private key file mode 0600, directory 0700) and reused afterwards, plus sign/verify
 * helpers. Public keys travel as base64 of the 32 raw bytes (protocol.ts PublicKeySchema); signatures
 * as base64 of 64 bytes, over protocol.ts signingPayload(body).
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { signingPayload } from './protocol.ts';

/** Default file name of the private key inside a data directory. */
export const IDENTITY_FILE = 'identity.key';

export interface Identity {
  /** Short fingerprint of the public key (16 hex chars); a good default node id. */
  readonly id: string;
  /** base64 of the 32 raw public key bytes. */
  readonly publicKey: string;
  /** Where the private key lives, when loaded from disk. */
  readonly path?: string;
  /** Signs bytes; returns base64 of the 64-byte signature. */
  sign(data: Uint8Array): string;
}

export class IdentityError extends Error {
  constructor(
    message: string,
    readonly path: string,
    readonly hint: string,
  ) {
    super(`${message} (${path}). ${hint}`);
    this.name = 'IdentityError';
  }
}

/**
 * Loads the key in `dir/fileName`, or creates it (and `dir`) when missing. Refuses a key file that
 * other users can read, like ssh does.
 */
export function loadOrCreateIdentity(dir: string, fileName = IDENTITY_FILE): Identity {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, fileName);
  let pem: string;
  try {
    pem = readKeyFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    pem = createKeyFile(path);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (error) {
    throw new IdentityError(`cannot parse private key: ${(error as Error).message}`, path, 'delete the file to create a new identity');
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new IdentityError(`expected an ed25519 key, found ${privateKey.asymmetricKeyType}`, path, 'delete the file to create a new identity');
  }
  return identityFromKey(privateKey, path);
}

/** An identity that lives only in memory (tests, throwaway nodes). */
export function createEphemeralIdentity(): Identity {
  return identityFromKey(generateKeyPairSync('ed25519').privateKey);
}

function identityFromKey(privateKey: KeyObject, path?: string): Identity {
  const publicKey = rawPublicKey(createPublicKey(privateKey));
  return {
    id: fingerprint(publicKey),
    publicKey,
    ...(path === undefined ? {} : { path }),
    sign: (data) => sign(null, data, privateKey).toString('base64'),
  };
}

function readKeyFile(path: string): string {
  checkPermissions(path);
  return readFileSync(path, 'utf8');
}

/**
 * Writes a new key to a temp file, then hard-links it into place: link() fails when the name exists,
 * so of two processes starting at once one wins and the other reads the winner's complete key.
 */
function createKeyFile(path: string): string {
  const pem = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const temp = `${path}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(temp, pem, { mode: 0o600 });
  chmodSync(temp, 0o600); // the mode above is filtered by umask; make it exact
  try {
    linkSync(temp, path);
    return pem;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return readKeyFile(path);
  } finally {
    unlinkSync(temp);
  }
}

function checkPermissions(path: string): void {
  if (process.platform === 'win32') return;
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new IdentityError(
      `private key is readable by other users (mode ${mode.toString(8)}, expected 600)`,
      path,
      `run: chmod 600 ${path}`,
    );
  }
}

/** base64 of the raw 32 public key bytes (the JWK 'x' member, re-encoded from base64url). */
function rawPublicKey(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.x === undefined) throw new Error('ed25519 public key export has no x member');
  return Buffer.from(jwk.x, 'base64url').toString('base64');
}

/** First 16 hex chars of sha256(raw public key). */
export function fingerprint(publicKeyBase64: string): string {
  return createHash('sha256').update(Buffer.from(publicKeyBase64, 'base64')).digest('hex').slice(0, 16);
}

/** Imports a base64 raw ed25519 public key; undefined when it is not one. */
function importPublicKey(publicKeyBase64: string): KeyObject | undefined {
  const raw = Buffer.from(publicKeyBase64, 'base64');
  if (raw.length !== 32) return undefined;
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
  } catch {
    return undefined;
  }
}

/** True when `signatureBase64` is publicKey's signature of data. Never throws on malformed input. */
export function verifySignature(publicKeyBase64: string, data: Uint8Array, signatureBase64: string): boolean {
  const key = importPublicKey(publicKeyBase64);
  const signature = Buffer.from(signatureBase64, 'base64');
  if (key === undefined || signature.length !== 64) return false;
  try {
    return verify(null, data, key, signature);
  } catch {
    return false;
  }
}

/** Returns `body` with `signature` set: the identity's signature over signingPayload(body). */
export function signBody<T extends Record<string, unknown>>(identity: Identity, body: T): T & { signature: string } {
  return { ...body, signature: identity.sign(signingPayload(body)) };
}

/**
 * Verifies a signed JSON body as received (before schema parsing strips unknown fields), against the
 * key named in it (`publicKeyField`, e.g. 'publicKey' or 'publisherKey').
 */
export function verifyBody(body: Record<string, unknown>, publicKeyField: string): boolean {
  const publicKey = body[publicKeyField];
  const signature = body['signature'];
  if (typeof publicKey !== 'string' || typeof signature !== 'string') return false;
  return verifySignature(publicKey, signingPayload(body), signature);
}
