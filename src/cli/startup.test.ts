// `sharedllm --help` and `sharedllm <command> --help` load neither node-llama-cpp nor ggml (koffi) nor the
// federation stack: those take most of a second to import, and help must start about as fast as node itself.
// (The start times are measured by `npm run startup-time`, not asserted here.)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';

const bin = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../../bin/sharedllm.js');
const COMMANDS = ['demo', 'generate', 'chat', 'tokenize', 'inspect', 'train', 'eval', 'adapter', 'coordinator', 'node', 'certs', 'diloco', 'users'];
/** Modules that must wait until a command runs. */
const HEAVY = /node_modules\/(node-llama-cpp|@node-llama-cpp|koffi|better-sqlite3|zod)\/|\/federation\/(coordinator|transport|node)\/(?!model-hash|certs)|\/model\/(load|tokenizer|generator)\./;

/** A module hook that prints every resolved URL to stderr (fd 2, from the hooks thread). */
const HOOKS = `data:text/javascript,${encodeURIComponent(`
import { writeSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  writeSync(2, 'resolved ' + r.url + '\\n');
  return r;
}`)}`;
const REGISTER = `data:text/javascript,${encodeURIComponent(`import { register } from 'node:module'; register(${JSON.stringify(HOOKS)});`)}`;

function loadedBy(args: string[]): { code: number | null; modules: string[]; out: string } {
  const r = spawnSync(process.execPath, ['--import', REGISTER, bin, ...args], { encoding: 'utf8', timeout: 60_000 });
  const modules = r.stderr.split('\n').filter((l) => l.startsWith('resolved ')).map((l) => l.slice('resolved '.length));
  return { code: r.status, modules, out: r.stdout };
}

test('--help of the command and of every subcommand loads no heavy module', () => {
  for (const args of [['--help'], ...COMMANDS.map((c) => [c, '--help'])]) {
    const r = loadedBy(args);
    assert.equal(r.code, 0, `${args.join(' ')} exits 0`);
    assert.match(r.out, /Usage: sharedllm/);
    assert.ok(r.modules.some((m) => /cli\/main\.(js|ts)$/.test(m)), `the hook saw the modules of ${args.join(' ')}`);
    const heavy = r.modules.filter((m) => HEAVY.test(m));
    assert.deepEqual(heavy, [], `sharedllm ${args.join(' ')} imports heavy modules before parsing --help`);
  }
});
