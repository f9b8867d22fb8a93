// Integration-test harness: real `sharedllm` processes on loopback. Each cluster gets a temp folder (data
// dirs, caches, certificates), every child is tracked and killed in close() (call it from `after`, it runs
// even when a test failed), readiness comes from the lines the CLI prints on stderr (no fixed sleeps), and
// a failing test prints the stderr of every child.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { type TestContext, after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { cachedModel } from '../../src/model/testing/cached-model.ts';
import { SHAPES } from '../../src/model/testing/make-model.ts';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(ROOT, 'bin', 'sharedllm.js');
/** How long a process may take to print its readiness line (generous: CI machines are slow). */
const READY_TIMEOUT_MS = 90_000;
const KEEP_BYTES = 64 << 10;

/**
 * The test model: SmolLM2's widths (960, an awkward hidden size for a pipeline), 4 layers, Q8_0, with an
 * untied output head. With SmolLM2's tied embeddings random weights make greedy decoding repeat the input
 * token forever; an untied random head gives a varied greedy text, so a wrong hidden state would show.
 */
export function testModel(): string {
  return cachedModel({ shape: { ...SHAPES.smollm2, tiedEmbeddings: false }, nLayer: 4, type: 'Q8_0', seed: 1 });
}

/** The API's model id for a GGUF path (the file name without .gguf, as `sharedllm node` names it). */
export function modelId(path: string): string {
  return path.split('/').pop()!.replace(/\.gguf$/i, '');
}

