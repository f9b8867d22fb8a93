// `sharedllm node`: join a federation as a primary (serves users an OpenAI-compatible API from a GGUF model,
// offloading layer spans to workers) or as a worker (holds layer spans for primaries).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { type CommandSpec, FLAG_SHAPES, type Parsed, UsageError } from './args.ts';
import { expandHome } from './coordinator.ts';
import { ProgressBar, formatBytes } from './progress.ts';
import { GPU_MODES } from '../ggml/find.ts';
import { type Logger, spanText } from '../util/log.ts';
import { LOG_FLAGS, cliLogger, noticeLogger } from './logging.ts';
import type { WorkerOptions } from '../federation/node/worker.ts';
import type { ApiServer } from '../api/server.ts';
import type { Adapters } from '../api/adapters/service.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import type { ModelSource, ServedModel } from '../api/models.ts';
import type { LocalSpecialist } from '../federation/node/specialists.ts';
import type { NodeMixture, NodeStack } from '../api/mixture-node.ts';
import type { MixtureLink } from '../federation/mixture/link.ts';
import type { Lender } from '../federation/mixture/discovery.ts';
import type { Specialist } from '../model/mixture/specialist.ts';
import type { GossipPeers } from '../federation/node/gossip-service.ts';
import { SHUTDOWN, Shutdown } from './shutdown.ts';
import { CHAT_TEMPLATE_FLAG, chatTemplateOverride } from './chat-template-flag.ts';
import { checkModelFlags } from './engine.ts';
import { defaultCacheDir } from '../federation/node/model-hash.ts';
import type { Network } from '../federation/node/dataplane-config.ts';

export const ROLES = ['primary', 'worker'] as const;

