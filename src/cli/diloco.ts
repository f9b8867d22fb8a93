// `sharedllm diloco`: federated training with DiLoCo (Douillard et al. 2023). One machine serves a training
// job (`diloco serve`: holds the global weights, aggregates the participants' deltas, applies the outer
// Nesterov step, evaluates, writes a GGUF and a metrics line per round, checkpoints); volunteers join it
// (`diloco join`: pull the weights, train H inner steps on their own text, push the delta). Everything
// travels over the federation's authenticated data plane; the job is found through the coordinator.
import { existsSync, statSync } from 'node:fs';
import { type CommandSpec, FLAG_SHAPES, type Parsed, UsageError } from './args.ts';
import { expandHome } from './coordinator.ts';
import { LOG_FLAGS, cliLogger, noticeLogger } from './logging.ts';
import { Shutdown } from './shutdown.ts';

export const ACTIONS = ['serve', 'join'] as const;
type Action = (typeof ACTIONS)[number];
/** train/diloco/config.ts's AGGREGATORS and the compressions, listed here so that --help loads no training code. */
export const AGGREGATOR_CHOICES = ['mean', 'median', 'trimmed-mean', 'centered-clip', 'krum'] as const;
export const COMPRESS_CHOICES = ['f16', 'int8', 'f32'] as const;
export const NETWORK_CHOICES = ['lan', 'wan'] as const;

const SERVE_ONLY = ['init', 'rounds', 'inner-steps', 'outer-lr', 'outer-momentum', 'aggregator', 'assumed-byzantine', 'min-replicas', 'round-timeout', 'out', 'compress', 'weights', 'eval-corpus', 'eval-tokens', 'batch', 'lr', 'warmup', 'ctx', 'rpc-port', 'lan-addr', 'keep-every'];
const JOIN_ONLY = ['corpus', 'job'];

export const spec: CommandSpec = {
  name: 'diloco',
  summary: 'Train a model together (DiLoCo): serve a training job, or join one with your own text.',
  usage: [
    'sharedllm diloco serve --init base.gguf --rounds R --inner-steps H --out DIR --coordinator-url URL [--aggregator median] [--min-replicas N]',
    '       sharedllm diloco join --coordinator-url URL --corpus DIR [--job ID] [--threads N]',
  ].join('\n'),
  positionals: ['action'],
  flags: {
    'coordinator-url': { type: 'url', schemes: ['http', 'https'], arg: 'URL', help: 'the federation\'s coordinator, e.g. http://192.168.1.10:8420 (both actions; required)' },
    'join-token': { type: 'string', arg: 'T', help: "the federation's join token, if it has one (env SHAREDLLM_JOIN_TOKEN)" },
    ca: { type: 'string', arg: 'F', help: 'trust this PEM certificate for an https coordinator' },
    'data-dir': { type: 'string', arg: 'D', default: '~/.sharedllm/diloco-<action>', help: "where this node's identity key lives (one per process on a machine)" },
    threads: { ...FLAG_SHAPES.threads, help: 'CPU threads (default: physical cores)' },
    network: { type: 'string', choices: NETWORK_CHOICES, default: 'lan', help: 'timeouts and retries: lan, or wan (participants across the internet)' },
    // serve
    init: { type: 'string', arg: 'F', help: 'serve: the llama GGUF to start from (its tokenizer is the job\'s; required)' },
    out: { type: 'string', arg: 'DIR', help: 'serve: where model.gguf, metrics.jsonl and state.ckpt go; an existing state.ckpt is resumed (required)' },
    rounds: { type: 'number', integer: true, min: 1, max: 1e6, help: 'serve: outer rounds (required)' },
    'inner-steps': { type: 'number', integer: true, min: 1, max: 1e6, unit: 'steps', help: 'serve: H, inner AdamW steps each participant runs per round (required)' },
    'outer-lr': { type: 'number', min: 1e-6, max: 10, default: 0.7, help: 'serve: learning rate of the outer Nesterov step' },
    'outer-momentum': { type: 'number', min: 0, max: 0.999, default: 0.9, help: 'serve: Nesterov momentum of the outer step' },
    aggregator: { type: 'string', choices: AGGREGATOR_CHOICES, default: 'mean', help: 'serve: how deltas combine; median, trimmed-mean, centered-clip and krum resist faulty or hostile participants' },
    'assumed-byzantine': { type: 'number', integer: true, min: 0, max: 1000, default: 0, help: 'serve: f, hostile participants assumed by trimmed-mean (trims f from each end) and krum' },
    'min-replicas': { type: 'number', integer: true, min: 1, max: 10000, default: 1, help: 'serve: deltas a round needs; with fewer by the deadline the round waits another timeout' },
    'round-timeout': { type: 'number', min: 0.1, max: 86400, unit: 'seconds', default: 600, help: 'serve: deadline of a round; participants silent by then are dropped from it' },
    compress: { type: 'string', choices: COMPRESS_CHOICES, default: 'f16', help: 'serve: how deltas travel: f16 (half the bytes), int8 with per-block scales (about a quarter), f32' },
    weights: { type: 'string', choices: COMPRESS_CHOICES, default: 'f32', help: 'serve: how the weights travel to participants: f32 (exact), or f16 / int8 to cut the download (they train from the rounded weights; their deltas stay exact)' },
    'eval-corpus': { type: 'string', multiple: true, arg: 'PATH', help: 'serve: held-out text (folder or .txt) scored after every round: the metrics\' held-out loss and perplexity' },
    'eval-tokens': { ...FLAG_SHAPES.tokens, default: 16384, help: 'serve: held-out tokens scored per round' },
    batch: { type: 'number', integer: true, min: 1, max: 4096, default: 8, help: 'serve: rows per inner step' },
    ctx: { type: 'number', integer: true, min: 2, max: 1 << 16, unit: 'tokens', default: 256, help: 'serve: tokens per row (at most the model\'s context)' },
    lr: { type: 'number', min: 0, max: 10, default: 2e-3, help: 'serve: peak inner AdamW learning rate' },
    warmup: { type: 'number', integer: true, min: 0, unit: 'steps', default: 50, help: 'serve: inner warmup steps (of the job\'s rounds x H)' },
    'rpc-port': { ...FLAG_SHAPES.port, default: 50060, help: 'serve: data-plane port participants connect to (0: any free port)' },
    'lan-addr': { type: 'string', arg: 'IP:PORT', help: "serve: this machine's address participants reach (default 127.0.0.1:<rpc-port>: this machine only)" },
    'keep-every': { type: 'number', integer: true, min: 0, default: 0, unit: 'rounds', help: 'serve: also keep round-NNNN.gguf every N rounds (0: only the latest model.gguf)' },
    // join
    corpus: { type: 'string', multiple: true, arg: 'PATH', help: 'join: your training text, folders or .txt files (required; repeat the flag for more)' },
    job: { type: 'string', arg: 'ID', help: 'join: the job to join (default: the only one at the coordinator)' },
    ...LOG_FLAGS,
  },
  examples: [
    'sharedllm diloco serve --init models/sharedllm-tiny.gguf --rounds 100 --inner-steps 50 --aggregator median --min-replicas 2 --round-timeout 300 --eval-corpus data/heldout --out runs/job1 --coordinator-url http://192.168.1.10:8420 --lan-addr 192.168.1.10:50060',
    'sharedllm diloco join --coordinator-url http://192.168.1.10:8420 --corpus my-texts/ --threads 4',
  ],
};

