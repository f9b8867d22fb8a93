// Bet 15's simulator: N real GossipNodes (src/federation/directory/gossip.ts) with real Directories (signature
// checks, merge rules, MemoryReplica) in one process, joined by GossipNode's own transport seam (`exchange`)
// as a function call that goes through JSON both ways (what the data plane sends), with seeded message loss,
// churning nodes, a liar that adds forged entries to its answers, and a simulated clock.
//
// Rounds are synchronous: every live node runs GossipNode.round() once per round, all rounds of a round
// concurrently (Promise.all, in a seeded order each round). A node takes its digest when its round begins;
// it answers others from its state at the moment it is asked, so an entry it received earlier in the same
// round may travel on within that round, as it would on a real network whose nodes' rounds are not aligned.
import { createEphemeralIdentity } from '../../src/federation/identity.ts';
import type { Identity } from '../../src/federation/identity.ts';
import { GossipResponseSchema } from '../../src/federation/protocol-directory.ts';
import type { DirectoryEntry, GossipRequest, GossipResponse, Manifest } from '../../src/federation/protocol-directory.ts';
import { lanDirectoryConfig } from '../../src/federation/directory/config.ts';
import { Directory } from '../../src/federation/directory/directory.ts';
import { GossipNode } from '../../src/federation/directory/gossip.ts';
import { MemoryReplica } from '../../src/federation/directory/memory-replica.ts';
import { makeManifest } from '../../src/federation/directory/testing.ts';
import { mulberry32 } from '../../src/util/random.ts';

export interface SimSetting {
  nodes: number;
  fanout: number;
  /** Probability that one message (a request, or its answer) is lost. */
  loss: number;
  /** Fraction of nodes (not the origin, not the liar) that go down and come back during the run. */
  churn: number;
}

/** How churning nodes move, and what else a run holds. */
export const SIM_CONFIG = {
  /** A churning node that is up goes down at the start of a round with this probability ... */
  churnDownPerRound: 0.2,
  /** ... and one that is down comes back with this one (mean downtime 2 rounds); it keeps its replica (SQLite). */
  churnUpPerRound: 0.5,
  /** Entries every replica already holds (other specialists), so digests have a realistic size. */
  existingEntries: 8,
  /** A run that has not converged after this many times the push bound counts as not converged. */
  capFactor: 4,
  /** Simulated ms per round: lanDirectoryConfig().roundIntervalMs (the rate limiter reads this clock). */
  roundMs: lanDirectoryConfig().roundIntervalMs,
} as const;

/** Pittel's push-gossip bound (one random call per informed node per round): log2 N + ln N rounds. */
export function pushBound(n: number): number {
  return Math.log2(n) + Math.log(n);
}

export interface RunResult {
  /** Rounds until every live node held the entry; the cap when it never did (converged false). */
  rounds: number;
  converged: boolean;
  /** Per round: the fraction of live nodes holding the entry at the round's end. */
  coverage: number[];
  /** Request and answer bytes (JSON) sent per live node per round, over the rounds until convergence. */
  bytesPerNodeRound: number;
  /** Live nodes at the end, and how many of them held the entry (the origin is one of both). */
  liveAtEnd: number;
  holdersAtEnd: number;
  /** Nodes that stored a forged or altered entry (must be 0). */
  forgedAccepted: number;
  /** Entries refused (forgeries from the liar, checked at every node that received them). */
  refused: number;
  /** Simulator CPU time of the run (ms): what the simulation cost, not how long gossip takes. */
  simMs: number;
}

class Lost extends Error {}

interface SimNode {
  id: string;
  directory: Directory;
  gossip: GossipNode;
  up: boolean;
  churns: boolean;
}

/** Fixtures shared by the runs of one seed: publishers and the entries already in every replica. */
export interface SimFixtures {
  publisher: Identity;
  existing: Manifest[];
}

export function makeFixtures(): SimFixtures {
  const publisher = createEphemeralIdentity();
  const other = createEphemeralIdentity();
  const existing = Array.from({ length: SIM_CONFIG.existingEntries }, (_, i) =>
    makeManifest({ modelId: `existing-${i}`, version: 1 + (i % 3), domains: ['code'], description: `specialist ${i} already known` }, i % 2 === 0 ? publisher : other));
  return { publisher, existing };
}

/**
 * One run: a new manifest published at node 0 spreads until every live node holds it or the cap is reached.
 * `gossip: false` is the control: nodes only poll the coordinator, which is down (a peer that never answers).
 */