export const spec: CommandSpec = {
  name: 'node',
  summary: 'Join a federation as a primary (serves the OpenAI API, offloads layers) or a worker (holds layer spans).',
  usage: [
    'sharedllm node --role primary --model <gguf> --coordinator-url http://<ip>:8420 [--api-port 8080]',
    '       sharedllm node --role worker --coordinator-url http://<ip>:8420 --rpc-port 50052 --lan-addr <ip>:50052',
  ].join('\n'),
  flags: {
    role: { type: 'string', choices: ROLES, required: true, help: 'primary serves users; worker holds layers for primaries' },
    'coordinator-url': { type: 'url', schemes: ['http', 'https'], arg: 'URL', required: true, help: "the coordinator, e.g. http://192.168.1.10:8420 (https:// with TLS)" },
    'join-token': { type: 'string', arg: 'T', help: "the federation's join token, if it has one (env SHAREDLLM_JOIN_TOKEN)" },
    ca: { type: 'string', arg: 'F', help: "trust this PEM certificate for an https coordinator (e.g. the one `sharedllm certs` made)" },
    'data-dir': { type: 'string', arg: 'D', default: '~/.sharedllm/<role>-<port>', help: "where this node's identity key lives (a primary's users, adapters and audit log too: docs/privacy.md)" },
    threads: { ...FLAG_SHAPES.threads, help: 'CPU threads (default: physical cores)' },
    cpus: { type: 'string', arg: 'LIST', help: 'pin the compute threads one per core, e.g. 0-3 or 0,2 (for several nodes sharing one machine)' },
    gpu: { type: 'string', choices: GPU_MODES, default: 'auto', help: 'use a GPU backend when installed and present' },
    // primary
    model: { type: 'string', arg: 'F', help: 'primary: the GGUF model to serve; worker: a local copy to load spans from (saves streaming)' },
    specialist: { type: 'string', arg: 'F', multiple: true, help: "primary: also serve this GGUF specialist, whole on this node (repeat for several); its id is its manifest's model id in the directory, else the file name" },
    'api-host': { type: 'string', default: '127.0.0.1', help: 'primary: interface for the OpenAI API (127.0.0.1: this machine only; 0.0.0.0: every interface, then set --api-key, and --api-tls-cert so that it does not travel in clear)' },
    'api-port': { ...FLAG_SHAPES.port, default: 8080, help: 'primary: port of the OpenAI-compatible API' },
    'api-key': { type: 'string', arg: 'K', help: 'primary: require this bearer key from API clients (env SHAREDLLM_API_KEY)' },
    cors: { type: 'string', arg: 'ORIGIN', help: "primary: let web pages from these origins call the API (comma-separated, or '*'); default: no CORS" },
    'api-tls-cert': { type: 'string', arg: 'F', help: 'primary: serve the OpenAI API over HTTPS with this PEM certificate (make a pair with `sharedllm certs`)' },
    'api-tls-key': { type: 'string', arg: 'F', help: 'primary: PEM private key for --api-tls-cert' },
    'chat-template': CHAT_TEMPLATE_FLAG,
    'ctx-size': { ...FLAG_SHAPES.tokens, min: 16, help: "primary: context length per conversation (default: the model's, at most 4096)" },
    parallel: { type: 'number', integer: true, min: 1, max: 256, default: 4, help: 'primary: conversations generated at once' },
    'wait-workers': { type: 'number', integer: true, min: 0, max: 1024, default: 0, help: 'primary: wait for this many workers before planning the layer split' },
    'wait-timeout': { type: 'number', min: 0, max: 86400, unit: 'seconds', default: 30, help: 'primary: seconds to wait for --wait-workers' },
    'local-layers': { type: 'number', integer: true, min: 0, max: 4096, help: 'primary: run exactly this many layers here (default: in proportion to free memory)' },
    'rebalance-interval': { type: 'number', min: 0.1, max: 86400, unit: 'seconds', default: 30, help: 'primary: seconds between tries to move layers it took over from a failed worker back to a worker' },
    // The data plane's timeout/retry/ban preset (src/federation/node/dataplane-config.ts NETWORKS; listed here so
    // that `--help` loads no federation code; `satisfies` keeps the two lists in step).
    network: { type: 'string', choices: ['lan', 'wan'] as const satisfies readonly Network[], default: 'lan', help: 'primary: timeouts and bans of calls to workers: lan (fail over within seconds) or wan (workers across the internet)' },
    'verify-rate': { type: 'number', min: 0, max: 1, default: 0.02, help: "primary: fraction of conversations whose workers' results it re-computes from its own model file and compares (0: off)" },
    // worker
    'rpc-port': { ...FLAG_SHAPES.port, default: 50052, help: 'worker: data-plane port' },
    'lan-addr': { type: 'string', arg: 'IP:PORT', help: "worker: this machine's LAN address for the data plane" },
    'wan-addr': { type: 'string', arg: 'HOST:PORT', help: 'worker: a public address forwarded to the data-plane port' },
    relay: { type: 'boolean', default: false, help: "worker: also be reachable through the coordinator's relay (behind NAT)" },
    'relay-addr': { type: 'string', arg: 'HOST:PORT', help: "worker: the relay to use (default with --relay: the coordinator's, its port from the coordinator)" },
    'max-memory': { type: 'bytes', arg: 'SIZE', help: 'cap memory for layers, e.g. 8GiB' },
    'mixture-k': { type: 'number', integer: true, min: 1, max: 64, default: 3, help: "primary: specialists the model 'mixture' keeps per prompt (the router's top k)" },
    'mixture-listen': { type: 'string', arg: 'HOST:PORT', help: "primary: lend this node's specialists to other primaries' mixtures on this data-plane address (its serving records advertise it; without it the node lends nothing)" },
    'mixture-advertise': { type: 'string', arg: 'HOST:PORT', help: 'primary: the address its serving records give other primaries for --mixture-listen (default: that address; needed when it listens on 0.0.0.0 or behind a forwarded port)' },
    'mixture-peer': { type: 'string', arg: 'HOST:PORT', multiple: true, help: "primary: also mix the specialists another primary lends at this address, whatever the directory says (lenders are otherwise found in the directory; repeat for several)" },
    'mixture-stack': { type: 'string', choices: ['auto', 'off'], default: 'auto', help: "primary: auto also loads the --specialist models of one shape as one stacked model, so that 'mixture' steps them in one graph a token (memory: their weights once more); off steps them apart" },
    'attribution-retention': { type: 'number', min: 0, max: 8760, unit: 'hours', default: 24, help: 'primary: hours a mixture answer\'s attribution trail is kept (GET /v1/attributions/{id})' },
    // GOSSIP_PEERS of src/federation/node/gossip-service.ts (listed here so that --help loads no federation code).
    'gossip-peers': { type: 'string', choices: ['all', 'coordinator'] as const satisfies readonly GossipPeers[], default: 'all', help: 'specialist-directory gossip with every node (all) or with the coordinator only (coordinator: a baseline for comparisons; the directory then stops while the coordinator is down)' },
    'gossip-interval': { type: 'number', min: 0.01, max: 3600, unit: 'seconds', default: 1, help: 'seconds between rounds of specialist-directory gossip with a few random peers (the per-peer rate limit scales with it)' },
    ...LOG_FLAGS,
  },
  examples: [
    'sharedllm node --role worker --coordinator-url http://192.168.1.10:8420 --rpc-port 50052 --lan-addr 192.168.1.11:50052',
    'sharedllm node --role primary --model models/sharedllm-tiny.gguf --coordinator-url http://192.168.1.10:8420 --wait-workers 1',
    'sharedllm node --role primary --model base.gguf --specialist code.gguf --specialist es.gguf --coordinator-url http://192.168.1.10:8420',
  ],
};

