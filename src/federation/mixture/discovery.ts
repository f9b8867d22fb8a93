// Lending primaries found in the specialist directory (RFC-0006 2.3, section 12): a serving record that is
// active, for a manifest sharing this primary's tokenizer, signed by another node and carrying `mixtureAddr`
// names a primary that lends its specialists at that address. The record is signed by that node's key, so
// the address is the node's own claim: the link dials it over the authenticated data plane and drops (and
// bans) it when the node that answers in HELLO is not the one that signed the record.
import type { Directory } from '../directory/directory.ts';

export const MIXTURE_DISCOVERY_CONFIG = {
  /** Lending primaries one primary connects to (the first by node id); the rest are left out. */
  maxLenders: 16,
} as const;

/** A primary that lends its specialists: its node id (as its serving records name it) and its address. */
export interface Lender {
  nodeId: string;
  addr: string;
  /** The specialists its records name for this tokenizer (its mixture_list may lend more). */
  modelIds: string[];
}

export interface LenderQuery {
  /** This node: its own records are not a lender. */
  selfId: string;
  /** The base model's tokenizer hash (RFC-0006 2.4): only specialists a mixture here can combine. */
  tokenizerHash: string;
  maxLenders?: number;
}

/** The lenders this directory names now, one per node (its newest record's address), sorted by node id. */
export function lendersIn(directory: Pick<Directory, 'views'>, q: LenderQuery): Lender[] {
  const byNode = new Map<string, Lender & { issuedAt: number }>();
  for (const view of directory.views()) {
    if (view.status !== 'active' || view.manifest?.tokenizerHash !== q.tokenizerHash) continue;
    for (const record of view.servedBy) {
      if (!record.serving || record.mixtureAddr === undefined || record.nodeId === q.selfId) continue;
      const known = byNode.get(record.nodeId);
      if (known === undefined) byNode.set(record.nodeId, { nodeId: record.nodeId, addr: record.mixtureAddr, modelIds: [record.modelId], issuedAt: record.issuedAt });
      else {
        known.modelIds.push(record.modelId);
        if (record.issuedAt > known.issuedAt) Object.assign(known, { addr: record.mixtureAddr, issuedAt: record.issuedAt });
      }
    }
  }
  return [...byNode.values()]
    .sort((x, y) => (x.nodeId < y.nodeId ? -1 : x.nodeId > y.nodeId ? 1 : 0))
    .slice(0, q.maxLenders ?? MIXTURE_DISCOVERY_CONFIG.maxLenders)
    .map(({ nodeId, addr, modelIds }) => ({ nodeId, addr, modelIds: modelIds.sort() }));
}
