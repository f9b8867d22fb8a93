// `sharedllm demo`: a whole federation on this machine in one command: a coordinator, a worker holding half of
// the model's layers, and a primary serving the OpenAI API, as separate processes on free ports; then a chat in
// the terminal through that API. Ctrl-C (or /exit) stops every process it started.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { fileURLToPath } from 'node:url';
import { type CommandSpec, type Parsed, UsageError } from './args.ts';
import { openModelFile } from '../model/load.ts';
import { readHParams } from '../model/hparams.ts';
import { SHUTDOWN, Shutdown } from './shutdown.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const DEFAULT_MODEL = join(root, 'models', 'sharedllm-tiny.gguf');
/** How long past a child's own shutdown deadline (SHUTDOWN.deadlineMs) the demo waits before killing it. */
const DEMO_KILL_MARGIN_MS = 2_000;

export const spec: CommandSpec = {
  name: 'demo',
  summary: 'Start a coordinator, a worker and a primary on this machine and chat with the model across them.',
  usage: 'sharedllm demo [--model F] [--threads N]',
  flags: {
    model: { type: 'string', arg: 'F', default: 'models/sharedllm-tiny.gguf', help: 'GGUF model to serve (default: SharedLLM-tiny, shipped with the project)' },
    threads: { type: 'number', default: 1, help: 'CPU threads per node process' },
    'n-predict': { type: 'number', short: 'n', default: 200, help: 'most tokens per answer' },
    temp: { type: 'number', default: 0.7, help: 'temperature; 0 is greedy' },
    prompt: { type: 'string', arg: 'S', help: 'send this one message, print the answer and stop (no interactive chat)' },
    mode: { type: 'string', choices: ['auto', 'chat', 'complete'], default: 'auto', help: "chat uses the model's chat template; complete continues your text (auto: complete for the bundled base model, chat otherwise)" },
  },
  examples: ['npx sharedllm demo', 'npx sharedllm demo --model ~/models/TinyLlama-1.1B-Chat.Q4_0.gguf'],
};

function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

interface Child {
  name: string;
  proc: ChildProcess;
  log: string[];
}

/** Spawns a child and adds it to `children` at once (so that a stop while it starts stops it too). */
function start(children: Child[], name: string, args: string[], env: NodeJS.ProcessEnv, ready: RegExp, timeoutMs: number): Promise<{ child: Child; match: RegExpMatchArray }> {
  // Its own process group: a Ctrl-C in the terminal reaches the demo only, which then stops the children one
  // by one in order (a second signal straight from the terminal would make a child stop at once, see shutdown.ts).
  const proc = spawn(process.execPath, [join(root, 'bin', 'sharedllm.js'), ...args], { env, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  const child: Child = { name, proc, log: [] };
  children.push(child);
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`${name} did not start within ${timeoutMs / 1000}s:\n${child.log.slice(-10).join('')}`)), timeoutMs);
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (chunk: string) => {
      child.log.push(chunk);
      if (child.log.length > 200) child.log.shift();
      const m = child.log.join('').match(ready);
      if (m) {
        clearTimeout(timer);
        res({ child, match: m });
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`${name} exited (code ${code}) while starting:\n${child.log.slice(-10).join('')}`));
    });
  });
}