export async function run({ flags: f }: Parsed): Promise<number> {
  const role = f.role as (typeof ROLES)[number];
  const logger = cliLogger(f, role);
  const notices = noticeLogger(f, role);
  const joinToken = (f['join-token'] as string | undefined) ?? process.env.SHAREDLLM_JOIN_TOKEN;
  const portTag = role === 'primary' ? f['api-port'] : f['rpc-port'];
  const dataDir = expandHome((f['data-dir'] as string).replace('<role>-<port>', `${role}-${portTag}`));
  if (f.cpus !== undefined) {
    const { getGgml } = await import('../ggml/runtime.ts');
    getGgml({ gpu: f.gpu as 'auto' | 'off', ...(f.threads !== undefined ? { threads: f.threads as number } : {}), cpus: parseCpuList(f.cpus as string) });
  }
  const { lanDirectoryConfig, withRoundInterval } = await import('../federation/directory/config.ts');
  const common = {
    directory: withRoundInterval(lanDirectoryConfig(), (f['gossip-interval'] as number) * 1000), gossipPeers: f['gossip-peers'] as GossipPeers,
    coordinatorUrl: f['coordinator-url'] as string, dataDir, cacheDir: defaultCacheDir(), logger, gpu: f.gpu as 'auto' | 'off',
    ...(joinToken ? { joinToken } : {}), ...(f.ca ? { coordinatorCa: f.ca as string } : {}),
    ...(f.threads !== undefined ? { threads: f.threads as number } : {}),
    ...(f['max-memory'] !== undefined ? { maxMemoryBytes: f['max-memory'] as number } : {}),
  };
  // A signal while starting stops at once (nothing to hand back yet); once serving, the first one runs the
  // orderly shutdown and a second one stops at once (shutdown.ts).
  const shutdown = new Shutdown({ name: `sharedllm node (${role})`, write: (message) => notices.info('shutdown', { message }) });
  try {
    return role === 'worker' ? await runWorker(f, common, notices, shutdown) : await runPrimary(f, common, logger, notices, shutdown);
  } finally {
    shutdown.dispose();
  }
}

/** What both roles take from the flags (the coordinator, identity, caches, compute). */
type CommonOptions = Pick<WorkerOptions, 'directory' | 'gossipPeers' | 'coordinatorUrl' | 'dataDir' | 'cacheDir' | 'logger' | 'gpu' | 'joinToken' | 'coordinatorCa' | 'threads' | 'maxMemoryBytes'>;

