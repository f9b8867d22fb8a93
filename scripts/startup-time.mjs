#!/usr/bin/env node
// Start time of `sharedllm --help` and of every `sharedllm <command> --help`, against `node -e 0` on the
// same machine: each run N times (default 10) in turn, the median printed in ms with the ratio to node's.
// A measurement, not a test: issue 9 asks for --help within 1.5x of node's own start.
//
// Usage: node scripts/startup-time.mjs [--runs N] [--bin path/to/sharedllm.js] [command ...]
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  options: { runs: { type: 'string', default: '10' }, bin: { type: 'string' } },
  allowPositionals: true,
});
const runs = Number(values.runs);
const bin = values.bin ?? fileURLToPath(new URL('../bin/sharedllm.js', import.meta.url));
const commands = positionals.length > 0 ? positionals
  : ['', 'demo', 'generate', 'chat', 'tokenize', 'inspect', 'train', 'eval', 'coordinator', 'node', 'certs'];

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function once(args) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

// Round robin (node, then each command, N times over) so that a busy moment on a shared machine lands on
// every row alike rather than on one.
const rows = [{ name: 'node -e 0', args: ['-e', '0'] }, ...commands.map((c) => ({ name: `sharedllm ${c ? `${c} ` : ''}--help`, args: [bin, ...(c ? [c] : []), '--help'] }))];
const times = rows.map(() => []);
for (let i = 0; i < runs; i++) rows.forEach((row, j) => times[j].push(once(row.args)));
const base = median(times[0]);
console.log(`CPU: ${cpus()[0]?.model ?? 'unknown'} (${cpus().length} cores), node ${process.version}, ${runs} runs each, medians`);
rows.forEach((row, j) => {
  const t = median(times[j]);
  console.log(`${row.name.padEnd(28)} ${t.toFixed(1).padStart(7)} ms  ${(t / base).toFixed(2)}x`);
});
