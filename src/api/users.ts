/**
 * Who is calling: every API request has a Caller, decided once by the listener's guard (http.ts) from its
 * `Authorization: Bearer <key>`, and read by routes and model sources with callerOf(req).
 *
 *   admin      the node's single `--api-key` (the operator); it sees every shared model but owns no adapters
 *   user       a per-user key issued by `sharedllm users add NAME` (stored hashed in the primary's SQLite)
 *   anonymous  no key, on a node started without `--api-key` (or a public path such as /health)
 *
 * User keys are 256 random bits, written `sllm_<43 base64url chars>`. The store keeps only their SHA-256
 * (a slow hash adds nothing for a key with 256 bits of entropy) and looks a key up by that digest; the
 * stored digest is then compared with timingSafeEqual. A key shaped like a user key that matches nobody
 * (revoked, mistyped) is a 401 even on a node without `--api-key`, so that a user never silently falls back
 * to anonymous and finds their adapters "gone".
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { bearerToken, tokensEqual } from '../http/index.ts';
import { ApiError } from './errors.ts';

export type Caller = { kind: 'admin' } | { kind: 'anonymous' } | UserCaller;

export interface UserCaller {
  kind: 'user';
  userId: string;
  name: string;
}

export const ADMIN: Caller = Object.freeze({ kind: 'admin' });
export const ANONYMOUS: Caller = Object.freeze({ kind: 'anonymous' });

/** Finds the user a key belongs to (the primary's store; an in-memory one in tests). */
export interface UserDirectory {
  /** The user whose key has this SHA-256 digest (32 bytes), if any. */
  userByKeyHash(keyHash: Buffer): { userId: string; name: string; keyHash: Buffer } | undefined;
}

/** The prefix of every user key: tells a user key from an admin key and from other services' tokens. */
export const USER_KEY_PREFIX = 'sllm_';

/** A fresh user key (shown once to the admin who made it; only its hash is stored). */
export function newUserKey(): string {
  return `${USER_KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
}

/** What the store keeps of a key: its SHA-256. */
export function hashUserKey(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

const callers = new WeakMap<IncomingMessage, Caller>();

/** The request's caller, as the guard decided it (anonymous for a request no guard saw). */
export function callerOf(req: IncomingMessage): Caller {
  return callers.get(req) ?? ANONYMOUS;
}

export interface AuthRules {
  /** The admin key (`--api-key`); when set, a request must carry it or a user key. */
  apiKey?: string;
  users?: UserDirectory;
  publicPaths: { has(pathname: string): boolean };
  /** Throws the 401 of a missing or wrong admin key (http.ts's wording); returns when the key is right. */
  refuse: (req: IncomingMessage, expected: string) => void;
}

/** The guard of the API listener: decides the caller, or throws 401. */
export function authenticate(req: IncomingMessage, url: URL, rules: AuthRules): void {
  callers.set(req, decideCaller(req, url, rules));
}

function decideCaller(req: IncomingMessage, url: URL, rules: AuthRules): Caller {
  const token = bearerToken(req);
  if (token !== undefined) {
    if (rules.apiKey !== undefined && tokensEqual(token, rules.apiKey)) return ADMIN;
    const user = token.startsWith(USER_KEY_PREFIX) ? findUser(rules.users, token) : undefined;
    if (user !== undefined) return user;
  }
  if (rules.publicPaths.has(url.pathname)) return ANONYMOUS;
  if (rules.apiKey !== undefined) {
    rules.refuse(req, rules.apiKey);
    return ADMIN;
  }
  if (token?.startsWith(USER_KEY_PREFIX) === true && rules.users !== undefined) {
    throw new ApiError(401, 'this user key is not known to this node (revoked, or mistyped)', {
      code: 'invalid_api_key',
      hint: 'ask the node operator for a key (`sharedllm users add NAME`)',
      headers: { 'www-authenticate': 'Bearer realm="sharedllm"' },
    });
  }
  return ANONYMOUS;
}

function findUser(users: UserDirectory | undefined, token: string): UserCaller | undefined {
  if (users === undefined) return undefined;
  const digest = hashUserKey(token);
  const found = users.userByKeyHash(digest);
  if (found === undefined || found.keyHash.length !== digest.length || !timingSafeEqual(found.keyHash, digest)) return undefined;
  return { kind: 'user', userId: found.userId, name: found.name };
}
