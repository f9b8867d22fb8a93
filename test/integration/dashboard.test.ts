// The dashboards in a real browser (headless Chromium through playwright-core) against a live federation of
// three processes (coordinator, worker, primary) running the bundled SharedLLM-tiny: the coordinator page
// lists the nodes, a chat in the playground streams a reply through the pipeline, the catalogue renders
// SUMMARY.md with its plots; the pages fit 360 px and keep network text as text. Features other issues add
// (the mixture, issue 13; adapters, issue 12) are tested here once their routes exist and skipped LOUDLY,
// naming the missing route, until then. Without Chromium every test is skipped loudly with how to install it.
// Screenshots: the folder printed at the start ($SHAREDLLM_SCREENSHOTS to choose it).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type TestContext, after, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { INSTALL_HINT, findChromium, horizontalOverflow, launch, openPage, screenshotDir, shout } from './dashboard-browser.ts';
import { Cluster, type CoordinatorHandle, type PrimaryHandle, ROOT, getJson } from './harness.ts';

const MODEL = join(ROOT, 'models', 'sharedllm-tiny.gguf');
/** Waits in the page (the tests never assert a timing; these only bound a hang). */
const WAIT_MS = 30_000;

type Shares = readonly (readonly [string, number])[];
/** A mixture answer in issue 13's shape (test data, not a measurement): each token with its shares. */
const FIXTURE_ANSWER: readonly (readonly [string, Shares])[] = [
  ['Here', [['prose-en', 0.81], ['code-py', 0.12], ['bible-es', 0.07]]],
  [':', [['prose-en', 0.55], ['code-py', 0.4], ['bible-es', 0.05]]],
  [' def', [['code-py', 0.94], ['prose-en', 0.05], ['bible-es', 0.01]]],
  [' add', [['code-py', 0.88], ['prose-en', 0.1], ['bible-es', 0.02]]],
  ['(a,', [['code-py', 0.9], ['prose-en', 0.08], ['bible-es', 0.02]]],
  [' b):', [['code-py', 0.93], ['prose-en', 0.06], ['bible-es', 0.01]]],
  [' return', [['code-py', 0.86], ['prose-en', 0.12], ['bible-es', 0.02]]],
  [' a + b', [['code-py', 0.79], ['prose-en', 0.18], ['bible-es', 0.03]]],
  ['\n', [['prose-en', 0.5], ['code-py', 0.42], ['bible-es', 0.08]]],
  ['En', [['bible-es', 0.62], ['prose-en', 0.33], ['code-py', 0.05]]],
  [' español', [['bible-es', 0.91], ['prose-en', 0.07], ['code-py', 0.02]]],
  [':', [['bible-es', 0.58], ['prose-en', 0.37], ['code-py', 0.05]]],
  [' devuelve', [['bible-es', 0.84], ['prose-en', 0.1], ['code-py', 0.06]]],
  [' la', [['bible-es', 0.88], ['prose-en', 0.1], ['code-py', 0.02]]],
  [' suma', [['bible-es', 0.8], ['prose-en', 0.12], ['code-py', 0.08]]],
  [' de', [['bible-es', 0.86], ['prose-en', 0.12], ['code-py', 0.02]]],
  [' a', [['bible-es', 0.6], ['code-py', 0.25], ['prose-en', 0.15]]],
  [' y', [['bible-es', 0.83], ['prose-en', 0.14], ['code-py', 0.03]]],
  [' b.', [['bible-es', 0.55], ['code-py', 0.3], ['prose-en', 0.15]]],
];

function attributedStream(tokens: readonly (readonly [string, Shares])[]): string {
  const frames = tokens.map(([content, shares]) => ({
    id: 'chatcmpl-fixture', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content } }],
    sharedllm: { attribution: shares.map(([model, share]) => ({ model, share })) },
  }));
  return `${frames.map((f) => `data: ${JSON.stringify(f)}\n\n`).join('')}data: [DONE]\n\n`;
}

