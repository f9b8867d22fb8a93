// The cluster launcher: real `sharedllm` processes (a coordinator, workers, primaries) on loopback, shared by
// `sharedllm demo`, the integration tests (test/integration/harness.ts adds node:test hooks on top) and the
// federation benchmark.
//
// - Each cluster gets a temp folder (data dirs, caches, certificates), removed by close().
// - Each process gets its own cache (SHAREDLLM_CACHE), as on separate machines, and none inherits this
//   shell's join token or API key (a cluster passes its own flags).
// - Readiness comes from the lines the CLI prints on stderr ("coordinator listening on ...", "worker ...
//   serving on port ...", "OpenAI-compatible API on ..."), never from fixed sleeps.
// - Every child is tracked: close() stops them in the order an operator would (primaries and other commands,
//   then workers, then coordinators, so that leaves reach a live coordinator), SIGTERM then SIGKILL after a
//   grace; a child still running when this process exits is SIGKILLed. dump() gives every child's last
//   stderr lines for an error report.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout's root folder (bin/, models/, src/). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(ROOT, 'bin', 'sharedllm.js');

/** Settings of a local cluster, one comment each (the CLI's own defaults apply to every flag not listed). */
export const CLUSTER_DEFAULTS = {
  /** How long a process may take to print its readiness line: generous, CI machines are slow and a primary
   *  loads (or streams to its workers) a whole model first. */
  readyTimeoutMs: 90_000,
  /** Between SIGTERM and SIGKILL when a cluster closes: an orderly shutdown (leave, end streams) fits. */
  stopGraceMs: 5_000,
  /** Output kept per child for error reports (the tail; older output is dropped). */
  keepBytes: 64 << 10,
  /** CPU threads per node: several processes share this machine's cores and must not oversubscribe them. */
  threads: 1,
  /** Nodes compute on the CPU unless asked: the same numbers on every host. */
  gpu: 'off',
  /** Sequences a primary runs at once. */
  parallel: 2,
  /** Seconds a primary waits for --wait-workers before it starts with fewer. */
  waitTimeoutS: 60,
} as const;

/** A TCP port free right now on `host` (the OS picks it; tiny race with other processes, acceptable here). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

// A launching process that dies (uncaught error, a test runner's timeout, Ctrl-C) must not leave nodes running.
const live = new Set<ChildProcess>();
// Temp folders of clusters not closed yet: removed when this process exits, however it exits (a second Ctrl-C,
// a shutdown past its deadline, an uncaught error), so that nothing is left in the system temp folder.
const liveDirs = new Set<string>();
const killLive = () => {
  for (const child of live) child.kill('SIGKILL');
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
};
let exitHook = false;
let signalHook = false;

/**
 * On SIGINT/SIGTERM, SIGKILL every child and exit (130/143). For launchers with no shutdown of their own
 * (tests, benchmarks); the demo stops its cluster in order instead.
 */