export async function run({ flags: f, positionals }: Parsed): Promise<number> {
  const action = checkFlags(f, positionals);
  const logger = cliLogger(f, `diloco-${action}`);
  const notices = noticeLogger(f, `diloco-${action}`);
  const joinToken = (f['join-token'] as string | undefined) ?? process.env.SHAREDLLM_JOIN_TOKEN;
  const dataDir = expandHome((f['data-dir'] as string).replace('<action>', action));
  const { lanDilocoNet, wanDilocoNet } = await import('../federation/diloco/config.ts');
  const net = f.network === 'wan' ? wanDilocoNet() : lanDilocoNet();
  const common = {
    coordinatorUrl: f['coordinator-url'] as string, dataDir, net, logger,
    ...(joinToken ? { joinToken } : {}), ...(f.ca ? { coordinatorCa: f.ca as string } : {}), ...(f.threads !== undefined ? { threads: f.threads as number } : {}),
  };
  const shutdown = new Shutdown({ name: `sharedllm diloco ${action}`, write: (message) => notices.info('shutdown', { message }) });
  try {
    if (action === 'join') {
      const { runDilocoParticipant } = await import('../federation/diloco/participant.ts');
      const stop = new AbortController();
      shutdown.serving();
      void shutdown.requested.then(() => stop.abort());
      const r = await runDilocoParticipant({ ...common, corpus: f.corpus as string[], ...(f.job ? { jobId: f.job as string } : {}) }, stop.signal);
      process.stdout.write(`job ${r.jobId}: ${r.rounds.length} rounds trained, ${r.accepted} deltas accepted\n`);
      return 0;
    }
    const { startDilocoServer } = await import('../federation/diloco/server.ts');
    const { defaultDilocoConfig } = await import('../train/diloco/config.ts');
    const { PRESETS } = await import('../train/config.ts');
    const handle = await startDilocoServer({
      ...common,
      init: f.init as string, out: f.out as string, rounds: f.rounds as number, weightsDtype: f.weights as (typeof COMPRESS_CHOICES)[number], minReplicas: f['min-replicas'] as number,
      roundTimeoutMs: 1000 * (f['round-timeout'] as number),
      diloco: {
        ...defaultDilocoConfig(), outer: { lr: f['outer-lr'] as number, momentum: f['outer-momentum'] as number },
        aggregator: f.aggregator as (typeof AGGREGATOR_CHOICES)[number], assumedByzantine: f['assumed-byzantine'] as number, compression: f.compress as (typeof COMPRESS_CHOICES)[number],
      },
      inner: { ...PRESETS.tiny.optim, batch: f.batch as number, lr: f.lr as number, warmup: f.warmup as number, innerSteps: f['inner-steps'] as number, ctx: f.ctx as number },
      ...(f['eval-corpus'] ? { evalCorpus: f['eval-corpus'] as string[] } : {}), evalTokens: f['eval-tokens'] as number, keepEvery: f['keep-every'] as number,
      rpcPort: f['rpc-port'] as number, ...(f['lan-addr'] ? { lanAddr: f['lan-addr'] as string } : {}), ...(f.job ? { jobId: f.job as string } : {}),
    });
    shutdown.serving();
    notices.info('serving', { message: `diloco job ${handle.jobId} serving on port ${handle.port}, from round ${handle.startRound}`, jobId: handle.jobId, port: handle.port });
    const how = await Promise.race([handle.done.then(() => 'done' as const), shutdown.requested.then(() => 'signal' as const)]);
    if (how === 'done') {
      await handle.close();
      process.stdout.write(`job ${handle.jobId} done: ${f.out as string}/model.gguf, metrics in ${f.out as string}/metrics.jsonl\n`);
      return 0;
    }
    return shutdown.run(() => handle.close());
  } finally {
    shutdown.dispose();
  }
}