/** Serves the data plane until a signal; then leaves the coordinator and closes the port. */
async function runWorker(f: Parsed['flags'], common: CommonOptions, notices: Logger, shutdown: Shutdown): Promise<number> {
  if (f.model) await checkModelFlags('node', f.model as string, undefined);
  const { startWorker } = await import('../federation/node/worker.ts');
  const worker = await startWorker({
    ...common, rpcPort: f['rpc-port'] as number,
    ...(f['lan-addr'] ? { lanAddr: f['lan-addr'] as string } : {}), ...(f['wan-addr'] ? { wanAddr: f['wan-addr'] as string } : {}),
    ...(f['relay-addr'] ? { relayAddr: f['relay-addr'] as string } : {}), ...(f.relay ? { relay: true } : {}), ...(f.model ? { modelFiles: [f.model as string] } : {}),
  });
  shutdown.serving();
  notices.info('serving', {
    message: `worker ${worker.nodeId} serving on port ${worker.port} (${worker.candidates.map((c) => `${c.kind} ${c.addr}`).join(', ')})`,
    nodeId: worker.nodeId, port: worker.port,
  });
  await shutdown.requested;
  return shutdown.run(() => worker.close());
}

/**
 * Serves the OpenAI API until a signal; then refuses new requests (503) while the ones in flight finish
 * (at most SHUTDOWN.drainMs, then streams end with an error frame), closes the API, leaves the coordinator.
 */
