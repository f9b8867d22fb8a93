/**
 * Addresses of the data plane: 'host:port' (IPv6 in brackets, HostPortSchema in protocol.ts) and the
 * relay form 'relay://host:port/nodeId' used in logs, the CLI and Peer.remote. A Candidate of kind
 * 'relay' carries only the relay's 'host:port' in `addr`; the node to reach through it is the node that
 * advertised the candidate (its nodeId), see docs/rfcs/0001-multi-endpoint-transport.md.
 */
import { isIP } from 'node:net';
import { HostPortSchema, NodeIdSchema } from '../protocol.ts';

export class AddressError extends Error {
  constructor(
    readonly expected: string,
    readonly actual: string,
    readonly hint: string,
  ) {
    super(`bad address: expected ${expected}, got ${JSON.stringify(actual)}. ${hint}`);
    this.name = 'AddressError';
  }
}

export interface HostPort {
  /** Without brackets for IPv6 ('::1'), as net.connect wants it. */
  host: string;
  port: number;
}

export function parseHostPort(addr: string): HostPort {
  if (!HostPortSchema.safeParse(addr).success) {
    throw new AddressError("'host:port' ('[v6]:port' for IPv6, port 1-65535)", addr, "write it like '192.168.1.10:7700' or '[fe80::1]:7700'");
  }
  const colon = addr.lastIndexOf(':');
  const rawHost = addr.slice(0, colon);
  const host = rawHost.startsWith('[') ? rawHost.slice(1, -1) : rawHost;
  return { host, port: Number(addr.slice(colon + 1)) };
}

export function formatHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

export const RELAY_SCHEME = 'relay://';

/** 'relay://host:port/nodeId': how to reach `nodeId` through the relay at `relayAddr`. */
export function relayUrl(relayAddr: string, nodeId: string): string {
  parseHostPort(relayAddr);
  if (!NodeIdSchema.safeParse(nodeId).success) throw new AddressError('a node id [A-Za-z0-9._-]{1,64}', nodeId, 'use the node id the coordinator lists');
  return `${RELAY_SCHEME}${relayAddr}/${nodeId}`;
}

export function parseRelayUrl(url: string): { relayAddr: string; nodeId: string } {
  const expected = "'relay://host:port/nodeId'";
  if (!url.startsWith(RELAY_SCHEME)) throw new AddressError(expected, url, 'relay addresses start with relay://');
  const rest = url.slice(RELAY_SCHEME.length);
  const slash = rest.lastIndexOf('/');
  if (slash < 0) throw new AddressError(expected, url, 'add the node id after the relay address');
  const relayAddr = rest.slice(0, slash);
  const nodeId = rest.slice(slash + 1);
  parseHostPort(relayAddr);
  if (!NodeIdSchema.safeParse(nodeId).success) throw new AddressError(expected, url, 'the node id is [A-Za-z0-9._-], 1-64 characters');
  return { relayAddr, nodeId };
}