export async function runOnce(setting: SimSetting, runSeed: number, fixtures: SimFixtures, options: { gossip?: boolean } = {}): Promise<RunResult> {
  const t0 = performance.now();
  const random = mulberry32(runSeed);
  const config = { ...lanDirectoryConfig(), fanout: setting.fanout };
  let clock = 1_700_000_000_000;
  const now = () => clock;
  const nodes: SimNode[] = [];
  const byId = new Map<string, SimNode>();
  let bytes = 0;
  const liar = setting.nodes > 2 ? 1 : -1;
  const manifest = makeManifest({ modelId: 'new-specialist', version: 1, description: 'published during the run' }, fixtures.publisher);
  const forged: DirectoryEntry[] = [
    { ...manifest, version: 2, contentHash: `sha256:${'99'.repeat(32)}` }, // altered: a newer version, the old signature
    { ...makeManifest({ modelId: 'forged-model' }, fixtures.publisher), description: 'altered after signing' },
  ];

  const exchangeFrom = (from: string) => async (peer: string, request: GossipRequest): Promise<GossipResponse> => {
    await Promise.resolve(); // the call leaves the caller's turn, as a network send does
    const target = byId.get(peer);
    const wire = JSON.stringify(request);
    bytes += wire.length;
    if (target === undefined || !target.up) throw new Lost(`${peer} is down`);
    if (random() < setting.loss) throw new Lost('request lost');
    const answer = target.gossip.handle(from, JSON.parse(wire));
    const reply = JSON.stringify(target.id === nodes[liar]?.id ? { ...answer, entries: [...forged, ...answer.entries] } : answer);
    bytes += reply.length;
    if (random() < setting.loss) throw new Lost('answer lost');
    return GossipResponseSchema.parse(JSON.parse(reply));
  };

  for (let i = 0; i < setting.nodes; i++) {
    const id = `n${i}`;
    const directory = new Directory(new MemoryReplica(), config, now);
    for (const entry of fixtures.existing) directory.replica.apply({ put: { entry, source: 'earlier', receivedAt: clock }, remove: [] });
    const node: SimNode = { id, directory, gossip: new GossipNode({ id, directory, exchange: exchangeFrom(id), random, now }), up: true, churns: false };
    nodes.push(node);
    byId.set(id, node);
  }
  // The churning nodes: a seeded choice among all but the origin (0) and the liar.
  const candidates = nodes.slice(2);
  const churners = Math.round(setting.churn * setting.nodes);
  for (let i = 0; i < churners && candidates.length > 0; i++) {
    const j = Math.floor(random() * candidates.length);
    candidates[j]!.churns = true;
    candidates.splice(j, 1);
  }

  const origin = nodes[0]!;
  const published = origin.directory.accept(manifest, 'local');
  if (published.status !== 'stored') throw new Error(`the origin refused the new manifest: ${JSON.stringify(published)}`);
  const hashAt = (node: SimNode) => {
    const entry = node.directory.replica.get(manifest.modelId)?.entry;
    return entry?.kind === 'manifest' ? entry.contentHash : undefined;
  };
  const holds = (node: SimNode) => hashAt(node) === manifest.contentHash;
  const ids = nodes.map((node) => node.id);
  const cap = Math.ceil(SIM_CONFIG.capFactor * pushBound(setting.nodes));
  const coverage: number[] = [];
  let liveNodeRounds = 0;
  let refused = 0;
  let liveAtEnd = 0;
  let holdersAtEnd = 0;
  let rounds = cap;
  let converged = false;
  for (let round = 1; round <= cap; round++) {
    clock += SIM_CONFIG.roundMs;
    for (const node of nodes) {
      if (!node.churns) continue;
      if (node.up && random() < SIM_CONFIG.churnDownPerRound) node.up = false;
      else if (!node.up && random() < SIM_CONFIG.churnUpPerRound) node.up = true;
    }
    const live = nodes.filter((node) => node.up);
    liveNodeRounds += live.length;
    const order = shuffle(live, random);
    const reports = await Promise.all(order.map((node) => node.gossip.round(options.gossip === false ? ['coordinator'] : ids)));
    for (const report of reports) refused += report.refused;
    const holding = live.filter(holds).length;
    liveAtEnd = live.length;
    holdersAtEnd = holding;
    coverage.push(holding / live.length);
    if (holding === live.length) {
      rounds = round;
      converged = true;
      break;
    }
  }
  let forgedAccepted = 0;
  for (const node of nodes) {
    const current = node.directory.replica.get(manifest.modelId)?.entry;
    const altered = current !== undefined && (current.kind !== 'manifest' || current.contentHash !== manifest.contentHash);
    if (node.directory.replica.get('forged-model') !== undefined || altered) forgedAccepted += 1;
  }
  return {
    rounds, converged, coverage, forgedAccepted, liveAtEnd, holdersAtEnd,
    bytesPerNodeRound: bytes / Math.max(1, liveNodeRounds),
    refused,
    simMs: performance.now() - t0,
  };
}

function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** The q-quantile (0..1) of values, nearest-rank: the p99 of 60 runs is the 60th smallest. */
export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/**
 * Serf's published convergence model (hashicorp/serf website/source/assets/javascripts/_simulator.js,
 * convergenceAtRound, drawn at serf.io/docs/internals/simulator.html): the fraction of N nodes reached after
 * x rounds is 1 / (1 + (N + 1) e^(-c N x)), c = (fanout / N) (1 - loss) (1 - failed) / 2. Returns the first
 * whole round at which it reaches `target`.
 */
export function serfModelRounds(n: number, fanout: number, loss: number, failed: number, target: number): number {
  const contact = (fanout / n) * (1 - loss) * (1 - failed) * 0.5;
  for (let x = 0; x < 10_000; x++) {
    if (1 / (1 + (n + 1) * Math.exp(-contact * n * x)) >= target) return x;
  }
  return Number.POSITIVE_INFINITY;
}

export function serfModelCoverage(n: number, fanout: number, loss: number, failed: number, x: number): number {
  const contact = (fanout / n) * (1 - loss) * (1 - failed) * 0.5;
  return 1 / (1 + (n + 1) * Math.exp(-contact * n * x));
}