async function runPrimary(f: Parsed['flags'], common: CommonOptions, logger: Logger, notices: Logger, shutdown: Shutdown): Promise<number> {
  if (!f.model) throw new UsageError('a primary needs --model <file.gguf>', 'node');
  const verifyRate = f['verify-rate'] as number;
  if (!(verifyRate >= 0 && verifyRate <= 1)) throw new UsageError(`--verify-rate must be between 0 and 1, got ${verifyRate}`, 'node');
  const { parseCorsOrigins } = await import('../api/cors.ts');
  let corsOrigins: string[] = [];
  try {
    if (f.cors !== undefined) corsOrigins = parseCorsOrigins(f.cors as string);
  } catch (error) {
    throw new UsageError((error as Error).message, 'node');
  }
  // Everything the flags name is checked before the node joins: the model, the context, the template, TLS.
  await checkModelFlags('node', f.model as string, f['ctx-size'] as number | undefined);
  const specialists = await checkSpecialistFlags(f.model as string, (f.specialist as string[] | undefined) ?? []);
  await checkMixtureLinkFlags(f);
  const chatTemplate = await chatTemplateOverride('node', f['chat-template'] as string | undefined);
  const tls = readApiTls(f);
  const { startPrimary } = await import('../federation/node/primary.ts');
  const { createApiServer } = await import('../api/server.ts');
  const { Generator } = await import('../model/generator.ts');
  const { Tokenizer } = await import('../model/tokenizer.ts');
  const modelId = (f.model as string).split('/').pop()!.replace(/\.gguf$/i, '');
  const apiKey = (f['api-key'] as string | undefined) ?? process.env.SHAREDLLM_API_KEY;
  const bars = new Map<string, ProgressBar>();
  const primary = await startPrimary({
    ...common, model: f.model as string, specialists, nSeqMax: f.parallel as number,
    waitWorkers: f['wait-workers'] as number, waitMs: (f['wait-timeout'] as number) * 1000, rebalanceMs: (f['rebalance-interval'] as number) * 1000,
    dataPlane: (await import('../federation/node/dataplane-config.ts')).dataPlaneFor(f.network as Network),
    ...(f['ctx-size'] !== undefined ? { nCtx: f['ctx-size'] as number } : {}),
    ...(f['local-layers'] !== undefined ? { localLayers: f['local-layers'] as number } : {}),
    verifyRate,
    onProgress: (what, d, t) => {
      let b = bars.get(what);
      if (!b) bars.set(what, (b = new ProgressBar(what)));
      b.update(d, t, `${formatBytes(d)} / ${formatBytes(t)}`);
      if (d >= t) b.finish();
    },
  });
  // Registered from here on: a signal now leaves the federation (the steps below wait for the API to exist).
  shutdown.serving();
  let tokenizer: Tokenizer | undefined;
  let adapters: Adapters | undefined;
  let api: ApiServer;
  let mixture: NodeMixture | undefined;
  let mixtureLink: MixtureLink | undefined;
  let stack: NodeStack | undefined;
  try {
    tokenizer = await Tokenizer.load(f.model as string, chatTemplate === undefined ? {} : { chatTemplate });
    const { addSpecialistRoutes } = await import('../federation/node/specialist-routes.ts');
    const directory = primary.gossip.directory;
    // The specialists, by the id the directory gives them now (specialists.ts): served and listed like the base.
    const toServed = (s: LocalSpecialist, id: string): ServedModel => ({ id, generator: s.generator, tokenizer: s.tokenizer, nCtx: s.nCtx, ownedBy: 'sharedllm-specialist' });
    const specialistModels: ModelSource = {
      list: () => primary.specialists.served(directory).map(({ id, specialist }) => toServed(specialist, id)),
      resolve: (name) => {
        const found = primary.specialists.resolve(directory, name);
        return found === undefined ? undefined : toServed(found, name);
      },
    };
    const generator = new Generator(primary.batcher, tokenizer);
    // Users, their adapters (consent, training jobs, `<model>@<adapter>`), audit: src/api/adapters/.
    const [{ openAdapters }, { trainAdapterEngine }] = await Promise.all([import('../api/adapters/service.ts'), import('../api/adapters/engine-train.ts')]);
    const engine = trainAdapterEngine({ modelPath: f.model as string, tokenizer, ...(common.threads === undefined ? {} : { threads: common.threads }) });
    adapters = openAdapters({ dataDir: common.dataDir, engine, base: { id: modelId, generator, tokenizer, nCtx: primary.batcher.forward.nCtx }, logger, onUserDeleted: (userId) => mixture?.deleteUser(userId) });
    const userAdapters = adapters;
    const { nodeMixture, stackNodeSpecialists } = await import('../api/mixture-node.ts');
    const stackable = primary.specialists.all.filter((s) => s.sharesBaseTokenizer);
    stack = f['mixture-stack'] === 'auto' ? await stackNodeSpecialists(stackable, { gpu: f.gpu as 'auto' | 'off', ...(common.threads === undefined ? {} : { threads: common.threads }), logger }) : undefined;
    const stacked = stack;
    mixture = nodeMixture({
      ...(stacked ? { stack: stacked.group } : {}),
      remote: () => mixtureLink?.remote() ?? [],
      baseModel: f.model as string, tokenizer, dataDir: common.dataDir, logger, k: f['mixture-k'] as number,
      retentionSeconds: (f['attribution-retention'] as number) * 3600,
      local: () => primary.specialists.served(directory).map(({ id, specialist }) => {
        const stackIndex = stacked?.indexOf(specialist.path);
        return { id, batcher: specialist.generator.batcher, tokenizerHash: specialist.tokenizerHash, ...(stackIndex === undefined ? {} : { stackIndex }) };
      }),
    });
    const { lendersIn } = await import('../federation/mixture/discovery.ts');
    const baseTokenizer = mixture.tokenizerHash;
    mixtureLink = await startMixtureLink(f, common, mixture.local, () => lendersIn(directory, { selfId: primary.nodeId, tokenizerHash: baseTokenizer }));
    // Lending: the serving records carry the address (the next gossip round re-signs them).
    const lendAt = mixtureLendAddress(f, mixtureLink.port);
    if (lendAt !== undefined) primary.specialists.lendAt(lendAt);
    api = await createApiServer({
      generator, tokenizer, modelId, logger, users: userAdapters.users, models: [specialistModels, mixture.source, userAdapters.models],
      host: f['api-host'] as string, port: f['api-port'] as number, maxConcurrent: f.parallel as number, ...(apiKey ? { apiKey } : {}), corsOrigins, ...(tls ? { tls } : {}),
      extraRoutes: (router) => {
        mixture?.routes(router);
        addSpecialistRoutes(router, { directory, logger, served: () => primary.specialists.served(directory).map((s) => s.id) });
        userAdapters.routes(router);
        router.add('GET', '/v1/federation', () => ({
          body: {
            model: modelId, modelHash: primary.modelHash, layers: primary.h.nLayer, plan: primary.plan(), recoveries: primary.pipeline.recoveries,
            // Workers banned right now (failures and malformed results; each ban doubles up to a cap).
            bans: primary.pipeline.banned.list(),
            // Workers checked against the primary's own recomputation (--verify-rate): counts, last incident.
            verification: primary.pipeline.verification ?? null,
            // Medians over the last 256 one-token (decode) steps: where a token's time goes.
            decodeTimings: primary.pipeline.timings.summary((t) => t.tokens === 1),
            // Primaries lending specialists to this one's mixtures (found in the directory or --mixture-peer), and their bans.
            mixture: { lenders: mixtureLink?.linked() ?? [], bans: mixtureLink?.bans.list() ?? [] },
          },
        }));
      },
    });
  } catch (error) {
    await mixtureLink?.close();
    mixture?.close();
    stack?.dispose();
    await adapters?.close();
    await primary.close();
    await tokenizer?.dispose();
    throw error;
  }
  notices.info('plan', { message: `primary ${primary.nodeId}: ${modelId}, layers ${primary.plan().map((p) => `${spanText(p.first, p.last)} on ${p.where}`).join(', ')}`, nodeId: primary.nodeId, model: modelId });
  notices.info('serving', { message: `OpenAI-compatible API on ${api.url}/v1 (try: curl ${api.url}/v1/models)`, url: `${api.url}/v1` });
  await shutdown.requested;
  return shutdown.run(async () => {
    await api.drain(SHUTDOWN.drainMs);
    await mixtureLink?.close();
    mixture?.close();
    stack?.dispose();
    await adapters?.close();
    await primary.close();
    await tokenizer?.dispose();
  });
}

