/**
 * RFC-0001 candidates: which of a node's advertised endpoints to use, and which endpoints a node may
 * advertise at all.
 *
 * chooseCandidate probes every candidate in parallel (connect + HELLO + PING, short deadline) and keeps
 * the best that answered: LAN before WAN before relay; within a kind the lower RTT, then the higher
 * priority. It stops waiting as soon as the answer cannot change (every candidate of the best kind that
 * answered, and of better kinds, has settled), and closes every connection but the winner's.
 */
import { isIP } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { CANDIDATE_KINDS } from '../protocol.ts';
import type { Candidate } from '../protocol.ts';
import { parseHostPort } from './address.ts';
import type { Peer } from './peer.ts';
import { connect } from './rpc.ts';
import type { ConnectOptions } from './rpc.ts';
import { connectViaRelay } from './relay.ts';

export interface ProbeOptions extends Omit<ConnectOptions, 'timeoutMs' | 'signal'> {
  /** The node the candidates belong to: the target of relay candidates (their addr is the relay's). */
  nodeId?: string;
  /** Join token for relay candidates. */
  token?: string;
  /** Deadline of one probe: connect + HELLO + PING (default 1500 ms). */
  timeoutMs?: number;
  /** How to open a connection for one candidate (default dialCandidate): a seam for tests. */
  dial?: (candidate: Candidate, options: ProbeOptions & { signal: AbortSignal; timeoutMs: number }) => Promise<Peer>;
}

export interface ProbeResult {
  candidate: Candidate;
  ok: boolean;
  rttMs?: number;
  error?: string;
  /** Still probing when a better candidate had already won: abandoned, not failed. */
  abandoned?: boolean;
}

export interface Choice {
  candidate: Candidate;
  peer: Peer;
  rttMs: number;
  /** Every candidate, in the order given. */
  tried: ProbeResult[];
}

export const DEFAULT_PROBE_TIMEOUT_MS = 1_500;

export class NoCandidateError extends Error {
  readonly code = 'no_candidate';
  constructor(
    readonly tried: ProbeResult[],
    readonly hint: string,
  ) {
    super(`no candidate answered (${tried.map((t) => `${t.candidate.kind} ${t.candidate.addr}: ${t.error ?? 'failed'}`).join('; ') || 'none advertised'}). ${hint}`);
    this.name = 'NoCandidateError';
  }
}

function rank(kind: Candidate['kind']): number {
  return CANDIDATE_KINDS.indexOf(kind);
}

/** The better of two answered probes: kind, then RTT, then priority (higher first). */
export function compareProbes(a: { candidate: Candidate; rttMs: number }, b: { candidate: Candidate; rttMs: number }): number {
  return rank(a.candidate.kind) - rank(b.candidate.kind) || a.rttMs - b.rttMs || b.candidate.priority - a.candidate.priority;
}

/** Open a data connection for one candidate: direct for lan/wan, through the relay for relay. */
export async function dialCandidate(candidate: Candidate, options: ProbeOptions & { signal: AbortSignal; timeoutMs: number }): Promise<Peer> {
  const { nodeId, token, dial: _dial, ...connectOptions } = options;
  if (candidate.kind !== 'relay') return connect(candidate.addr, connectOptions);
  if (nodeId === undefined) throw new Error('a relay candidate needs ProbeOptions.nodeId (the node to reach through the relay)');
  return connectViaRelay(candidate.addr, nodeId, token === undefined ? connectOptions : { ...connectOptions, token });
}

