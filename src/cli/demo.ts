// `sharedllm demo`: a whole federation on this machine in one command: a coordinator, a worker holding half of
// the model's layers, and a primary serving the OpenAI API, as separate processes on free ports; then a chat in
// the terminal through that API. Ctrl-C during an answer stops that answer; Ctrl-C at the prompt (or /exit, or
// Ctrl-D) stops every process it started and removes its temporary folder.
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { type CommandSpec, FLAG_SHAPES, type Parsed, UsageError } from './args.ts';
import { Cluster, ROOT } from './cluster.ts';
import { AnswerInterrupts } from './interrupt.ts';
import { SHUTDOWN, type ShutdownSignal, Shutdown } from './shutdown.ts';

export const DEFAULT_MODEL = join(ROOT, 'models', 'sharedllm-tiny.gguf');

export const spec: CommandSpec = {
  name: 'demo',
  summary: 'Start a coordinator, a worker and a primary on this machine and chat with the model across them.',
  usage: 'sharedllm demo [--model F] [--threads N]',
  flags: {
    model: { type: 'string', arg: 'F', default: 'models/sharedllm-tiny.gguf', help: 'GGUF model to serve (default: SharedLLM-tiny, shipped with the project)' },
    threads: { ...FLAG_SHAPES.threads, default: 1, help: 'CPU threads per node process' },
    'n-predict': { ...FLAG_SHAPES.tokens, short: 'n', default: 200, help: 'most tokens per answer' },
    temp: { type: 'number', min: 0, max: 2, default: 0.7, help: 'temperature; 0 is greedy' },
    prompt: { type: 'string', arg: 'S', help: 'send this one message, print the answer and stop (no interactive chat)' },
    mode: { type: 'string', choices: ['auto', 'chat', 'complete'], default: 'auto', help: "chat uses the model's chat template; complete continues your text (auto: complete for the bundled base model, chat otherwise)" },
  },
  examples: ['sharedllm demo', 'sharedllm demo --model ~/models/TinyLlama-1.1B-Chat.Q4_0.gguf'],
};

/** A model of any size may take a while to load (or stream to the worker) before the API answers. */
const DEMO_READY_TIMEOUT_MS = 120_000;
/** How long past a child's own shutdown deadline (SHUTDOWN.deadlineMs) the demo waits before killing it. */
const DEMO_KILL_MARGIN_MS = 2_000;

