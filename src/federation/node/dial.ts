// Dialing a data-plane address: 'host:port' directly, or 'relay://host:port/nodeId' through a relay.
import { RELAY_SCHEME, parseRelayUrl } from '../transport/address.ts';
import { connectViaRelay } from '../transport/relay.ts';
import { type MethodSpec, type Peer, connect } from '../transport/rpc.ts';
import type { Logger } from '../coordinator/log.ts';

export interface DialOptions {
  session: string;
  methods?: Record<string, MethodSpec>;
  tls?: { ca?: string; rejectUnauthorized?: boolean };
  timeoutMs?: number;
  logger?: Logger;
  joinToken?: string;
}

export async function dial(addr: string, o: DialOptions): Promise<Peer> {
  if (addr.startsWith(RELAY_SCHEME)) {
    const { relayAddr, nodeId } = parseRelayUrl(addr);
    return connectViaRelay(relayAddr, nodeId, o as never);
  }
  return connect(addr, o);
}