export async function chooseCandidate(candidates: Candidate[], probe: ProbeOptions): Promise<Choice> {
  const timeoutMs = probe.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
  const dial = probe.dial ?? dialCandidate;
  const tried: ProbeResult[] = candidates.map((candidate) => ({ candidate, ok: false }));
  const peers: (Peer | undefined)[] = candidates.map(() => undefined);
  const settled: boolean[] = candidates.map(() => false);
  const controllers = candidates.map(() => new AbortController());

  /** The winner's index once no unsettled probe could beat it, else undefined. */
  const decided = (): number | undefined => {
    let best: number | undefined;
    for (let i = 0; i < candidates.length; i++) {
      if (!settled[i] || !tried[i]!.ok) continue;
      if (best === undefined || compareProbes(probeOf(i), probeOf(best)) < 0) best = i;
    }
    if (best === undefined) return settled.every(Boolean) ? -1 : undefined;
    const bestRank = rank(candidates[best]!.kind);
    // An unsettled probe of the same or a better kind could still win (lower RTT).
    const open = candidates.some((candidate, i) => !settled[i] && rank(candidate.kind) <= bestRank);
    return open ? undefined : best;
  };
  const probeOf = (i: number) => ({ candidate: candidates[i]!, rttMs: tried[i]!.rttMs ?? Infinity });

  let done = false;
  const winner = await new Promise<number>((resolve) => {
    if (candidates.length === 0) return resolve(-1);
    const check = () => {
      if (done) return;
      const result = decided();
      if (result === undefined) return;
      done = true;
      resolve(result);
    };
    candidates.forEach((candidate, i) => {
      const controller = controllers[i]!;
      const timer = setTimeout(() => controller.abort(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      (async () => {
        const peer = await dial(candidate, { ...probe, timeoutMs, signal: controller.signal });
        peers[i] = peer;
        if (controller.signal.aborted) throw controller.signal.reason as Error;
        return peer.rtt({ timeoutMs, signal: controller.signal });
      })().then(
        (rttMs) => {
          if (done) peers[i]?.close(); // answered after the choice was made: a loser
          else tried[i] = { candidate, ok: true, rttMs };
        },
        (error: unknown) => {
          peers[i]?.close();
          peers[i] = undefined;
          if (!done) tried[i] = { candidate, ok: false, error: (error as Error).message };
        },
      ).finally(() => {
        clearTimeout(timer);
        settled[i] = true;
        check();
      });
    });
  });

  // Close every loser; abandon probes still running (their peers close when they settle).
  candidates.forEach((_candidate, i) => {
    if (i === winner) return;
    if (!settled[i]) {
      tried[i] = { candidate: candidates[i]!, ok: false, abandoned: true, error: 'abandoned: a preferred candidate had answered' };
      controllers[i]!.abort(new Error('abandoned: a preferred candidate had answered'));
    }
    peers[i]?.close();
  });
  const chosen = winner >= 0 ? peers[winner] : undefined;
  if (chosen === undefined) {
    throw new NoCandidateError(tried, 'the node is unreachable on every advertised path: is it running, and does it advertise a relay candidate if it is behind NAT?');
  }
  return { candidate: candidates[winner]!, peer: chosen, rttMs: tried[winner]!.rttMs!, tried };
}

// ---------------------------------------------------------------------------------------------------
// What a node may advertise

export interface Bound {
  /** The host the data-plane server listens on ('0.0.0.0' or '::' for every interface). */
  host: string;
  port: number;
}

export interface AdvertiseEnv {
  /** Local interfaces (default os.networkInterfaces()). */
  interfaces?: ReturnType<typeof networkInterfaces>;
  /** 'host:port' of relays this node is registered at now (RelayRegistration.registered). */
  relays?: string[];
  /** This machine's name (default os.hostname()). */
  hostname?: string;
}

export interface Advertisable {
  ok: Candidate[];
  rejected: { candidate: Candidate; reason: string }[];
}

/** The IPv4/IPv6 address as a comparable string (lowercase, no brackets, no zone). */
function normalizeIp(host: string): string {
  return host.replace(/^\[|\]$/g, '').replace(/%.*$/, '').toLowerCase();
}

export function isLoopback(host: string): boolean {
  const ip = normalizeIp(host);
  return ip === 'localhost' || ip === '::1' || ip.startsWith('127.') || ip === '::ffff:127.0.0.1';
}

/** Private, link-local, CGNAT or loopback: not reachable across the internet. */
export function isPrivateAddress(host: string): boolean {
  const ip = normalizeIp(host);
  if (isLoopback(ip)) return true;
  if (isIP(ip) === 4) {
    const [a = 0, b = 0] = ip.split('.').map(Number);
    return a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254) || (a === 100 && b >= 64 && b <= 127) || a === 0;
  }
  if (isIP(ip) === 6) return /^f[cd]/.test(ip) || /^fe[89ab]/.test(ip) || ip === '::';
  return false;
}

/** Addresses this machine can accept connections on, given the bound host. */
function servableAddresses(bound: Bound, interfaces: NonNullable<AdvertiseEnv['interfaces']>): Set<string> {
  const boundHost = normalizeIp(bound.host);
  const wildcardV4 = boundHost === '0.0.0.0';
  const wildcardAny = boundHost === '::' || boundHost === '';
  if (!wildcardV4 && !wildcardAny) return new Set([boundHost]);
  const out = new Set<string>();
  for (const list of Object.values(interfaces)) {
    for (const info of list ?? []) {
      if (wildcardV4 && info.family !== 'IPv4') continue;
      out.add(normalizeIp(info.address));
    }
  }
  return out;
}

/**
 * Split `candidates` into those this node can serve and those it must not advertise (with why):
 * - lan: an IP address of this machine that the server is bound to (any local address when bound to
 *   0.0.0.0 or ::), or this machine's host name, on the bound port. Other names cannot be checked.
 * - wan: the server must not be bound to loopback, and the address must not be private (a private
 *   address is a LAN candidate). Its port may differ (port forwarding); reachability is the
 *   operator's claim, checked by whoever probes it.
 * - relay: only a relay this node is registered at now.
 */
export function advertisable(candidates: Candidate[], bound: Bound, env: AdvertiseEnv = {}): Advertisable {
  const interfaces = env.interfaces ?? networkInterfaces();
  const servable = servableAddresses(bound, interfaces);
  const localName = (env.hostname ?? hostname()).toLowerCase();
  const relays = new Set(env.relays ?? []);
  const result: Advertisable = { ok: [], rejected: [] };
  const reject = (candidate: Candidate, reason: string) => result.rejected.push({ candidate, reason });

  for (const candidate of candidates) {
    let host: string;
    let port: number;
    try {
      ({ host, port } = parseHostPort(candidate.addr));
    } catch (error) {
      reject(candidate, (error as Error).message);
      continue;
    }
    if (candidate.kind === 'lan') {
      if (port !== bound.port) {
        reject(candidate, `port ${port} is not the bound port ${bound.port}`);
      } else if (isIP(normalizeIp(host)) !== 0) {
        if (servable.has(normalizeIp(host))) result.ok.push(candidate);
        else reject(candidate, `${host} is not an address this server accepts connections on (bound to ${bound.host})`);
      } else if (host.toLowerCase() === localName || host.toLowerCase() === 'localhost') {
        const boundHost = normalizeIp(bound.host);
        const reachable = host.toLowerCase() === 'localhost' ? isLoopback(boundHost) || boundHost === '0.0.0.0' || boundHost === '::' : boundHost === '0.0.0.0' || boundHost === '::';
        if (reachable) result.ok.push(candidate);
        else reject(candidate, `${host} may resolve to an address the server is not bound to (bound to ${bound.host})`);
      } else {
        reject(candidate, `cannot check that the name ${host} points at this machine: advertise an IP address for LAN candidates`);
      }
    } else if (candidate.kind === 'wan') {
      if (isLoopback(bound.host)) reject(candidate, `the server is bound to loopback (${bound.host}): nothing outside this machine can reach it`);
      else if (isIP(normalizeIp(host)) !== 0 && isPrivateAddress(host)) reject(candidate, `${host} is a private or loopback address: advertise it as a LAN candidate`);
      else result.ok.push(candidate);
    } else if (relays.has(candidate.addr)) {
      result.ok.push(candidate);
    } else {
      reject(candidate, `not registered at the relay ${candidate.addr}: call relayRegister first`);
    }
  }
  return result;
}
