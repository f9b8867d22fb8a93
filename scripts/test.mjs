#!/usr/bin/env node
// Runs the test suite: every *.test.ts under src/, test/ and experiments/ (the bets' smoke runs) (or those whose path contains one of the
// arguments), through node's test runner with tsx, two files at a time. Node 20 does not expand globs itself.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const passThrough = process.argv.slice(2).filter((a) => a.startsWith('--'));

function find(dir) {
  let out = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out = out.concat(find(p));
    else if (name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out;
}

const files = ['src', 'test', 'experiments'].filter((d) => existsSync(join(root, d))).flatMap((d) => find(join(root, d))).filter((f) => filters.length === 0 || filters.some((x) => f.includes(x))).sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(', ')}`);
  process.exit(1);
}
const concurrency = process.env.TEST_CONCURRENCY ?? '2';
// The tests (and every process they start) get a temp folder of their own: whatever they leave in it is
// reported and fails the run, since tests must leave nothing in the system temp folder. (tsx's compile
// cache, tsx-*, is not the tests' doing.)
const tmp = mkdtempSync(join(tmpdir(), 'sharedllm-test-run-'));
// tsx keeps its compile cache in <temp>/tsx-<uid>: point there, so that runs stay as fast as before.
try {
  const cache = join(tmpdir(), `tsx-${userInfo().uid}`);
  mkdirSync(cache, { recursive: true });
  symlinkSync(cache, join(tmp, `tsx-${userInfo().uid}`));
} catch {
  // no cache shared (e.g. no uid on this platform): tsx compiles afresh
}
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, ...passThrough, ...files], { cwd: root, stdio: 'inherit', env: { ...process.env, TMPDIR: tmp } });
const left = readdirSync(tmp).filter((name) => !name.startsWith('tsx-'));
rmSync(tmp, { recursive: true, force: true });
if (left.length > 0) {
  console.error(`\ntests left these in the temp folder (remove them in an after() hook): ${left.join(', ')}`);
  process.exit(r.status || 1);
}
process.exit(r.status ?? 1);
