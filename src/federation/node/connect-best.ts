// Reaching a worker by the best of its RFC-0001 candidates: all are probed at once (connect + authenticated HELLO + PING),
// and the best that answers wins: LAN first, then WAN, then relay; the losing connections are closed.
import type { Logger } from '../../util/log.ts';
import type { NodeView } from '../protocol.ts';
import { relayUrl } from '../transport/address.ts';
import { chooseCandidate, dialCandidate } from '../transport/candidates.ts';
import { HandshakeRefusal } from '../transport/rpc.ts';
import type { ClientTls, MethodSpec, Peer, PeerAuth } from '../transport/rpc.ts';

export interface ConnectBestOptions {
  session: string;
  methods: Record<string, MethodSpec>;
  logger: Logger;
  joinToken?: string;
  /** TLS to the relay, for relay candidates only (direct data-plane connections are plain TCP). */
  relayTls?: ClientTls;
  timeoutMs?: number;
  /** Our identity and the join token: every connection is authenticated, and must be the worker `w` itself
   *  (required: workers refuse anonymous connections). */
  auth: Omit<PeerAuth, 'verifyPeer'>;
}

/** The address a hop uses to reach this candidate: host:port, or relay://relay/nodeId for relay candidates. */
export function candidateAddr(nodeId: string, c: { kind: 'lan' | 'wan' | 'relay'; addr: string }): string {
  return c.kind === 'relay' ? relayUrl(c.addr, nodeId) : c.addr;
}

export async function connectBest(w: NodeView, o: ConnectBestOptions): Promise<{ peer: Peer; addr: string; kind: string; rttMs: number; cert?: string }> {
  const choice = await chooseCandidate(w.candidates, {
    session: o.session,
    methods: o.methods,
    nodeId: w.nodeId,
    logger: o.logger,
    timeoutMs: o.timeoutMs ?? 3_000,
    ...(o.joinToken ? { token: o.joinToken } : {}),
    auth: { ...o.auth, verifyPeer: (remote) => expectNode(w, remote) },
    // Relay candidates: TLS to the relay (hop by hop); direct ones: TLS pinned to the worker's own certificate.
    dial: (c, opts) => dialCandidate(c, c.kind === 'relay' ? (o.relayTls ? { ...opts, tls: o.relayTls } : opts) : w.dataPlaneCert ? { ...opts, tls: { ca: w.dataPlaneCert } } : opts),
  });
  o.logger.debug('path chosen', { nodeId: w.nodeId, kind: choice.candidate.kind, addr: choice.candidate.addr, rttMs: choice.rttMs, tried: choice.tried.map((t) => `${t.candidate.kind}:${t.ok ? 'ok' : (t.error ?? 'abandoned')}`).join(' ') });
  return { peer: choice.peer, addr: candidateAddr(w.nodeId, choice.candidate), kind: choice.candidate.kind, rttMs: choice.rttMs, ...(w.dataPlaneCert && choice.candidate.kind !== 'relay' ? { cert: w.dataPlaneCert } : {}) };
}

/** The other end must prove the key the coordinator lists for `w` (not merely some member's key). */
function expectNode(w: NodeView, remote: { nodeId: string; publicKey: string }): void {
  if (remote.nodeId !== w.nodeId || remote.publicKey !== w.publicKey) {
    throw new HandshakeRefusal('not_member', `expected worker ${w.nodeId} with its registered key, ${remote.nodeId} answered`, 'someone else answers at that worker\'s address: check its candidates at the coordinator');
  }
}
