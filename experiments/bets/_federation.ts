// A federation of real processes for bets: a coordinator, N workers and a primary, started with the cluster
// launcher (src/cli/cluster.ts). With `wan: true` every worker sits behind its own link emulator: the worker
// advertises only a WAN candidate (--wan-addr = the emulator's address), so the primary and the other
// workers reach it through the emulator, and the bet can reshape, stall or cut each link at run time.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { z } from 'zod';
import { Cluster, type PrimaryHandle, ROOT, type WorkerHandle } from '../../src/cli/cluster.ts';
import { type LinkEmulator, type WanShape, startLinkEmulator } from '../../src/federation/transport/link-emulator.ts';

export interface FederationSpec {
  model: string;
  workers: number;
  wan: boolean;
  /** Sequences the primary runs at once (--parallel). */
  parallel: number;
  ctxSize: number;
  /** Seed of the emulators' jitter. */
  seed: number;
}

export interface BetFederation {
  cluster: Cluster;
  primary: PrimaryHandle;
  workers: WorkerHandle[];
  /** One per worker, in the same order (empty without `wan`). */
  links: LinkEmulator[];
  /** The data-plane preset flag passed to nodes, if this checkout's CLI has one. */
  networkFlag: string[];
  modelId: string;
  shape(shape: WanShape): void;
  close(): Promise<void>;
}

let networkFlagCache: string[] | undefined;

/**
 * `--network wan` when `sharedllm node` has a --network flag (the data-plane WAN preset), else nothing: the
 * bet then runs with the node's defaults and says so in its notes.
 */
export function wanNetworkFlag(): string[] {
  if (networkFlagCache === undefined) {
    const help = execFileSync(process.execPath, [join(ROOT, 'bin', 'sharedllm.js'), 'node', '--help'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    networkFlagCache = /--network\b/.test(help) ? ['--network', 'wan'] : [];
  }
  return networkFlagCache;
}

export async function startFederation(spec: FederationSpec): Promise<BetFederation> {
  const cluster = new Cluster({ prefix: 'sharedllm-bet-', logLevel: 'warn' });
  const links: LinkEmulator[] = [];
  const networkFlag = spec.wan ? wanNetworkFlag() : [];
  try {
    const coordinator = await cluster.coordinator({ relayPort: 0 });
    const workers: WorkerHandle[] = [];
    for (let i = 0; i < spec.workers; i++) {
      if (spec.wan) {
        // The target is set once the worker has its port; nothing dials the emulator before the primary starts.
        const link = await startLinkEmulator({ target: '127.0.0.1:1', seed: spec.seed * 100 + i });
        links.push(link);
        const worker = await cluster.worker(`w${i + 1}`, { coordinatorUrl: coordinator.url, model: spec.model, extra: ['--wan-addr', link.addr, ...networkFlag] });
        link.setTarget(`127.0.0.1:${worker.port}`);
        workers.push(worker);
      } else {
        workers.push(await cluster.worker(`w${i + 1}`, { coordinatorUrl: coordinator.url, host: '127.0.0.1', model: spec.model }));
      }
    }
    const primary = await cluster.primary('primary', {
      coordinatorUrl: coordinator.url, model: spec.model, waitWorkers: spec.workers, localLayers: 0, parallel: spec.parallel, ctxSize: spec.ctxSize, extra: networkFlag,
    });
    const modelId = spec.model.split('/').pop()!.replace(/\.gguf$/i, '');
    let closing: Promise<void> | undefined;
    return {
      cluster, primary, workers, links, networkFlag, modelId,
      shape: (shape) => links.forEach((l) => l.setShape(shape)),
      // Idempotent: a bet may close a federation early and again in its `finally`.
      close: () => (closing ??= (async () => {
        await cluster.close();
        await Promise.all(links.map((l) => l.close()));
      })()),
    };
  } catch (error) {
    const dump = cluster.dump();
    await cluster.close().catch(() => undefined);
    await Promise.all(links.map((l) => l.close()));
    throw new Error(`${(error as Error).message}\n${dump}`);
  }
}

const TimingSummary = z.object({ steps: z.number(), totalMs: z.number(), localMs: z.number(), workerMs: z.record(z.string(), z.number()), hopsMs: z.number() });
export const FederationStatus = z.object({
  layers: z.number(),
  plan: z.array(z.object({ first: z.number(), last: z.number(), where: z.string() }).loose()),
  recoveries: z.array(z.object({ nodeId: z.string(), ms: z.number(), replacement: z.string() })),
  decodeTimings: TimingSummary.nullish(),
}).loose();
export type FederationStatus = z.infer<typeof FederationStatus>;

/** GET /v1/federation, validated. */
export async function federationStatus(primary: PrimaryHandle): Promise<FederationStatus> {
  const res = await fetch(`${primary.url}/v1/federation`);
  if (!res.ok) throw new Error(`GET /v1/federation: HTTP ${res.status}`);
  return FederationStatus.parse(await res.json());
}