/** Hosts a listener binds to but no other node can dial. */
const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '[::]']);

/**
 * --mixture-listen, --mixture-advertise and --mixture-peer are host:port addresses (checked before any work);
 * --mixture-advertise needs --mixture-listen, and a wildcard listen host needs --mixture-advertise.
 */
async function checkMixtureLinkFlags(f: Parsed['flags']): Promise<void> {
  const { parseHostPort } = await import('../federation/transport/address.ts');
  const listen = f['mixture-listen'] as string | undefined;
  const advertise = f['mixture-advertise'] as string | undefined;
  const named = [['--mixture-listen', listen], ['--mixture-advertise', advertise], ...((f['mixture-peer'] as string[] | undefined) ?? []).map((p) => ['--mixture-peer', p] as const)] as const;
  for (const [flag, value] of named) {
    if (value === undefined) continue;
    try {
      parseHostPort(value);
    } catch (e) {
      throw new UsageError(`${flag} ${value}: ${e instanceof Error ? e.message : String(e)}`, 'node');
    }
  }
  if (advertise !== undefined && listen === undefined) throw new UsageError('--mixture-advertise needs --mixture-listen: it is the address of that listener', 'node');
  if (advertise !== undefined && WILDCARD_HOSTS.has(parseHostPort(advertise).host)) throw new UsageError(`--mixture-advertise ${advertise}: other primaries cannot dial a wildcard host; give this machine's address`, 'node');
  if (listen !== undefined && advertise === undefined && WILDCARD_HOSTS.has(parseHostPort(listen).host)) {
    throw new UsageError(`--mixture-listen ${listen} listens on every interface, which other primaries cannot dial: add --mixture-advertise HOST:PORT with the address they should use`, 'node');
  }
}

/** The address this node's serving records advertise for lending: --mixture-advertise, else the listener's. */
function mixtureLendAddress(f: Parsed['flags'], port: number | undefined): string | undefined {
  const advertise = f['mixture-advertise'] as string | undefined;
  if (advertise !== undefined) return advertise;
  const listen = f['mixture-listen'] as string | undefined;
  if (listen === undefined || port === undefined) return undefined;
  // The port actually bound (--mixture-listen HOST:0 picks one).
  const colon = listen.lastIndexOf(':');
  return `${listen.slice(0, colon)}:${port}`;
}

/**
 * The primary's mixture links to other primaries (federation/mixture/link.ts): it lends on --mixture-listen
 * (opt-in) and borrows from the lenders the directory names (`discover`) and from each --mixture-peer.
 */