export async function run({ flags: f }: Parsed): Promise<number> {
  const model = resolve(f.model === 'models/sharedllm-tiny.gguf' ? DEFAULT_MODEL : (f.model as string));
  if (!existsSync(model)) throw new UsageError(`model not found: ${model}${model === DEFAULT_MODEL ? ' (the bundled SharedLLM-tiny is missing: is this a complete checkout?)' : ''}`, 'demo');
  // Imported here, not above, so that `sharedllm demo --help` starts fast.
  const [{ openModelFile }, { readHParams }] = await Promise.all([import('../model/load.ts'), import('../model/hparams.ts')]);
  const file = openModelFile(model);
  const h = readHParams(file.metadata, model);
  file.dispose();
  // The temp folder's name marks the demo's processes (its test finds them by it).
  // Children in their own process group: a Ctrl-C in the terminal reaches the demo only, which then stops them
  // one by one in order (a second signal straight from the terminal would make a child stop at once).
  // Each child gets its own orderly shutdown's whole deadline before it is killed.
  const cluster = new Cluster({ prefix: 'sharedllm-demo-', logLevel: 'warn', readyTimeoutMs: DEMO_READY_TIMEOUT_MS, detached: true, stopGraceMs: SHUTDOWN.deadlineMs + DEMO_KILL_MARGIN_MS });
  const threads = f.threads as number;
  let stopping = false;
  const stopAll = async () => {
    if (stopping) return;
    stopping = true;
    // Primary first (it tells the coordinator it leaves), then the worker, then the coordinator.
    await cluster.close();
  };
  // Ctrl-C reaches the shutdown only when no answer is streaming (AnswerInterrupts stops the answer first);
  // SIGTERM and SIGHUP (the terminal closed) always do.
  const signals = new EventEmitter();
  const interrupts = new AnswerInterrupts(() => signals.emit('SIGINT', 'SIGINT'));
  const forward = (signal: ShutdownSignal) => () => signals.emit(signal, signal);
  const onTerm = forward('SIGTERM');
  process.on('SIGTERM', onTerm);
  process.on('SIGHUP', onTerm);
  // Every moment is "serving" for the demo: its orderly shutdown stops whatever children it has started so far.
  // Stopping at once (a second signal) kills them: they are in their own process group and would outlive it.
  const shutdown = new Shutdown({
    name: 'sharedllm demo',
    source: signals,
    // Room to stop its three children one tier after the other, each within its own deadline.
    deadlineMs: 3 * (SHUTDOWN.deadlineMs + DEMO_KILL_MARGIN_MS),
    exit: (code) => {
      cluster.kill();
      process.exit(code);
    },
  });
  shutdown.serving();
  void shutdown.requested.then(async () => process.exit(await shutdown.run(stopAll)));
  try {
    process.stderr.write(`Starting a federation on this machine (${h.name}, ${h.nLayer} layers)...\n`);
    const coordinator = await cluster.coordinator({ relayPort: 0 });
    const url = coordinator.url;
    const worker = await cluster.worker('worker', { coordinatorUrl: url, host: '127.0.0.1', threads, gpu: 'auto' });
    const local = Math.floor(h.nLayer / 2);
    const primary = await cluster.primary('primary', { coordinatorUrl: url, model, waitWorkers: 1, localLayers: local, threads, gpu: 'auto', parallel: 2 });
    const api = `${primary.url}/v1`;
    process.stderr.write(`\n  coordinator  ${url}   (nodes: ${url}/v1/nodes)\n  worker       127.0.0.1:${worker.port}, holds layers [${local}, ${h.nLayer})\n  primary      layers [0, ${local}), embeddings and head\n  OpenAI API   ${api}   (curl ${primary.url}/v1/models)\n\n  dashboards (open in a browser)\n    federation ${url}/\n    playground ${primary.url}/\n    catalogue  ${url}/catalogue\n\n`);
    for (const p of cluster.procs) void p.exited.then((e) => !stopping && process.stderr.write(`\n${p.name} stopped unexpectedly (code ${e.code ?? e.signal})\n`));
    const modelId = ((await (await fetch(`${api}/models`)).json()) as { data: { id: string }[] }).data[0]!.id;
    const messages: { role: string; content: string }[] = [];
    const complete = f.mode === 'complete' || (f.mode === 'auto' && model === DEFAULT_MODEL);
    // In a terminal the user's line is already on the screen (readline echoed it): print only the continuation.
    // A --prompt or piped text was never shown, so it is printed once before its continuation.
    const echo = Boolean(f.prompt) || !process.stdin.isTTY;
    const ask = async (text: string) => {
      const signal = interrupts.answering();
      try {
        if (complete) {
          if (echo) process.stdout.write(text);
          await stream(`${api}/completions`, { model: modelId, prompt: text, max_tokens: f['n-predict'], temperature: f.temp, stream: true }, (c) => c.text, signal);
          return;
        }
        messages.push({ role: 'user', content: text });
        const answer = await stream(`${api}/chat/completions`, { model: modelId, messages, max_tokens: f['n-predict'], temperature: f.temp, stream: true }, (c) => c.delta?.content, signal);
        messages.push({ role: 'assistant', content: answer });
      } finally {
        interrupts.answered();
        if (signal.aborted) process.stderr.write('(stopped; Ctrl-C again to leave)\n');
      }
    };
    if (f.prompt) {
      await ask(f.prompt as string);
      return 0;
    }
    process.stderr.write(complete
      ? 'SharedLLM-tiny is a small base model: type the start of a sentence and it continues it (it runs across the primary and the worker). /exit or Ctrl-C stops.\n'
      : 'Chat with the model (it runs across the primary and the worker). /reset starts over, /exit or Ctrl-C stops.\n');
    const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: Boolean(process.stdin.isTTY) });
    interrupts.attach(rl);
    const leave = new AbortController();
    void shutdown.requested.then(() => leave.abort());
    for (;;) {
      let line: string;
      try {
        line = (await rl.question('> ', { signal: leave.signal })).trim();
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
    interrupts.dispose();
    process.off('SIGTERM', onTerm);
    process.off('SIGHUP', onTerm);
  }
}

/** POST a streaming request to the primary's API, print each piece as it arrives; returns the whole text. */
/** A Ctrl-C (`signal`) ends the request: the primary sees the client go and stops generating. */
async function stream(url: string, body: unknown, pick: (choice: { text?: string; delta?: { content?: string } }) => string | undefined, signal: AbortSignal): Promise<string> {
  const answer = { text: '' };
  try {
    await readStream(url, body, pick, signal, answer);
  } catch (error) {
    if (!signal.aborted) throw error;
  }
  process.stdout.write('\n');
  return answer.text; // as far as it got, when stopped
}

async function readStream(url: string, body: unknown, pick: (choice: { text?: string; delta?: { content?: string } }) => string | undefined, signal: AbortSignal, answer: { text: string }): Promise<void> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal });
  if (!res.ok || !res.body) throw new Error(`the API answered ${res.status}: ${await res.text()}`);
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
      answer.text += piece;
      process.stdout.write(piece);
    }
  }
}
