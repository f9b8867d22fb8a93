// Dialing a data-plane address: 'host:port' directly, or 'relay://host:port/nodeId' through a relay.
// Direct data-plane connections are plain TCP unless `peerCert` pins TLS; `relayTls` and `joinToken` (the
// relay's admission) apply to relayed ones only. `auth` (our identity, the join token, who we expect)
// authenticates the HELLO end to end on both kinds.
import { RELAY_SCHEME, parseRelayUrl } from '../transport/address.ts';
import { connectViaRelay } from '../transport/relay.ts';
import { type ClientTls, type MethodSpec, type Peer, type PeerAuth, connect } from '../transport/rpc.ts';
import type { Logger } from '../../util/log.ts';

export interface DialOptions {
  session: string;
  methods?: Record<string, MethodSpec>;
  /** TLS to the relay (it serves TLS when the coordinator does); see relayTls() in coordinator-link.ts. */
  relayTls?: ClientTls;
  /** The peer's data-plane certificate: direct connections use TLS and trust exactly it. */
  peerCert?: string;
  timeoutMs?: number;
  logger?: Logger;
  joinToken?: string;
  /** Prove our node identity in HELLO and check the other end's. */
  auth?: PeerAuth;
}

export async function dial(addr: string, o: DialOptions): Promise<Peer> {
  const { relayTls, joinToken, peerCert, ...base } = o;
  if (addr.startsWith(RELAY_SCHEME)) {
    const { relayAddr, nodeId } = parseRelayUrl(addr);
    return connectViaRelay(relayAddr, nodeId, { ...base, ...(relayTls ? { tls: relayTls } : {}), ...(joinToken ? { token: joinToken } : {}) });
  }
  return connect(addr, peerCert ? { ...base, tls: { ca: peerCert } } : base);
}