async function startMixtureLink(f: Parsed['flags'], common: CommonOptions, local: () => Specialist[], discover: () => readonly Lender[]): Promise<MixtureLink> {
  const listenAt = f['mixture-listen'] as string | undefined;
  const peers = (f['mixture-peer'] as string[] | undefined) ?? [];
  const [{ MixtureLink }, { loadOrCreateIdentity }, { parseHostPort }, { dataPlaneFor }, { CoordinatorClient }, { CoordinatorMembership }, { defaultWorkerLimits }] = await Promise.all([
    import('../federation/mixture/link.ts'), import('../federation/identity.ts'), import('../federation/transport/address.ts'), import('../federation/node/dataplane-config.ts'),
    import('../federation/coordinator/client.ts'), import('../federation/node/membership.ts'), import('../federation/node/worker-limits.ts'),
  ]);
  const identity = loadOrCreateIdentity(common.dataDir);
  // Only alive members of the federation lend to or borrow from this node (the workers' rule).
  const client = new CoordinatorClient({ url: common.coordinatorUrl, ...(common.joinToken ? { joinToken: common.joinToken } : {}), ...(common.coordinatorCa ? { caFile: common.coordinatorCa } : {}) });
  const limits = defaultWorkerLimits();
  const membership = new CoordinatorMembership(client, { ttlMs: limits.membershipTtlMs, minRefreshMs: limits.membershipMinRefreshMs, logger: common.logger });
  return MixtureLink.start({
    membership,
    auth: { identity, nodeId: identity.id, ...(common.joinToken ? { token: common.joinToken } : {}) },
    nodeId: identity.id, peers, discover, local, bans: dataPlaneFor(f.network as Network), logger: common.logger,
    ...(listenAt === undefined ? {} : { listen: parseHostPort(listenAt) }),
  });
}

/**
 * --specialist files, checked before any work: each exists and is a GGUF file, none is given twice (or is the
 * base model), no two share a file name (the name is the id until a manifest names the file). A specialist
 * with another tokenizer than the base is allowed: the node says so in its log when it loads it.
 */
async function checkSpecialistFlags(base: string, files: string[]): Promise<string[]> {
  const { realpathSync } = await import('node:fs');
  const { openModelFile, ModelFileError } = await import('../model/load.ts');
  const seen = new Map<string, string>([[realpathSync(base), `--model ${base}`]]);
  const stems = new Map<string, string>([[base.split('/').pop()!.replace(/\.gguf$/i, ''), base]]);
  for (const file of files) {
    try {
      openModelFile(file).dispose();
    } catch (e) {
      if (e instanceof ModelFileError) throw new UsageError(`${e.message.split(':')[0]}: ${file} (--specialist)`, 'node');
      throw e;
    }
    const real = realpathSync(file);
    const twin = seen.get(real);
    if (twin !== undefined) throw new UsageError(`--specialist ${file} is the same file as ${twin}: name each model once`, 'node');
    seen.set(real, `--specialist ${file}`);
    const stem = file.split('/').pop()!.replace(/\.gguf$/i, '');
    const same = stems.get(stem);
    if (same !== undefined) throw new UsageError(`--specialist ${file} and ${same} have the same file name '${stem}', which is the model id the API serves: rename one`, 'node');
    stems.set(stem, file);
  }
  return files;
}

/** --api-tls-cert and --api-tls-key: both or neither, read before any work. */
function readApiTls(f: Parsed['flags']): { cert: Buffer; key: Buffer } | undefined {
  const certPath = f['api-tls-cert'] as string | undefined;
  const keyPath = f['api-tls-key'] as string | undefined;
  if (certPath === undefined && keyPath === undefined) return undefined;
  if (certPath === undefined || keyPath === undefined) throw new UsageError('--api-tls-cert and --api-tls-key go together', 'node');
  const read = (flag: string, path: string): Buffer => {
    if (!existsSync(path) || statSync(path).isDirectory()) throw new UsageError(`--${flag} ${path}: no such file`, 'node');
    return readFileSync(path);
  };
  return { cert: read('api-tls-cert', certPath), key: read('api-tls-key', keyPath) };
}

/** `0-3,6` -> [0, 1, 2, 3, 6]. */
export function parseCpuList(text: string): number[] {
  const out: number[] = [];
  for (const part of text.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new UsageError(`--cpus: '${part}' is not a core number or range`, 'node');
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a || b - a > 511) throw new UsageError(`--cpus: bad range '${part}'`, 'node');
    for (let c = a; c <= b; c++) out.push(c);
  }
  return out;
}
