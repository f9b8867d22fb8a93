// The worker node: listens on the data plane, advertises its RFC-0001 candidates to the coordinator (only
// those it can really serve), keeps its lease with heartbeats (free memory, load), and serves layer spans.
import { networkInterfaces } from 'node:os';
import { getGgml } from '../../ggml/runtime.ts';
import { ModelError } from '../../model/errors.ts';
import { CoordinatorClient } from '../coordinator/client.ts';
import { loadOrCreateIdentity } from '../identity.ts';
import type { NodeLease } from '../coordinator/lease.ts';
import type { Logger } from '../../util/log.ts';
import { softwareVersion } from '../coordinator/version.ts';
import type { Candidate } from '../protocol.ts';
import { parseHostPort } from '../transport/address.ts';
import { type TransportServer, listen } from '../transport/rpc.ts';
import { checkCoordinatorTrust, dataPlaneTls, relayTls } from './coordinator-link.ts';
import { CoordinatorMembership } from './membership.ts';
import { WorkerService } from './worker-service.ts';
import { GossipService, type GossipPeers } from './gossip-service.ts';
import { lanDirectoryConfig } from '../directory/config.ts';
import type { DirectoryConfig } from '../directory/config.ts';
import { defaultWorkerLimits } from './worker-limits.ts';

export interface WorkerOptions {
  coordinatorUrl: string;
  joinToken?: string;
  coordinatorCa?: string;
  /** Data-plane port; bound on every interface unless `bindHost` is given. */
  rpcPort: number;
  bindHost?: string;
  lanAddr?: string;
  wanAddr?: string;
  /** Also be reachable through this relay (host:port), for nodes behind NAT. */
  relayAddr?: string;
  /** Also be reachable through the coordinator's own relay (its port comes from /health). */
  relay?: boolean;
  maxMemoryBytes?: number;
  dataDir: string;
  cacheDir: string;
  modelFiles?: string[];
  threads?: number;
  gpu?: 'auto' | 'off';
  name?: string;
  tls?: { cert: string; key: string };
  /** Specialist directory and its gossip (default lanDirectoryConfig()). */
  directory?: DirectoryConfig;
  /** 'coordinator': no node-to-node gossip, the directory comes from the coordinator only (comparisons). */
  gossipPeers?: GossipPeers;
  logger: Logger;
}

export class CandidateError extends ModelError {}

export interface Worker {
  nodeId: string;
  port: number;
  candidates: Candidate[];
  service: WorkerService;
  /** This node's replica of the specialist directory and its gossip. */
  gossip: GossipService;
  close(): Promise<void>;
}