const chromium = findChromium();
// No Chromium, no processes (and no temp folder): every test only says loudly that it was skipped.
const cluster = chromium === undefined ? undefined : new Cluster();
let browser: Browser;
let coordinator: CoordinatorHandle;
let primary: PrimaryHandle;
let shots: string;

if (chromium === undefined || cluster === undefined) {
  shout(['DASHBOARD BROWSER TESTS SKIPPED: no Chromium found.', INSTALL_HINT]);
} else {
  cluster.setup(async () => {
    shots = screenshotDir();
    process.stderr.write(`dashboard screenshots: ${shots}\n`);
    // The bundle the nodes serve (dist/webui), fresh from the sources (esbuild: about a second).
    const buildScript = new URL('../../scripts/build-web.mjs', import.meta.url).href;
    const { buildWeb } = (await import(buildScript)) as { buildWeb: () => Promise<Record<string, number>> };
    const [b] = await Promise.all([launch(chromium), buildWeb()]);
    browser = b;
    coordinator = await cluster.coordinator();
    await cluster.worker('worker', { coordinatorUrl: coordinator.url, host: '127.0.0.1' });
    primary = await cluster.primary('primary', { coordinatorUrl: coordinator.url, model: MODEL, waitWorkers: 1, localLayers: 1 });
  });
  after(() => browser?.close());
}

/** node:test's test, skipped loudly when there is no Chromium. */
function browserTest(name: string, fn: (t: TestContext) => Promise<void>): void {
  if (cluster === undefined) test(name, (t) => t.skip(`SKIPPED, no Chromium: ${INSTALL_HINT}`));
  else cluster.test(name, fn, 90_000);
}

/** Skips loudly: a feature of another issue is not on this node yet. */
function skipMissing(t: TestContext, route: string, issue: string): void {
  const message = `SKIPPED until ${route} exists (${issue}): this test runs by itself once it does`;
  shout([`dashboard: '${t.name}'`, message]);
  t.skip(message);
}

async function shot(page: Page, name: string): Promise<void> {
  const path = join(shots, name);
  await page.evaluate('window.scrollTo(0, 0)'); // the sticky header stays on top of a full-page shot
  await page.screenshot({ path, fullPage: true });
  assert.ok(existsSync(path));
}

browserTest('the coordinator page lists the nodes of a live federation, live, and fits 360 px', async () => {
  const { page, errors } = await openPage(browser);
  await page.goto(coordinator.url);
  const nodes = await getJson<{ nodes: { nodeId: string; name: string; role: string }[] }>(`${coordinator.url}/v1/nodes`);
  await page.locator('.live-live').waitFor({ timeout: WAIT_MS });
  assert.equal(nodes.nodes.length, 2, 'a worker and a primary registered');
  for (const n of nodes.nodes) {
    const row = page.locator(`tr[data-node-id="${n.nodeId}"]`);
    await row.waitFor({ timeout: WAIT_MS });
    assert.match(await row.innerText(), new RegExp(n.role));
    assert.match(await row.innerText(), /alive/);
  }
  // The primary's placement (its heartbeats report it): a segment per span, the worker's named.
  const fed = await getJson<{ plan: { nodeId: string }[] }>(`${primary.url}/v1/federation`);
  await page.locator('#layers .layerbar .seg').nth(fed.plan.length - 1).waitFor({ timeout: WAIT_MS });
  assert.equal(await page.locator('#layers .layerbar .seg').count(), fed.plan.length);
  const worker = nodes.nodes.find((n) => n.role === 'worker')!;
  assert.match(await page.locator('#layers .layerbar-legend').innerText(), new RegExp(worker.name));
  assert.match(await page.locator('#jobs').innerText(), /not available on this node|No training job/);
  // Live: a worker that joins now shows up without a reload (the page's own state survives).
  await page.evaluate('window.sameDocument = true');
  const late = await cluster!.worker('worker-late', { coordinatorUrl: coordinator.url, host: '127.0.0.2' });
  await page.locator(`tr[data-node-id="${late.nodeId}"]`, { hasText: 'alive' }).waitFor({ timeout: WAIT_MS });
  assert.equal(await page.evaluate('window.sameDocument'), true, 'no reload');
  assert.match(await page.locator('.stats').innerText(), /2\s*workers/);
  await shot(page, 'federation.png');
  await page.setViewportSize({ width: 360, height: 780 });
  assert.ok((await horizontalOverflow(page)) <= 0, 'no horizontal scrolling at 360 px');
  await shot(page, 'federation-360.png');
  assert.deepEqual(errors, []);
  await page.context().close();
});

