#!/usr/bin/env node
// Bundles the dashboard pages (src/web/client, Preact + the catalogue's markdown and chart libraries) with
// esbuild into dist/webui: app.js (ES module, minified, split so that vega loads only with the first chart),
// app.css, and the chunks. The nodes serve that folder as static files (src/web/dashboard.ts): no CDN, it
// works offline. Run by scripts/build.mjs (`npm run build`, `npm pack`, `npm install` in a checkout) and by
// the dashboard's browser tests; `node scripts/build-web.mjs [outdir]` builds it alone.
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
export const WEB_OUT = `${root}dist/webui`;

/** Builds the bundle into `outdir`; resolves with esbuild's metafile outputs (path -> bytes). */
export async function buildWeb(outdir = WEB_OUT) {
  const esbuild = await import('esbuild');
  rmSync(outdir, { recursive: true, force: true });
  const result = await esbuild.build({
    entryPoints: { app: `${root}src/web/client/main.tsx` },
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022'],
    minify: true,
    sourcemap: false,
    legalComments: 'linked',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    tsconfig: `${root}src/web/client/tsconfig.json`,
    chunkNames: 'chunks/[name]-[hash]',
    metafile: true,
    logLevel: 'warning',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  return Object.fromEntries(Object.entries(result.metafile.outputs).map(([path, o]) => [path, o.bytes]));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const outputs = await buildWeb(process.argv[2] ?? WEB_OUT);
  const total = Object.values(outputs).reduce((a, b) => a + b, 0);
  console.log(`dashboard bundle: ${Object.keys(outputs).length} files, ${(total / 1024).toFixed(0)} KiB`);
}