/** Every flag checked against the action, before any work. */
function checkFlags(f: Parsed['flags'], positionals: string[]): Action {
  const action = positionals[0];
  if (action === undefined || !(ACTIONS as readonly string[]).includes(action)) {
    throw new UsageError(`which action? one of ${ACTIONS.join(', ')}${action === undefined ? '' : ` (got '${action}')`}`, 'diloco');
  }
  const a = action as Action;
  const other = a === 'serve' ? JOIN_ONLY : SERVE_ONLY;
  const defaults = spec.flags;
  for (const k of other) {
    if (f[k] !== undefined && f[k] !== defaults[k]?.default) throw new UsageError(`--${k} is a diloco ${a === 'serve' ? 'join' : 'serve'} option, not one of diloco ${a}`, 'diloco');
  }
  if (f['coordinator-url'] === undefined) throw new UsageError('missing --coordinator-url (the federation\'s coordinator)', 'diloco');
  const need = a === 'serve' ? ['init', 'out', 'rounds', 'inner-steps'] : ['corpus'];
  for (const k of need) if (f[k] === undefined) throw new UsageError(`missing --${k} (${spec.flags[k]!.help.replace(/^\w+: /, '')})`, 'diloco');
  if (f.job !== undefined && !/^[0-9a-f]{16,64}$/.test(f.job as string)) throw new UsageError(`--job needs a job id of 16-64 lowercase hex characters (got '${f.job as string}')`, 'diloco');
  if (a === 'join') {
    for (const p of f.corpus as string[]) if (!existsSync(p)) throw new UsageError(`--corpus ${p} does not exist`, 'diloco');
    return a;
  }
  const init = f.init as string;
  if (!existsSync(init) || !statSync(init).isFile()) throw new UsageError(`--init ${init} is not a file`, 'diloco');
  if (existsSync(f.out as string) && !statSync(f.out as string).isDirectory()) throw new UsageError(`--out ${f.out as string} is a file; give a folder`, 'diloco');
  for (const p of (f['eval-corpus'] as string[] | undefined) ?? []) if (!existsSync(p)) throw new UsageError(`--eval-corpus ${p} does not exist`, 'diloco');
  const fb = f['assumed-byzantine'] as number;
  const min = f['min-replicas'] as number;
  if (f.aggregator === 'trimmed-mean' && !(min > 2 * fb)) throw new UsageError(`--aggregator trimmed-mean trims ${fb} from each end: --min-replicas must be more than ${2 * fb} (got ${min})`, 'diloco');
  if (f.aggregator === 'krum' && !(min >= fb + 3)) throw new UsageError(`--aggregator krum scores against n - f - 2 others: --min-replicas must be at least ${fb + 3} with --assumed-byzantine ${fb} (got ${min})`, 'diloco');
  const lan = f['lan-addr'] as string | undefined;
  if (lan !== undefined && !/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(lan)) throw new UsageError(`--lan-addr needs IP:PORT (got '${lan}')`, 'diloco');
  if (lan !== undefined && f['rpc-port'] !== 0 && !lan.endsWith(`:${f['rpc-port'] as number}`)) throw new UsageError(`--lan-addr ${lan} must end with the --rpc-port ${f['rpc-port'] as number}`, 'diloco');
  return a;
}