browserTest('a chat in the playground streams a reply through the pipeline, by keyboard alone', async () => {
  const { page, errors } = await openPage(browser);
  await page.goto(primary.url);
  await page.locator('#model option').first().waitFor({ state: 'attached', timeout: WAIT_MS });
  // The pipeline: one segment per planned span, live from /v1/federation.
  const fed = await getJson<{ plan: unknown[] }>(`${primary.url}/v1/federation`);
  await page.locator('#pipeline .layerbar .seg').nth(fed.plan.length - 1).waitFor({ timeout: WAIT_MS });
  assert.equal(await page.locator('#pipeline .layerbar .seg').count(), fed.plan.length);
  // Keyboard: Tab reaches the message box; Enter sends.
  let focused = '';
  for (let i = 0; i < 20 && focused !== 'prompt'; i++) {
    await page.keyboard.press('Tab');
    focused = String(await page.evaluate("document.activeElement?.id ?? ''"));
  }
  assert.equal(focused, 'prompt', 'Tab reaches the message box');
  await page.keyboard.type('Once upon a time');
  await page.keyboard.press('Enter');
  const answer = page.locator('.bubble.assistant .bubble-text').last();
  await page.waitForFunction("(document.querySelector('.bubble.assistant .bubble-text')?.textContent ?? '').replace('…', '').trim().length > 0", undefined, { timeout: WAIT_MS });
  await page.locator('.chat-input button[type="submit"]').waitFor({ timeout: WAIT_MS }); // Stop turned back into Send: done
  assert.ok((await answer.innerText()).trim().length > 0, 'the reply has text');
  assert.equal(await page.locator('.bubble .notice.error').count(), 0, 'no error under the reply');
  await page.locator('#pipeline .timings').waitFor({ timeout: WAIT_MS }); // decode timings arrived live
  await shot(page, 'playground.png');
  await page.setViewportSize({ width: 360, height: 780 });
  assert.ok((await horizontalOverflow(page)) <= 0, 'no horizontal scrolling at 360 px');
  await shot(page, 'playground-360.png');
  assert.deepEqual(errors, []);
  await page.context().close();
});

browserTest('a mixture reply shows tokens coloured by their top specialist (live mixture route)', async (t) => {
  const models = await getJson<{ data: { id: string }[] }>(`${primary.url}/v1/models`);
  if (!models.data.some((m) => m.id === 'mixture')) return skipMissing(t, "model 'mixture' in GET /v1/models", 'issue 13');
  const { page, errors } = await openPage(browser);
  await page.goto(primary.url);
  await page.locator('#model option[value="mixture"]').waitFor({ state: 'attached', timeout: WAIT_MS });
  await page.selectOption('#model', 'mixture');
  await page.fill('#prompt', 'Once upon a time');
  await page.keyboard.press('Enter');
  await page.locator('.tok[data-top]').first().waitFor({ timeout: WAIT_MS });
  assert.match((await page.locator('.tok[data-top]').first().getAttribute('title')) ?? '', /%/);
  await shot(page, 'chat-attribution-live.png');
  assert.deepEqual(errors, []);
  await page.context().close();
});

