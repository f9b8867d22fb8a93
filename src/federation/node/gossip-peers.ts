// Who a node gossips the specialist directory with: the coordinator's node list while the coordinator
// answers, else the last list it gave. The list is kept in `<data-dir>/gossip-peers.json` (written when it
// changes, read at start), so a node restarted while the coordinator is down still knows its peers.
//
// Only nodes that listen on the data plane (workers: they registered candidates) can be dialled; primaries
// have no listener and are reached over the connections they open (GossipService's `inbound`).
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { NodeViewSchema } from '../protocol.ts';
import type { NodeView } from '../protocol.ts';
import type { Logger } from '../../util/log.ts';

export const GOSSIP_PEERS_FILE = 'gossip-peers.json';

const PeersFileSchema = z.object({ savedAt: z.number(), nodes: z.array(NodeViewSchema).max(100_000) });

export class KnownPeers {
  private nodes = new Map<string, NodeView>();
  private lastSaved = '';
  /** Whether the last read of the coordinator's list succeeded. */
  coordinatorUp = false;

  constructor(
    private readonly self: string,
    private readonly fetchNodes: () => Promise<NodeView[]>,
    private readonly logger: Logger,
    /** Where the list is kept (undefined: memory only). */
    private readonly file?: string,
  ) {
    if (file !== undefined) this.load(file);
  }

  static inDataDir(dataDir: string): string {
    return join(dataDir, GOSSIP_PEERS_FILE);
  }

  /** Re-reads the coordinator's list; while it fails, the last list stands. Never throws. */
  async refresh(): Promise<void> {
    try {
      const views = await this.fetchNodes();
      this.nodes = new Map(views.filter((v) => v.nodeId !== this.self && (v.state === 'alive' || v.state === 'suspect')).map((v) => [v.nodeId, v]));
      if (!this.coordinatorUp) this.logger.debug('gossip_peers_from_coordinator', { peers: this.nodes.size });
      this.coordinatorUp = true;
      this.save();
    } catch (error) {
      if (this.coordinatorUp) this.logger.info('gossip_peers_from_memory', { reason: (error as Error).message, peers: this.nodes.size });
      this.coordinatorUp = false;
    }
  }

  /** Nodes that can be dialled (registered at least one candidate address). */
  dialable(): NodeView[] {
    return [...this.nodes.values()].filter((v) => v.candidates.length > 0);
  }

  get(nodeId: string): NodeView | undefined {
    return this.nodes.get(nodeId);
  }

  private load(file: string): void {
    if (!existsSync(file)) return;
    try {
      const parsed = PeersFileSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
      if (!parsed.success) throw new Error('not a peer list');
      this.nodes = new Map(parsed.data.nodes.filter((v) => v.nodeId !== this.self).map((v) => [v.nodeId, v]));
      this.logger.debug('gossip_peers_loaded', { file, peers: this.nodes.size });
    } catch (error) {
      this.logger.warn('gossip peer list unreadable; starting without it', { file, error: (error as Error).message, hint: 'it is rewritten from the coordinator\'s list; delete it to silence this' });
    }
  }

  private save(): void {
    if (this.file === undefined) return;
    const nodes = [...this.nodes.values()].sort((a, b) => a.nodeId.localeCompare(b.nodeId));
    const key = JSON.stringify(nodes.map((v) => [v.nodeId, v.publicKey, v.candidates, v.dataPlaneCert ?? '']));
    if (key === this.lastSaved) return;
    try {
      mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
      const tmp = `${this.file}.tmp`;
      writeFileSync(tmp, `${JSON.stringify({ savedAt: Date.now(), nodes })}\n`, { mode: 0o600 });
      renameSync(tmp, this.file);
      this.lastSaved = key;
    } catch (error) {
      this.logger.warn('could not save the gossip peer list', { file: this.file, error: (error as Error).message });
    }
  }
}