export function stopChildrenOnSignals(): void {
  if (signalHook) return;
  signalHook = true;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      killLive();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One child process: `node bin/sharedllm.js <args>`, its output kept for readiness and error reports. */
export class Proc {
  readonly child: ChildProcess;
  readonly exited: Promise<Exit>;
  private err = '';
  private out = '';
  private exit: Exit | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(readonly name: string, args: string[], env: NodeJS.ProcessEnv, private readonly readyTimeoutMs: number = CLUSTER_DEFAULTS.readyTimeoutMs, detached = false) {
    if (!exitHook) {
      exitHook = true;
      process.on('exit', killLive);
    }
    this.child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached });
    live.add(this.child);
    const keep = (s: string) => (s.length > CLUSTER_DEFAULTS.keepBytes ? s.slice(-CLUSTER_DEFAULTS.keepBytes) : s);
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.err = keep(this.err + d);
      for (const w of this.waiters) w();
    });
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.out = keep(this.out + d);
    });
    this.exited = new Promise((res) => {
      this.child.once('exit', (code, signal) => {
        live.delete(this.child);
        this.exit = { code, signal };
        // Let the pipes drain before waiters look at the output one last time.
        setImmediate(() => {
          for (const w of this.waiters) w();
          res(this.exit!);
        });
      });
    });
  }

  get stderr(): string {
    return this.err;
  }

  get stdout(): string {
    return this.out;
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  /** The first stderr match of `re`; rejects (with the stderr) if the process exits first or time runs out. */
  waitFor(re: RegExp, timeoutMs = this.readyTimeoutMs): Promise<RegExpMatchArray> {
    return new Promise((res, reject) => {
      const done = (error?: Error, match?: RegExpMatchArray) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        if (error) reject(error);
        else res(match!);
      };
      const check = () => {
        const match = this.err.match(re);
        if (match) return done(undefined, match);
        if (this.exit) done(new Error(`${this.name} exited (${this.exit.code ?? this.exit.signal}) before printing ${re}:\n${this.tail()}`));
      };
      const timer = setTimeout(() => done(new Error(`${this.name} did not print ${re} within ${timeoutMs} ms:\n${this.tail()}`)), timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /** Send a signal and wait for the exit; SIGKILL after `graceMs` if it is still running. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs: number = CLUSTER_DEFAULTS.stopGraceMs): Promise<Exit> {
    if (this.running) this.child.kill(signal);
    const timer = setTimeout(() => this.running && this.child.kill('SIGKILL'), graceMs);
    const exit = await this.exited;
    clearTimeout(timer);
    return exit;
  }

  tail(lines = 40): string {
    return this.err.split('\n').slice(-lines).join('\n');
  }
}

export interface CoordinatorHandle {
  proc: Proc;
  url: string;
  port: number;
  /** 0 when the relay is off. */
  relayPort: number;
  dataDir: string;
  args: string[];
}

export interface NodeHandle {
  proc: Proc;
  nodeId: string;
}

export interface WorkerHandle extends NodeHandle {
  /** Its data-plane port. */
  port: number;
}

export interface PrimaryHandle extends NodeHandle {
  /** API base, e.g. http://127.0.0.1:8080 (OpenAI clients take `${url}/v1`). */
  url: string;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface ClusterOptions {
  /** Name prefix of the temp folder (default 'sharedllm-cluster-'); it shows in every child's command line. */
  prefix?: string;
  /** See CLUSTER_DEFAULTS. */
  readyTimeoutMs?: number;
  stopGraceMs?: number;
  /** Start children in their own process group, so a terminal's Ctrl-C reaches only the launcher (default false). */
  detached?: boolean;
  /** --log-level of every coordinator and node (default: the CLI's). */
  logLevel?: LogLevel;
}

export interface CoordinatorOptions {
  name?: string;
  /** Default: a free port. */
  port?: number;
  /** Default: a free port; 0 turns the relay off. */
  relayPort?: number;
  joinToken?: string;
  tls?: { cert: string; key: string };
  /** Default: `<cluster dir>/<name>`. */
  dataDir?: string;
  extra?: string[];
}

export interface WorkerOptions {
  coordinatorUrl: string;
  /** A loopback address such as 127.0.0.2: the worker serves and advertises host:port on the LAN. */
  host?: string;
  /** Register at a relay (host:port, or true for the coordinator's), instead of or besides `host`. */
  relay?: string | true;
  /** A local copy of the GGUF: spans load from it instead of streaming from the primary. */
  model?: string;
  joinToken?: string;
  /** The coordinator's certificate, for TLS. */
  ca?: string;
  threads?: number;
  gpu?: 'auto' | 'off';
  extra?: string[];
}

export interface PrimaryOptions {
  coordinatorUrl: string;
  model: string;
  waitWorkers: number;
  joinToken?: string;
  ca?: string;
  threads?: number;
  gpu?: 'auto' | 'off';
  parallel?: number;
  /** Context length per sequence (default: the CLI's, from the model). */
  ctxSize?: number;
  /** Layers the primary keeps for itself (default: the CLI's plan). */
  localLayers?: number;
  waitTimeoutS?: number;
  extra?: string[];
}

/** Stopping order: the lower first (a primary leaves before the workers it uses, all before the coordinator). */
const STOP_TIER = { command: 0, worker: 1, coordinator: 2 } as const;

/** A set of processes sharing one temp folder. */
export class Cluster {
  readonly dir: string;
  readonly procs: Proc[] = [];
  private readonly tiers = new Map<Proc, number>();
  private readonly settings: Required<Omit<ClusterOptions, 'logLevel'>> & Pick<ClusterOptions, 'logLevel'>;
  private closing = false;

  constructor(options: ClusterOptions = {}) {
    this.settings = {
      prefix: options.prefix ?? 'sharedllm-cluster-',
      readyTimeoutMs: options.readyTimeoutMs ?? CLUSTER_DEFAULTS.readyTimeoutMs,
      stopGraceMs: options.stopGraceMs ?? CLUSTER_DEFAULTS.stopGraceMs,
      detached: options.detached ?? false,
      logLevel: options.logLevel,
    };
    this.dir = mkdtempSync(join(tmpdir(), this.settings.prefix));
    liveDirs.add(this.dir);
    if (!exitHook) {
      exitHook = true;
      process.on('exit', killLive);
    }
  }

  /** True once close() began: an exit after that is expected. */
  get stopping(): boolean {
    return this.closing;
  }

  /** Start `sharedllm <args>` with its own cache folder. */
  spawn(name: string, args: string[]): Proc {
    const env: NodeJS.ProcessEnv = { ...process.env, SHAREDLLM_CACHE: join(this.dir, `cache-${name}`) };
    delete env.SHAREDLLM_JOIN_TOKEN;
    delete env.SHAREDLLM_API_KEY;
    const proc = new Proc(name, args, env, this.settings.readyTimeoutMs, this.settings.detached);
    this.procs.push(proc);
    return proc;
  }

  /** Run a command to its end; resolves with its exit and output. */
  async run(name: string, args: string[]): Promise<Exit & { stdout: string; stderr: string }> {
    const proc = this.spawn(name, args);
    const exit = await proc.exited;
    return { ...exit, stdout: proc.stdout, stderr: proc.stderr };
  }

  async coordinator(options: CoordinatorOptions = {}): Promise<CoordinatorHandle> {
    const name = options.name ?? 'coordinator';
    const port = options.port ?? (await freePort());
    const relayPort = options.relayPort ?? (await freePort());
    const dataDir = options.dataDir ?? join(this.dir, name);
    const args = ['coordinator', '--host', '127.0.0.1', '--port', String(port), '--relay-port', String(relayPort), '--data-dir', dataDir, ...this.logArgs()];
    if (options.joinToken) args.push('--join-token', options.joinToken);
    if (options.tls) args.push('--tls-cert', options.tls.cert, '--tls-key', options.tls.key);
    args.push(...(options.extra ?? []));
    const proc = this.spawnAt(STOP_TIER.coordinator, name, args);
    const match = await proc.waitFor(/coordinator listening on (https?:\/\/[^\s,]+)/);
    return { proc, url: match[1]!, port, relayPort, dataDir, args };
  }

  /** Start a coordinator again with the same flags (same port, same data dir), e.g. after stopping it. */
  async startCoordinatorAgain(coordinator: CoordinatorHandle): Promise<CoordinatorHandle> {
    const proc = this.spawnAt(STOP_TIER.coordinator, `${coordinator.proc.name}-again`, coordinator.args);
    await proc.waitFor(/coordinator listening on/);
    return { ...coordinator, proc };
  }

  async worker(name: string, options: WorkerOptions): Promise<WorkerHandle> {
    const port = await freePort(options.host ?? '127.0.0.1');
    const args = [
      'node', '--role', 'worker', '--coordinator-url', options.coordinatorUrl, '--rpc-port', String(port), '--data-dir', join(this.dir, name),
      '--threads', String(options.threads ?? CLUSTER_DEFAULTS.threads), '--gpu', options.gpu ?? CLUSTER_DEFAULTS.gpu, ...this.logArgs(),
    ];
    if (options.host) args.push('--lan-addr', `${options.host}:${port}`);
    if (options.relay) args.push('--relay', ...(options.relay === true ? [] : ['--relay-addr', options.relay]));
    if (options.model) args.push('--model', options.model);
    if (options.joinToken) args.push('--join-token', options.joinToken);
    if (options.ca) args.push('--ca', options.ca);
    args.push(...(options.extra ?? []));
    const proc = this.spawnAt(STOP_TIER.worker, name, args);
    const match = await proc.waitFor(/worker (\S+) serving on port (\d+)/);
    return { proc, nodeId: match[1]!, port };
  }

  async primary(name: string, options: PrimaryOptions): Promise<PrimaryHandle> {
    const apiPort = await freePort();
    const args = [
      'node', '--role', 'primary', '--model', options.model, '--coordinator-url', options.coordinatorUrl, '--api-host', '127.0.0.1', '--api-port', String(apiPort),
      '--data-dir', join(this.dir, name), '--threads', String(options.threads ?? CLUSTER_DEFAULTS.threads), '--gpu', options.gpu ?? CLUSTER_DEFAULTS.gpu,
      '--parallel', String(options.parallel ?? CLUSTER_DEFAULTS.parallel), '--wait-workers', String(options.waitWorkers),
      '--wait-timeout', String(options.waitTimeoutS ?? CLUSTER_DEFAULTS.waitTimeoutS), ...this.logArgs(),
    ];
    if (options.ctxSize !== undefined) args.push('--ctx-size', String(options.ctxSize));
    if (options.localLayers !== undefined) args.push('--local-layers', String(options.localLayers));
    if (options.joinToken) args.push('--join-token', options.joinToken);
    if (options.ca) args.push('--ca', options.ca);
    args.push(...(options.extra ?? []));
    const proc = this.spawnAt(STOP_TIER.command, name, args);
    const id = await proc.waitFor(/primary (\S+): /);
    const match = await proc.waitFor(/OpenAI-compatible API on (\S+)\/v1/);
    return { proc, nodeId: id[1]!, url: match[1]! };
  }

  /** The last lines of every child's stderr. */
  dump(): string {
    return this.procs.map((p) => `----- ${p.name} (${p.running ? 'running' : 'exited'}) -----\n${p.tail()}`).join('\n');
  }

  /** SIGKILL every child now and remove the temp folder (for a launcher that must exit at once). */
  kill(): void {
    this.closing = true;
    for (const p of this.procs) if (p.running) p.child.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
    liveDirs.delete(this.dir);
  }

  /** Stop every child in order (SIGTERM, then SIGKILL after the grace), remove the temp folder. */
  async close(): Promise<void> {
    this.closing = true;
    for (const tier of Object.values(STOP_TIER)) {
      const procs = this.procs.filter((p) => (this.tiers.get(p) ?? STOP_TIER.command) === tier);
      await Promise.all(procs.map((p) => p.stop('SIGTERM', this.settings.stopGraceMs)));
    }
    rmSync(this.dir, { recursive: true, force: true });
    liveDirs.delete(this.dir);
  }

  private spawnAt(tier: number, name: string, args: string[]): Proc {
    const proc = this.spawn(name, args);
    this.tiers.set(proc, tier);
    return proc;
  }

  private logArgs(): string[] {
    // Readable lines: readiness is read from them (see the top of this file).
    return ['--log-format', 'text', ...(this.settings.logLevel === undefined ? [] : ['--log-level', this.settings.logLevel])];
  }
}