browserTest("the playground colours a stream of issue 13's shape and shows network text as text", async () => {
  // The page's side of the mixture, whatever the node serves: streams with `sharedllm.attribution` per token
  // (issue 13's shape), answered by the test in place of the node. The second answer carries markup.
  const { page, errors } = await openPage(browser);
  const answers = [FIXTURE_ANSWER, [...FIXTURE_ANSWER.slice(0, 2), [' <img src=x onerror="window.hacked=1"><b>bold</b>', [['code-py', 0.9], ['prose-en', 0.1], ['bible-es', 0]]] as const]];
  let calls = 0;
  await page.route('**/v1/models', (route) => route.fulfill({ json: { object: 'list', data: ['sharedllm-tiny', 'code-py', 'prose-en', 'bible-es', 'mixture'].map((id) => ({ id, object: 'model' })) } }));
  await page.route('**/v1/chat/completions', (route) => route.fulfill({ status: 200, headers: { 'content-type': 'text/event-stream' }, body: attributedStream(answers[Math.min(calls++, 1)]!) }));
  await page.goto(primary.url);
  await page.locator('#model option[value="mixture"]').waitFor({ state: 'attached', timeout: WAIT_MS });
  await page.selectOption('#model', 'mixture');
  await page.fill('#prompt', 'One line of Python, then say it in Spanish.');
  await page.keyboard.press('Enter');
  await page.locator('.attr-legend').waitFor({ timeout: WAIT_MS });
  const tokens = page.locator('.bubble.assistant .tok');
  assert.equal(await tokens.count(), FIXTURE_ANSWER.length);
  for (const [i, [, shares]] of FIXTURE_ANSWER.entries()) {
    const best = [...shares].sort((a, b) => b[1] - a[1])[0]![0];
    assert.equal(await tokens.nth(i).getAttribute('data-top'), best, `token ${i} is coloured by its top specialist`);
  }
  assert.match((await tokens.nth(2).getAttribute('title')) ?? '', /^code-py 94% · prose-en 5% · bible-es 1%$/);
  await page.locator('.chat-input button[type="submit"]').waitFor({ timeout: WAIT_MS });
  await shot(page, 'chat-attribution.png');
  // Markup from the network is text: no element made from it, no script run.
  await page.fill('#prompt', 'And now some markup?');
  await page.keyboard.press('Enter');
  await page.locator('.attr-legend').nth(1).waitFor({ timeout: WAIT_MS });
  assert.equal(await page.locator('.bubble img, .bubble-text b').count(), 0);
  assert.match(await page.locator('.bubble.assistant').last().innerText(), /<img src=x onerror=/);
  assert.equal(await page.evaluate('window.hacked'), undefined);
  assert.deepEqual(errors, []);
  await page.context().close();
});

