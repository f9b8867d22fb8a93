// Reaching a worker by the best of its RFC-0001 candidates: LAN first, then WAN, then relay
// (the transport's chooseCandidate probes them and keeps the best connection).
import type { Logger } from '../coordinator/log.ts';
import type { NodeView } from '../protocol.ts';
import { relayUrl } from '../transport/address.ts';
import type { MethodSpec, Peer } from '../transport/rpc.ts';
import { dial } from './dial.ts';

const ORDER = { lan: 0, wan: 1, relay: 2 } as const;

export interface ConnectBestOptions {
  session: string;
  methods: Record<string, MethodSpec>;
  logger: Logger;
  timeoutMs?: number;
}

/** The dialable address of a candidate: host:port, or relay://relay/nodeId for relay candidates. */
export function candidateAddr(nodeId: string, c: { kind: 'lan' | 'wan' | 'relay'; addr: string }): string {
  return c.kind === 'relay' ? relayUrl(c.addr, nodeId) : c.addr;
}

export async function connectBest(w: NodeView, o: ConnectBestOptions): Promise<{ peer: Peer; addr: string; kind: string }> {
  const sorted = [...w.candidates].sort((a, b) => ORDER[a.kind] - ORDER[b.kind] || b.priority - a.priority);
  const errors: string[] = [];
  for (const c of sorted) {
    const addr = candidateAddr(w.nodeId, c);
    try {
      const peer = await dial(addr, { session: o.session, methods: o.methods, timeoutMs: o.timeoutMs ?? (c.kind === 'relay' ? 10_000 : 3_000), logger: o.logger });
      return { peer, addr, kind: c.kind };
    } catch (e) {
      errors.push(`${c.kind} ${addr}: ${(e as Error).message}`);
    }
  }
  throw new Error(`cannot reach worker ${w.nodeId} (${errors.join('; ') || 'no candidates'})`);
}