export async function startWorker(o: WorkerOptions): Promise<Worker> {
  const identity = loadOrCreateIdentity(o.dataDir);
  const nodeId = identity.id;
  const client = new CoordinatorClient({ url: o.coordinatorUrl, ...(o.joinToken ? { joinToken: o.joinToken } : {}), ...(o.coordinatorCa ? { caFile: o.coordinatorCa } : {}) });
  await checkCoordinatorTrust(client);
  const tlsToRelay = relayTls(o.coordinatorUrl, o.coordinatorCa);
  const relayAddr = o.relayAddr ?? (o.relay ? await coordinatorRelay(client, o.coordinatorUrl, o.logger) : undefined);
  const ggml = getGgml({ gpu: o.gpu ?? 'auto', ...(o.threads ? { threads: o.threads } : {}) });
  const limits = defaultWorkerLimits();
  // Who may use this worker: the coordinator's alive members (cached briefly; see membership.ts).
  const membership = new CoordinatorMembership(client, { ttlMs: limits.membershipTtlMs, minRefreshMs: limits.membershipMinRefreshMs, logger: o.logger });
  const service = new WorkerService({
    nodeId, identity, membership, limits, cacheDir: o.cacheDir, logger: o.logger, gpu: o.gpu ?? 'auto',
    ...(o.joinToken ? { joinToken: o.joinToken } : {}),
    dialOptions: { ...(o.joinToken ? { joinToken: o.joinToken } : {}), ...(tlsToRelay ? { relayTls: tlsToRelay } : {}) },
    ...(o.modelFiles ? { modelFiles: o.modelFiles } : {}),
    ...(o.maxMemoryBytes !== undefined ? { maxMemoryBytes: o.maxMemoryBytes } : {}),
    ...(o.threads ? { threads: o.threads } : {}),
  });
  const bindHost = o.bindHost ?? (o.lanAddr ? parseHostPort(o.lanAddr).host : '0.0.0.0');
  // With an https coordinator the data plane uses TLS too (direct connections; relayed ones are TLS to the relay).
  const advertisedHosts = [o.lanAddr, o.wanAddr].filter((a): a is string => Boolean(a)).map((a) => parseHostPort(a).host);
  const tls = o.tls ?? (await dataPlaneTls(o.coordinatorUrl, o.dataDir, advertisedHosts));
  // Every connection proves a member's identity (and the join token) in HELLO before any method runs; relayed
  // connections are adopted by this server and authenticated the same way, end to end.
  // The directory: this node's replica, answered to any member, gossiped with workers, the coordinator and the
  // primaries connected to us (gossip-service.ts says why primaries are reached that way).
  let server: TransportServer | undefined;
  const gossip = new GossipService({
    nodeId, identity, dataDir: o.dataDir, client, config: o.directory ?? lanDirectoryConfig(), logger: o.logger,
    inbound: () => server?.peers() ?? [],
    ...(o.gossipPeers ? { peers: o.gossipPeers } : {}),
    ...(o.joinToken ? { joinToken: o.joinToken } : {}), ...(tlsToRelay ? { relayTls: tlsToRelay } : {}),
  });
  server = await listen({
    host: bindHost, port: o.rpcPort, methods: { ...service.methods(), ...gossip.methods() }, session: nodeId, logger: o.logger,
    auth: service.auth(), limits: service.frameLimits(), ...(tls ? { tls } : {}),
  });
  service.attach(server);

  const candidates: Candidate[] = [];
  if (o.lanAddr) {
    checkServes(o.lanAddr, bindHost, server.port, 'lan');
    candidates.push({ kind: 'lan', addr: o.lanAddr, priority: 100 });
  }
  if (o.wanAddr) candidates.push({ kind: 'wan', addr: o.wanAddr, priority: 50 });
  let relayHandle: { close(): void } | undefined;
  if (relayAddr) {
    const { relayRegister } = await import('../transport/relay.ts');
    relayHandle = await relayRegister({ relayAddr, nodeId, server, ...(o.joinToken ? { token: o.joinToken } : {}), ...(tlsToRelay ? { tls: tlsToRelay } : {}), logger: o.logger });
    candidates.push({ kind: 'relay', addr: relayAddr, priority: 10 });
  }
  if (candidates.length === 0) {
    throw new CandidateError('this worker would not be reachable', '--lan-addr, --wan-addr or --relay', 'none', 'pass --lan-addr <ip>:<rpc-port> (this machine\'s LAN address), or --relay to go through the coordinator');
  }

  let lastBeat = Date.now();
  const lease: NodeLease = client.join({
    identity,
    logger: o.logger,
    registration: {
      nodeId, role: 'worker', name: o.name ?? `worker-${nodeId.slice(0, 6)}`, candidates,
      freeMemoryBytes: service.freeMemoryBytes(), threads: ggml.threads, backend: ggml.backendName,
      models: service.localModelHashes.map((h) => ({ hash: `sha256:${h}`, name: 'local', nLayers: 1 })), version: softwareVersion(),
      ...(tls ? { dataPlaneCert: tls.cert } : {}),
    },
    status: () => {
      const now = Date.now();
      const load = service.takeLoad(now - lastBeat);
      lastBeat = now;
      return { freeMemoryBytes: service.freeMemoryBytes(), load };
    },
  });
  await lease.registered;
  gossip.start();
  o.logger.info('worker ready', { nodeId, port: server.port, candidates: candidates.map((c) => `${c.kind}:${c.addr}`).join(' ') });
  return {
    nodeId,
    port: server.port,
    candidates,
    service,
    gossip,
    async close() {
      await gossip.close();
      await lease.leave().catch(() => undefined);
      relayHandle?.close();
      await server.close();
      service.dispose();
      client.close();
    },
  };
}

/** The coordinator's relay (host:port): the coordinator's host, the port its /health announces. */
async function coordinatorRelay(client: CoordinatorClient, coordinatorUrl: string, logger: Logger): Promise<string> {
  const host = new URL(coordinatorUrl).hostname;
  let relay: { port: number } | undefined;
  try {
    relay = (await client.health()).relay;
  } catch (e) {
    logger.warn('coordinator unreachable; assuming its relay is on the default port 8421', { error: (e as Error).message });
    return `${host}:8421`;
  }
  if (!relay) {
    throw new CandidateError('the coordinator runs no relay', 'a relay port in the coordinator\'s /health', 'none', 'start the coordinator with --relay-port (default 8421, 0 disables it), or pass --relay-addr HOST:PORT');
  }
  return `${host}:${relay.port}`;
}

/** RFC-0001: a node must not advertise what it cannot serve. */
function checkServes(addr: string, bindHost: string, port: number, kind: string): void {
  const { host, port: p } = parseHostPort(addr);
  if (p !== port) throw new CandidateError(`--${kind}-addr port does not match the data-plane port`, String(port), String(p), `use ${host}:${port}`);
  if (bindHost === '0.0.0.0' || bindHost === '::' || bindHost === host) {
    const local = Object.values(networkInterfaces()).flat().map((i) => i?.address);
    // Any loopback address (127.x) is ours; otherwise the host must be one of this machine's addresses.
    if (host.startsWith('127.') || host === 'localhost' || local.includes(host)) return;
  }
  throw new CandidateError(`--${kind}-addr is not an address this machine serves on`, `one of ${Object.values(networkInterfaces()).flat().map((i) => i?.address).filter(Boolean).join(', ')}`, host, 'pass this machine\'s own LAN address');
}