browserTest('the API key stays in the tab (sessionStorage), goes with every request, and signing out clears what it showed', async () => {
  // A primary that wants a key, played by the test in front of the real one: 401 without the right key.
  const KEY = 'sk-dashboard-test';
  const { page, errors } = await openPage(browser);
  const seen: (string | undefined)[] = [];
  const adapters = [{ id: 'ad-2', name: 'old-notes', kind: 'norm', state: 'ready' }, { id: 'ad-1', name: 'my-letters', kind: 'norm', state: 'training', step: 30, steps: 120, loss: 3.2, consent: { purpose: 'write like me', keepText: false, at: 1_700_000_000_000 } }];
  const audit = [{ at: 1_700_000_000_000, event: 'consent_given', adapterId: 'ad-1' }];
  page.on('dialog', (dialog) => void dialog.accept());
  await page.route(/\/v1\/(models|dashboard\/live|adapters|adapters\/[\w-]+|audit)$/, async (route) => {
    const request = route.request();
    const auth = request.headers()['authorization'];
    seen.push(auth);
    if (auth !== `Bearer ${KEY}`) return route.fulfill({ status: 401, json: { error: { message: 'this server requires an API key', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } } });
    const url = new URL(request.url());
    if (url.pathname === '/v1/adapters') return route.fulfill({ json: { data: adapters } });
    if (url.pathname === '/v1/audit') return route.fulfill({ json: { data: audit } });
    if (url.pathname.startsWith('/v1/adapters/') && request.method() === 'DELETE') {
      const id = url.pathname.split('/').pop()!;
      adapters.splice(adapters.findIndex((a) => a.id === id), 1);
      audit.push({ at: 1_700_000_100_000, event: 'adapter_deleted', adapterId: id });
      return route.fulfill({ json: { id, deleted: true } });
    }
    return route.fallback();
  });
  await page.goto(primary.url);
  await page.locator('.live-unauthorized').waitFor({ timeout: WAIT_MS });
  assert.match(await page.locator('main').innerText(), /needs an API key/);
  await page.fill('#keyfield', KEY);
  await page.keyboard.press('Enter');
  await page.locator('li[data-adapter-id="ad-1"]').waitFor({ timeout: WAIT_MS });
  assert.match(await page.locator('#audit').innerText(), /consent_given/);
  assert.match(await page.locator('li[data-adapter-id="ad-1"]').innerText(), /step 30\/120[\s\S]*write like me[\s\S]*deleted after training/);
  // Deleting from the page (the adapters route's flow, here played by the test): gone from the list, in the log.
  await page.locator('li[data-adapter-id="ad-2"]').getByRole('button', { name: /^Delete/ }).click();
  await page.locator('li[data-adapter-id="ad-2"]').waitFor({ state: 'detached', timeout: WAIT_MS });
  await page.locator('#audit', { hasText: 'adapter_deleted' }).waitFor({ timeout: WAIT_MS });
  await shot(page, 'account.png');
  assert.ok(seen.includes(`Bearer ${KEY}`));
  assert.equal(await page.evaluate("sessionStorage.getItem('sharedllm.key')"), KEY);
  assert.equal(await page.evaluate('localStorage.length'), 0, 'nothing in localStorage');
  assert.equal((await page.context().cookies()).length, 0, 'no cookie');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.locator('li[data-adapter-id="ad-1"]').waitFor({ state: 'detached', timeout: WAIT_MS });
  assert.doesNotMatch(await page.locator('main').innerText(), /my-letters|consent_given|adapter_deleted/);
  assert.equal(await page.evaluate("sessionStorage.getItem('sharedllm.key')"), null);
  assert.deepEqual(errors.filter((e) => !/401/.test(e)), []);
  await page.context().close();
});

browserTest('the coordinator page draws training loss curves with vega and specialists with their manifests (issue 11 and 14 shapes)', async () => {
  // What a coordinator with the directory and training jobs sends, played by the test (the shapes of
  // wire.ts): the page's side of those panels, whichever routes this coordinator has.
  const { page, errors } = await openPage(browser);
  const live = await (await fetch(`${coordinator.url}/v1/dashboard/live`, { signal: AbortSignal.timeout(WAIT_MS) })).body!.getReader().read();
  const snapshot = JSON.parse(new TextDecoder().decode(live.value).replace(/^data: /, '').trim()) as Record<string, unknown>;
  const rounds = [5.61, 5.02, 4.71, 4.52, 4.40, 4.33].map((loss, i) => ({ round: i + 1, loss, heldOutLoss: loss + 0.12 + 0.02 * i, participants: i === 2 ? 2 : 3 }));
  const manifest = { kind: 'manifest', modelId: 'code-py', version: 2, architecture: 'llama', vocabSize: 512, hiddenDim: 96, nLayers: 6, quant: 'q8_0', fileBytes: 7_340_032, domains: ['code', 'python'], description: 'SharedLLM-tiny trained further on Python source' };
  const fixture = {
    ...snapshot,
    specialists: [{ modelId: 'code-py', version: 2, status: 'active', manifest, servedBy: [], source: 'local', receivedAt: Date.now() }],
    jobs: [{ id: 'tiny-prose', state: 'running', rounds: 12, aggregator: 'trimmed-mean', metrics: rounds }],
  };
  await page.route('**/v1/dashboard/live', (route) => route.fulfill({ status: 200, headers: { 'content-type': 'text/event-stream' }, body: `data: ${JSON.stringify(fixture)}\n\n` }));
  await page.goto(coordinator.url);
  await page.locator('#jobs .chart svg').waitFor({ timeout: WAIT_MS });
  assert.match(await page.locator('#jobs').innerText(), /round 6 of 12 · trimmed-mean/);
  assert.match(await page.locator('#specialists').innerText(), /code-py[\s\S]*python[\s\S]*q8_0/);
  await shot(page, 'federation-training.png');
  assert.deepEqual(errors, []);
  await page.context().close();
});