export async function run({ flags: f }: Parsed): Promise<number> {
  const model = resolve(f.model === 'models/sharedllm-tiny.gguf' ? DEFAULT_MODEL : (f.model as string));
  if (!existsSync(model)) throw new UsageError(`model not found: ${model}${model === DEFAULT_MODEL ? ' (the bundled SharedLLM-tiny is missing: is this a complete checkout?)' : ''}`, 'demo');
  const file = openModelFile(model);
  const h = readHParams(file.metadata, model);
  file.dispose();
  const work = mkdtempSync(join(tmpdir(), 'sharedllm-demo-'));
  const env = { ...process.env, SHAREDLLM_CACHE: join(work, 'cache') };
  const threads = String(f.threads);
  const children: Child[] = [];
  let stopping = false;
  const stopAll = async () => {
    stopping = true;
    // Primary first (it tells the coordinator it leaves), then the worker, then the coordinator. Each gets
    // its orderly shutdown's whole deadline before it is killed.
    for (const c of [...children].reverse()) {
      if (c.proc.exitCode !== null || c.proc.signalCode !== null) continue;
      c.proc.kill('SIGTERM');
      await new Promise<void>((r) => {
        const t = setTimeout(() => {
          c.proc.kill('SIGKILL');
          r();
        }, SHUTDOWN.deadlineMs + DEMO_KILL_MARGIN_MS);
        c.proc.once('exit', () => {
          clearTimeout(t);
          r();
        });
      });
    }
    rmSync(work, { recursive: true, force: true });
  };
  // Every moment is "serving" for the demo: its orderly shutdown stops whatever children it has started so far.
  // Stopping at once (a second signal) kills them: they are in their own process group and would outlive it.
  const shutdown = new Shutdown({
    name: 'sharedllm demo',
    // Room to stop its three children one after the other, each within its own deadline.
    deadlineMs: 3 * (SHUTDOWN.deadlineMs + DEMO_KILL_MARGIN_MS),
    exit: (code) => {
      for (const c of children) c.proc.kill('SIGKILL');
      rmSync(work, { recursive: true, force: true });
      process.exit(code);
    },
  });
  shutdown.serving();
  void shutdown.requested.then(async () => process.exit(await shutdown.run(stopAll)));
  const launch = (name: string, args: string[], ready: RegExp, timeoutMs: number) =>
    stopping ? Promise.reject(new Error('the demo is stopping')) : start(children, name, args, env, ready, timeoutMs);
  try {
    const [cport, wport, aport] = [await freePort(), await freePort(), await freePort()];
    process.stderr.write(`Starting a federation on this machine (${h.name}, ${h.nLayer} layers)...\n`);
    const coord = await launch('coordinator', ['coordinator', '--host', '127.0.0.1', '--port', String(cport), '--relay-port', '0', '--data-dir', join(work, 'coordinator'), '--log-level', 'warn'], /coordinator listening on (\S+)/, 30_000);
    const url = coord.match[1]!.replace(/,$/, '');
    const worker = await launch('worker', ['node', '--role', 'worker', '--coordinator-url', url, '--rpc-port', String(wport), '--lan-addr', `127.0.0.1:${wport}`, '--threads', threads, '--data-dir', join(work, 'worker'), '--log-level', 'warn'], /worker \S+ serving/, 60_000);
    const local = Math.floor(h.nLayer / 2);
    const primary = await launch('primary', ['node', '--role', 'primary', '--model', model, '--coordinator-url', url, '--api-host', '127.0.0.1', '--api-port', String(aport), '--wait-workers', '1', '--local-layers', String(local), '--threads', threads, '--parallel', '2', '--data-dir', join(work, 'primary'), '--log-level', 'warn'], /OpenAI-compatible API on (\S+)/, 120_000);
    const api = primary.match[1]!;
    process.stderr.write(`\n  coordinator  ${url}   (nodes: ${url}/v1/nodes)\n  worker       127.0.0.1:${wport}, holds layers ${local}-${h.nLayer - 1}\n  primary      layers 0-${local - 1}, embeddings and head\n  OpenAI API   ${api}   (curl ${api.replace(/\/v1$/, '')}/v1/models)\n\n`);
    for (const c of children) c.proc.once('exit', (code) => !stopping && process.stderr.write(`\n${c.name} stopped unexpectedly (code ${code})\n`));
    const modelId = ((await (await fetch(`${api}/models`)).json()) as { data: { id: string }[] }).data[0]!.id;
    const messages: { role: string; content: string }[] = [];
    const complete = f.mode === 'complete' || (f.mode === 'auto' && model === DEFAULT_MODEL);
    const ask = async (text: string) => {
      if (complete) {
        process.stdout.write(text);
        await stream(`${api}/completions`, { model: modelId, prompt: text, max_tokens: f['n-predict'], temperature: f.temp, stream: true }, (c) => c.text);
        return;
      }
      messages.push({ role: 'user', content: text });
      const answer = await stream(`${api}/chat/completions`, { model: modelId, messages, max_tokens: f['n-predict'], temperature: f.temp, stream: true }, (c) => c.delta?.content);
      messages.push({ role: 'assistant', content: answer });
    };
    if (f.prompt) {
      await ask(f.prompt as string);
      return 0;
    }
    process.stderr.write(complete
      ? 'SharedLLM-tiny is a small base model: type the start of a sentence and it continues it (it runs across the primary and the worker). /exit or Ctrl-C stops.\n'
      : 'Chat with the model (it runs across the primary and the worker). /reset starts over, /exit or Ctrl-C stops.\n');
    const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: Boolean(process.stdin.isTTY) });
    for (;;) {
      let line: string;
      try {
        line = (await rl.question('> ')).trim();
      } catch {
        break;
      }
      if (line === '/exit' || line === '/quit') break;
      if (line === '/reset') {
        messages.length = 0;
        continue;
      }
      if (line) await ask(line);
    }
    rl.close();
    return 0;
  } finally {
    await shutdown.run(stopAll);
    shutdown.dispose();
  }
}

/** POST a streaming request to the primary's API, print each piece as it arrives; returns the whole text. */
async function stream(url: string, body: unknown, pick: (choice: { text?: string; delta?: { content?: string } }) => string | undefined): Promise<string> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok || !res.body) throw new Error(`the API answered ${res.status}: ${await res.text()}`);
  let answer = '';
  let buf = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const data = buf.slice(0, i).replace(/^data: /, '');
      buf = buf.slice(i + 2);
      if (data === '[DONE]') continue;
      const piece = pick((JSON.parse(data) as { choices?: { text?: string; delta?: { content?: string } }[] }).choices?.[0] ?? {}) ?? '';
      answer += piece;
      process.stdout.write(piece);
    }
  }
  process.stdout.write('\n');
  return answer;
}
