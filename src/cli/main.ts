// The `sharedllm` command: one file per subcommand; this one dispatches and owns the error path.
import { pathToFileURL } from 'node:url';
import { type CommandSpec, type Parsed, UsageError, parseCommand, renderHelp } from './args.ts';
import { logFormatFromArgv } from './logging.ts';
import { createLogger } from '../util/log.ts';

interface Command {
  spec: CommandSpec;
  run(p: Parsed): Promise<number>;
}

/** Subcommands, loaded lazily so `sharedllm --help` starts instantly; each imports its heavy modules (ggml,
 *  node-llama-cpp, the federation) inside run(), so that `sharedllm <command> --help` does too. */
const COMMANDS: Record<string, { summary: string; load: () => Promise<Command> }> = {
  demo: { summary: 'a whole federation on this machine, then chat with it (start here)', load: () => import('./demo.ts') },
  generate: { summary: 'continue a prompt with a local model', load: () => import('./generate.ts') },
  chat: { summary: 'chat with a local model in the terminal', load: () => import('./chat.ts') },
  tokenize: { summary: "print a text's token ids (llama.cpp's tokenizer)", load: () => import('./tokenize.ts') },
  inspect: { summary: 'describe a GGUF file', load: () => import('./inspect.ts') },
  train: { summary: 'train a small llama model on a text corpus and export a GGUF', load: () => import('./train.ts') },
  eval: { summary: 'perplexity of a GGUF model on a text file', load: () => import('./eval.ts') },
  adapter: { summary: 'train a per-user adapter (norm gains or LoRA) on your text', load: () => import('./adapter.ts') },
  coordinator: { summary: "run a federation's coordinator (directory of nodes, relay)", load: () => import('./coordinator.ts') },
  node: { summary: 'join a federation as a primary or a worker', load: () => import('./node.ts') },
  certs: { summary: 'make a self-signed TLS pair for a LAN coordinator', load: () => import('./certs.ts') },
  specialist: { summary: 'publish specialist models: make, publish, list and revoke signed manifests', load: () => import('./specialist.ts') },
  diloco: { summary: 'train a model together (DiLoCo): serve a training job, or join one with your own text', load: () => import('./diloco.ts') },
  users: { summary: "a primary's users: add (prints their API key), list, remove (with all their data)", load: () => import('./users.ts') },
};

export function registerCommand(name: string, summary: string, load: () => Promise<Command>): void {
  COMMANDS[name] = { summary, load };
}

function topHelp(): string {
  const w = Math.max(...Object.keys(COMMANDS).map((n) => n.length)) + 2;
  return [
    'sharedllm: pool your own machines into a federation that serves open LLMs.',
    '',
    'Usage: sharedllm <command> [options]      (sharedllm help <command>, or <command> --help, for its options)',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(w)}${c.summary}`),
  ].join('\n');
}

export async function main(argv: readonly string[]): Promise<number> {
  // `sharedllm help <command>` is `sharedllm <command> --help`.
  if (argv[0] === 'help' && argv[1] !== undefined) return main([argv[1], '--help']);
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${topHelp()}\n`);
    return name ? 0 : 1;
  }
  if (name === '--version' || name === '-v') {
    const { version } = await import('../../package.json', { with: { type: 'json' } }).then((m) => m.default);
    process.stdout.write(`${version}\n`);
    return 0;
  }
  const entry = COMMANDS[name];
  if (!entry) {
    process.stderr.write(`sharedllm: unknown command '${name}'. Commands: ${Object.keys(COMMANDS).join(', ')}. Try sharedllm --help\n`);
    return 2;
  }
  const verbose = rest.includes('--verbose');
  let cmd: Command | undefined;
  // A command that logs (coordinator, node) writes its last words in its log format: JSON lines stay JSON.
  const fail = (line: string, stack?: string): void => {
    if (cmd?.spec.flags['log-format'] && logFormatFromArgv(rest) === 'json') {
      createLogger({ format: 'json', base: { component: name } }).error('command_failed', { message: line, ...(stack ? { stack } : {}) });
      return;
    }
    process.stderr.write(`${line}\n`);
    if (stack) process.stderr.write(`${stack}\n`);
  };
  try {
    cmd = await entry.load();
    const parsed = parseCommand(cmd.spec, rest);
    if (parsed.flags.help) {
      process.stdout.write(`${renderHelp(cmd.spec)}\n`);
      return 0;
    }
    return await cmd.run(parsed);
  } catch (e) {
    if (e instanceof UsageError) {
      fail(`sharedllm ${e.command}: ${e.message}. See sharedllm ${e.command} --help`);
      return 2;
    }
    const err = e as Error;
    fail(`sharedllm ${name}: ${err.message}`, verbose ? err.stack : undefined);
    return 1;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