browserTest('an adapter can be deleted from the page and disappears from the list (adapters route)', async (t) => {
  const probe = await fetch(`${primary.url}/v1/adapters`);
  await probe.body?.cancel();
  if (probe.status === 404) return skipMissing(t, 'GET /v1/adapters', 'issue 12');
  // Issue 12's flow: train one small adapter with consent, then delete it from the page.
  const created = await getJson<{ id: string }>(`${primary.url}/v1/adapters`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'dashboard-test', text: 'Once upon a time there was a dashboard. '.repeat(40), consent: { purpose: 'dashboard test', keepText: false } }),
  });
  const { page, errors } = await openPage(browser);
  page.on('dialog', (dialog) => void dialog.accept());
  await page.goto(primary.url);
  const item = page.locator(`li[data-adapter-id="${created.id}"]`);
  await item.waitFor({ timeout: WAIT_MS });
  await item.getByRole('button', { name: /^Delete/ }).click();
  await item.waitFor({ state: 'detached', timeout: WAIT_MS });
  const audit = await fetch(`${primary.url}/v1/audit`);
  if (audit.ok) assert.match(await page.locator('#audit').innerText(), /delet/i);
  await shot(page, 'adapters.png');
  assert.deepEqual(errors, []);
  await page.context().close();
});

browserTest('the catalogue renders SUMMARY.md with its plots, verdicts and run commands, and fits 360 px', async () => {
  const { page, errors } = await openPage(browser);
  await page.goto(`${coordinator.url}/catalogue`);
  await page.locator('.bet-index a').first().waitFor({ timeout: WAIT_MS });
  const text = await page.locator('.markdown').innerText();
  assert.match(text, /npm run bet -- \d+/, 'run commands');
  assert.match(text, /STRICT/, 'criteria');
  assert.ok((await page.locator('.markdown strong.badge').count()) > 0, 'verdicts as badges');
  const img = page.locator('.markdown img').first();
  await img.scrollIntoViewIfNeeded();
  await page.waitForFunction("(() => { const first = document.querySelector('.markdown img'); return first !== null && first.complete && first.naturalWidth > 0; })()", undefined, { timeout: WAIT_MS });
  assert.equal(await page.locator('script:not([src])').count(), 0, 'no inline script made it into the page');
  await page.evaluate('window.scrollTo(0, 0)');
  await page.screenshot({ path: join(shots, 'catalogue.png') });
  // The first bet's plots, side by side under its tables.
  await page.evaluate("window.scrollTo(0, document.querySelector('.markdown .plots').getBoundingClientRect().top + window.scrollY - 180)");
  await page.screenshot({ path: join(shots, 'catalogue-plots.png') });
  await page.setViewportSize({ width: 360, height: 780 });
  assert.ok((await horizontalOverflow(page)) <= 0, 'no horizontal scrolling at 360 px');
  assert.deepEqual(errors, []);
  await page.context().close();
});

