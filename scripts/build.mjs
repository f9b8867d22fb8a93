#!/usr/bin/env node
// Compiles src/ to dist/ (tsconfig.build.json: tests, test helpers and fuzzers left out) so that the
// `sharedllm` command starts without compiling TypeScript at every start. Run by `npm run build`, by
// `npm pack` (through `prepare`) and by `npm install` in a checkout; then bundles the dashboard pages into
// dist/webui (scripts/build-web.mjs). Emits without type-checking
// (`npm run typecheck` does that): a build is a transpile, seconds not minutes.
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  // An install without dev dependencies (`npm install --omit=dev` in a checkout): bin/sharedllm.js then runs
  // the sources through tsx, if that is installed; say so rather than fail the install.
  console.error('sharedllm build: typescript is not installed (a dev dependency), dist/ not built');
  process.exit(0);
}
rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--noCheck'], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
if (!existsSync(new URL('../dist/cli/main.js', import.meta.url))) {
  console.error('sharedllm build: dist/cli/main.js missing after tsc');
  process.exit(1);
}
// The dashboard pages (scripts/build-web.mjs): esbuild bundles src/web/client into dist/webui.
const { buildWeb } = await import('./build-web.mjs');
try {
  await buildWeb();
} catch (error) {
  if (error?.code !== 'ERR_MODULE_NOT_FOUND') throw error;
  console.error('sharedllm build: esbuild is not installed (a dev dependency), the dashboard (dist/webui) not built');
}