/** A TCP port free right now on `host` (the OS picks it; tiny race with other processes, acceptable here). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolvePort(port));
    });
  });
}

// A test process that dies (uncaught error, runner timeout, Ctrl-C) must not leave nodes running.
const live = new Set<ChildProcess>();
const killLive = () => {
  for (const c of live) c.kill('SIGKILL');
};
process.on('exit', killLive);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killLive();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One child process of the cluster. */
export class Proc {
  readonly child: ChildProcess;
  readonly exited: Promise<Exit>;
  private err = '';
  private out = '';
  private exit: Exit | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(readonly name: string, args: string[], env: NodeJS.ProcessEnv) {
    this.child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(this.child);
    const keep = (s: string) => (s.length > KEEP_BYTES ? s.slice(-KEEP_BYTES) : s);
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
  waitFor(re: RegExp, timeoutMs = READY_TIMEOUT_MS): Promise<RegExpMatchArray> {
    return new Promise((res, reject) => {
      const done = (e?: Error, m?: RegExpMatchArray) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        if (e) reject(e);
        else res(m!);
      };
      const check = () => {
        const m = this.err.match(re);
        if (m) return done(undefined, m);
        if (this.exit) done(new Error(`${this.name} exited (${this.exit.code ?? this.exit.signal}) before printing ${re}:\n${this.tail()}`));
      };
      const timer = setTimeout(() => done(new Error(`${this.name} did not print ${re} within ${timeoutMs} ms:\n${this.tail()}`)), timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /** Send a signal and wait for the exit; SIGKILL after `graceMs` if it is still running. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5_000): Promise<Exit> {
    if (this.running) this.child.kill(signal);
    const timer = setTimeout(() => this.running && this.child.kill('SIGKILL'), graceMs);
    const e = await this.exited;
    clearTimeout(timer);
    return e;
  }

  tail(lines = 40): string {
    return this.err.split('\n').slice(-lines).join('\n');
  }
}

export interface CoordinatorHandle {
  proc: Proc;
  url: string;
  port: number;
  relayPort: number;
  dataDir: string;
  args: string[];
}

export interface NodeHandle {
  proc: Proc;
  nodeId: string;
}

export interface PrimaryHandle extends NodeHandle {
  /** API base, e.g. http://127.0.0.1:8080 (OpenAI clients take `${url}/v1`). */
  url: string;
}

/** A set of processes sharing one temp folder. */
export class Cluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'sharedllm-it-'));
  readonly procs: Proc[] = [];

  /** Start `sharedllm <args>`; each process gets its own cache (SHAREDLLM_CACHE), as on separate machines. */
  spawn(name: string, args: string[]): Proc {
    const env: NodeJS.ProcessEnv = { ...process.env, SHAREDLLM_CACHE: join(this.dir, `cache-${name}`) };
    delete env.SHAREDLLM_JOIN_TOKEN;
    delete env.SHAREDLLM_API_KEY;
    const p = new Proc(name, args, env);
    this.procs.push(p);
    return p;
  }

  /** Run a command to its end; resolves with its exit and output. */
  async run(name: string, args: string[]): Promise<Exit & { stdout: string; stderr: string }> {
    const p = this.spawn(name, args);
    const e = await p.exited;
    return { ...e, stdout: p.stdout, stderr: p.stderr };
  }

  async coordinator(o: { name?: string; port?: number; relayPort?: number; joinToken?: string; tls?: { cert: string; key: string }; dataDir?: string } = {}): Promise<CoordinatorHandle> {
    const port = o.port ?? (await freePort());
    const relayPort = o.relayPort ?? (await freePort());
    const dataDir = o.dataDir ?? join(this.dir, o.name ?? 'coordinator');
    const args = ['coordinator', '--host', '127.0.0.1', '--port', String(port), '--relay-port', String(relayPort), '--data-dir', dataDir];
    if (o.joinToken) args.push('--join-token', o.joinToken);
    if (o.tls) args.push('--tls-cert', o.tls.cert, '--tls-key', o.tls.key);
    const proc = this.spawn(o.name ?? 'coordinator', args);
    const m = await proc.waitFor(/coordinator listening on (https?:\/\/[^\s,]+)/);
    return { proc, url: m[1]!, port, relayPort, dataDir, args };
  }

  /** Start a coordinator again with the same flags (same port, same data dir), e.g. after stopping it. */
  async startCoordinatorAgain(c: CoordinatorHandle): Promise<CoordinatorHandle> {
    const proc = this.spawn(`${c.proc.name}-again`, c.args);
    await proc.waitFor(/coordinator listening on/);
    return { ...c, proc };
  }

  /**
   * A worker. `host` (a loopback address such as 127.0.0.2) makes it serve and advertise host:port on the
   * LAN; `relay` (host:port, or true for the coordinator's relay) registers it there instead or as well.
   */
  async worker(name: string, o: { coordinatorUrl: string; host?: string; relay?: string | true; joinToken?: string; ca?: string; threads?: number; extra?: string[] }): Promise<NodeHandle & { port: number }> {
    const port = await freePort(o.host ?? '127.0.0.1');
    const args = ['node', '--role', 'worker', '--coordinator-url', o.coordinatorUrl, '--rpc-port', String(port), '--data-dir', join(this.dir, name), '--threads', String(o.threads ?? 1), '--gpu', 'off'];
    if (o.host) args.push('--lan-addr', `${o.host}:${port}`);
    if (o.relay) args.push('--relay', ...(o.relay === true ? [] : ['--relay-addr', o.relay]));
    if (o.joinToken) args.push('--join-token', o.joinToken);
    if (o.ca) args.push('--ca', o.ca);
    args.push(...(o.extra ?? []));
    const proc = this.spawn(name, args);
    const m = await proc.waitFor(/worker (\S+) serving on port (\d+)/);
    return { proc, nodeId: m[1]!, port };
  }

  async primary(name: string, o: { coordinatorUrl: string; model: string; waitWorkers: number; joinToken?: string; ca?: string; parallel?: number; extra?: string[] }): Promise<PrimaryHandle> {
    const apiPort = await freePort();
    const args = [
      'node', '--role', 'primary', '--model', o.model, '--coordinator-url', o.coordinatorUrl, '--api-host', '127.0.0.1', '--api-port', String(apiPort),
      '--data-dir', join(this.dir, name), '--threads', '1', '--gpu', 'off', '--ctx-size', '256', '--parallel', String(o.parallel ?? 2),
      '--wait-workers', String(o.waitWorkers), '--wait-timeout', '60',
    ];
    if (o.joinToken) args.push('--join-token', o.joinToken);
    if (o.ca) args.push('--ca', o.ca);
    args.push(...(o.extra ?? []));
    const proc = this.spawn(name, args);
    const id = await proc.waitFor(/primary (\S+): /);
    const m = await proc.waitFor(/OpenAI-compatible API on (\S+)\/v1/);
    return { proc, nodeId: id[1]!, url: m[1]! };
  }

  /** Greedy text of a single-node run (`sharedllm generate --temp 0`), the reference for pipelines. */
  async referenceText(model: string, prompt: string, nPredict: number): Promise<string> {
    const r = await this.run('generate', ['generate', '--model', model, '--prompt', prompt, '--temp', '0', '-n', String(nPredict), '--threads', '1', '--gpu', 'off', '--ctx-size', '256']);
    if (r.code !== 0) throw new Error(`sharedllm generate failed (${r.code ?? r.signal}):\n${r.stderr}`);
    return r.stdout.replace(/\n$/, '');
  }

  /** The last lines of every child's stderr. */
  dump(): string {
    return this.procs.map((p) => `----- ${p.name} (${p.running ? 'running' : 'exited'}) -----\n${p.tail()}`).join('\n');
  }

  /** Kill every child (SIGTERM, then SIGKILL), remove the temp folder. */
  async close(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.stop('SIGTERM', 3_000)));
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Register `before(setup)` and `after(close)`; a failing setup prints every child's stderr too. */
  setup(fn: () => Promise<void>, timeoutMs = 240_000): void {
    before(() => this.guard('setup', fn, timeoutMs));
    after(() => this.close());
  }

  /** node:test's `test`, printing every child's stderr when the test fails or runs past `timeoutMs`. */
  test(name: string, fn: (t: TestContext) => Promise<void>, timeoutMs = 120_000): void {
    test(name, (t) => this.guard(name, () => fn(t), timeoutMs));
  }

  private async guard(name: string, fn: () => Promise<void>, timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([fn(), new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${name}: still running after ${timeoutMs} ms`)), timeoutMs)))]);
    } catch (e) {
      process.stderr.write(`\n${name} failed; the processes said:\n${this.dump()}\n`);
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** JSON over HTTP(S) with fetch; throws with the body on a non-2xx answer. */
export async function getJson<T = unknown>(url: string, init?: RequestInit): Promise<T> {
  const r = await fetch(url, init);
  const text = await r.text();
  if (!r.ok) throw new Error(`${init?.method ?? 'GET'} ${url}: HTTP ${r.status}: ${text}`);
  return JSON.parse(text) as T;
}

/** POST /v1/completions, greedy; returns the text. */
export async function complete(apiUrl: string, model: string, prompt: string, maxTokens: number): Promise<string> {
  const r = await getJson<{ choices: { text: string }[] }>(`${apiUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, prompt, max_tokens: maxTokens, temperature: 0 }),
  });
  return r.choices[0]!.text;
}

/** Poll `probe` until it returns a value (not undefined); the readiness signal for state held elsewhere. */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
