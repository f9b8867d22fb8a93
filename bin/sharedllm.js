#!/usr/bin/env node
// The `sharedllm` command. An installed package runs the JavaScript compiled into dist/ (`npm run build`,
// done by `npm pack` and by `npm install` in a checkout). A checkout whose sources are newer than dist/ (or
// that has no dist/) runs the TypeScript sources through tsx instead, so an edit is never hidden by a stale
// build.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const built = join(root, 'dist', 'cli', 'main.js');

/** Newest modification time (ms) of the sources under a folder (tests are not built, so they don't count). */
function newest(dir) {
  let t = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.endsWith('.test.ts')) continue;
    const p = join(dir, entry.name);
    t = Math.max(t, entry.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

function useBuilt() {
  if (process.env.SHAREDLLM_FROM_SOURCE === '1' || !existsSync(built)) return false;
  const src = join(root, 'src');
  // A published package ships dist/ without src/; a checkout has both and uses dist/ only while it is fresh.
  return !existsSync(src) || statSync(built).mtimeMs >= newest(src);
}

let main;
if (useBuilt()) {
  ({ main } = await import('../dist/cli/main.js'));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli/main.ts'));
}
const code = await main(process.argv.slice(2));
// Exit explicitly: native backends may keep threads alive after the work is done.
process.exit(code);
