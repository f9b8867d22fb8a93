// The dashboard's routes without a browser: the page shell and its security headers, the bundle and the
// catalogue as static files, a clear page when the bundle is not built, and the live stream (first snapshot
// at once, validated by the page's schema).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Router } from '../http/index.ts';
import { startTestListener } from '../http/testing.ts';
import { PAGE_CSP, addDashboardRoutes, isPublicDashboardPath } from './dashboard.ts';
import { primarySnapshot } from './snapshots.ts';
import { PrimarySnapshotSchema } from './wire.ts';

const dir = mkdtempSync(join(tmpdir(), 'sharedllm-web-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function serve(bundleDir: string) {
  const router = new Router();
  router.add('GET', '/health', () => ({ body: { status: 'ok', model: 'm', active: 0, queued: 0, maxConcurrent: 4 } }));
  addDashboardRoutes(router, { home: 'primary', snapshot: primarySnapshot(router), bundleDir });
  return startTestListener(router);
}

test('GET / is the page shell with a strict CSP; the bundle and the catalogue are static files', async () => {
  const bundle = join(dir, 'built');
  mkdirSync(bundle);
  writeFileSync(join(bundle, 'app.js'), 'export {};');
  const server = await serve(bundle);
  try {
    const page = await fetch(`${server.url}/`);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('content-security-policy'), PAGE_CSP);
    assert.doesNotMatch(PAGE_CSP, /script-src[^;]*'unsafe-inline'/, 'no inline script may run');
    const html = await page.text();
    assert.match(html, /<body data-page="primary">/);
    assert.match(html, /<script type="module" src="\/ui\/app.js">/);
    assert.match(await (await fetch(`${server.url}/catalogue`)).text(), /data-page="catalogue"/);
    const js = await fetch(`${server.url}/ui/app.js`);
    assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.equal(await js.text(), 'export {};');
    const summary = await fetch(`${server.url}/ui/bets/SUMMARY.md`);
    assert.equal(summary.status, 200);
    assert.match(await summary.text(), /^# Bets/);
    assert.equal((await fetch(`${server.url}/ui/..%2Fpackage.json`)).status, 400, 'nothing outside the bundle');
  } finally {
    await server.close();
  }
  for (const path of ['/', '/catalogue', '/ui/app.js', '/ui/bets/plots/x.svg']) assert.ok(isPublicDashboardPath(path), path);
  for (const path of ['/v1/dashboard/live', '/v1/models', '/health', '/uix']) assert.ok(!isPublicDashboardPath(path), path);
});

test('without a bundle GET / says how to build one', async () => {
  const server = await serve(join(dir, 'missing'));
  try {
    const html = await (await fetch(`${server.url}/`)).text();
    assert.match(html, /The dashboard is not built/);
    assert.match(html, /npm run build/);
    assert.doesNotMatch(html, /<script/);
  } finally {
    await server.close();
  }
});

test('the live stream sends a snapshot at once, in the shape the page reads', async () => {
  const server = await serve(join(dir, 'missing'));
  const abort = new AbortController();
  try {
    const res = await fetch(`${server.url}/v1/dashboard/live`, { signal: abort.signal });
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('\n\n')) text += new TextDecoder().decode((await reader.read()).value);
    const snapshot = PrimarySnapshotSchema.parse(JSON.parse(text.slice('data: '.length, text.indexOf('\n'))));
    assert.equal(snapshot.federation, null, 'a primary with no federation route');
    assert.equal(snapshot.health?.model, 'm');
  } finally {
    abort.abort();
    await server.close();
  }
});
