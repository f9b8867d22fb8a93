// The dashboards in a real browser (headless Chromium through playwright-core) against a live federation of
// three processes (coordinator, worker, primary) running the bundled SharedLLM-tiny, the primary with two
// specialists (SharedLLM-tiny fine-tuned for a few steps on code and on prose by `sharedllm train --init`,
// so they share its tokenizer): the coordinator page lists the nodes, a chat in the playground streams a
// reply through the pipeline, a live mixture reply shows its tokens coloured with their shares, a user made by
// `sharedllm users add` signs in, trains an adapter from the page with consent, deletes it and sees the
// deletion in the audit log; the catalogue renders SUMMARY.md with its plots; the pages fit 360 px and keep
// network text as text. Without Chromium every test is skipped loudly with how to install it.
// Screenshots: the folder printed at the start ($SHAREDLLM_SCREENSHOTS to choose it). For the README's
// shots, $SHAREDLLM_DASHBOARD_SPECIALISTS=a.gguf,b.gguf serves those specialists instead of the quick ones
// (and $SHAREDLLM_DASHBOARD_PROMPT asks the mixture something else).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { type TestContext, after, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { CoordinatorClient } from '../../src/federation/coordinator/client.ts';
import { jobRef } from '../../src/federation/diloco/job-ref.ts';
import { createEphemeralIdentity } from '../../src/federation/identity.ts';
import { INSTALL_HINT, findChromium, horizontalOverflow, launch, openPage, screenshotDir, shout } from './dashboard-browser.ts';
import { Cluster, type CoordinatorHandle, type PrimaryHandle, ROOT, getJson, modelId, until } from './harness.ts';

const MODEL = join(ROOT, 'models', 'sharedllm-tiny.gguf');
/** Waits in the page (the tests never assert a timing; these only bound a hang). */
const WAIT_MS = 30_000;
/** Training an adapter from the page: a few steps (the test waits for it to be ready, never for a time). */
const ADAPTER_STEPS = 3;
const TRAIN_WAIT_MS = 120_000;

/** Each specialist's little corpus: a few fine-tuning steps on it make them differ (test data). */
const CORPORA: Record<string, string> = {
  'code-py': Array.from({ length: 24 }, (_, i) => `def add_${i}(a, b):\n    \"\"\"Return the sum of a and b.\"\"\"\n    if a is None:\n        return b\n    return a + b + ${i}\n\n\nclass Box${i}:\n    def __init__(self, value):\n        self.value = value\n`).join('\n'),
  'prose-en': Array.from({ length: 24 }, (_, i) => `On the ${i + 1}th morning the old woman walked down to the harbour, where the fishing boats came in with the tide, and she told the children a story about the sea and the lighthouse keeper who sang to the gulls.`).join('\n\n'),
};
/** The user's text for an adapter (made up). */
const USER_TEXT = Array.from({ length: 24 }, (_, i) => `Dear Mira, day ${i + 1} at the observatory: the clouds parted at midnight and I counted the moons of the striped planet twice before the dome creaked shut.`).join('\n');

/** The specialists' GGUFs: $SHAREDLLM_DASHBOARD_SPECIALISTS, else SharedLLM-tiny fine-tuned briefly on CORPORA. */
async function specialists(c: Cluster): Promise<string[]> {
  const given = process.env.SHAREDLLM_DASHBOARD_SPECIALISTS;
  if (given) return given.split(',');
  return Promise.all(Object.entries(CORPORA).map(async ([id, text]) => {
    const dir = join(c.dir, `corpus-${id}`);
    mkdirSync(dir);
    text.split('\n\n').forEach((part, i) => writeFileSync(join(dir, `${i}.txt`), part));
    const out = join(c.dir, `${id}.gguf`);
    const r = await c.run(`train-${id}`, ['train', '--corpus', dir, '--init', MODEL, '--out', out, '--steps', '3', '--batch', '2', '--ctx', '64', '--lr', '2e-3', '--threads', '1', '--eval-every', '0', '--eval-tokens', '64', '--held-out', '0.1']);
    assert.equal(r.code, 0, r.stderr);
    return out;
  }));
}

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
let specialistIds: string[];

if (chromium === undefined || cluster === undefined) {
  shout(['DASHBOARD BROWSER TESTS SKIPPED: no Chromium found.', INSTALL_HINT]);
} else {
  cluster.setup(async () => {
    shots = screenshotDir();
    process.stderr.write(`dashboard screenshots: ${shots}\n`);
    // The bundle the nodes serve (dist/webui), fresh from the sources (esbuild: about a second).
    const buildScript = new URL('../../scripts/build-web.mjs', import.meta.url).href;
    const { buildWeb } = (await import(buildScript)) as { buildWeb: () => Promise<Record<string, number>> };
    const [b, , files] = await Promise.all([launch(chromium), buildWeb(), specialists(cluster)]);
    browser = b;
    specialistIds = files.map((f) => modelId(basename(f)));
    coordinator = await cluster.coordinator();
    await cluster.worker('worker', { coordinatorUrl: coordinator.url, host: '127.0.0.1' });
    primary = await cluster.primary('primary', { coordinatorUrl: coordinator.url, model: MODEL, waitWorkers: 1, localLayers: 1, extra: files.flatMap((f) => ['--specialist', f]) });
  });
  after(() => browser?.close());
}

/** node:test's test, skipped loudly when there is no Chromium. */
function browserTest(name: string, fn: (t: TestContext) => Promise<void>, timeoutMs = 90_000): void {
  if (cluster === undefined) test(name, (t) => t.skip(`SKIPPED, no Chromium: ${INSTALL_HINT}`));
  else cluster.test(name, fn, timeoutMs);
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
  // The base model's bar comes first (the specialists, whole on the primary, follow).
  const baseBar = page.locator('#layers .model').first().locator('.layerbar .seg');
  await baseBar.nth(fed.plan.length - 1).waitFor({ timeout: WAIT_MS });
  assert.equal(await baseBar.count(), fed.plan.length);
  assert.equal(await page.locator('#layers .model').count(), 1 + specialistIds.length, 'a bar per model: the base and each specialist');
  const worker = nodes.nodes.find((n) => n.role === 'worker')!;
  assert.match(await page.locator('#layers .model').first().locator('.layerbar-legend').innerText(), new RegExp(worker.name));
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

browserTest('a live mixture reply shows tokens coloured by their top specialist, with the shares on hover', async () => {
  const models = await getJson<{ data: { id: string }[] }>(`${primary.url}/v1/models`);
  assert.ok(models.data.some((m) => m.id === 'mixture'), `'mixture' is served: ${models.data.map((m) => m.id).join(', ')}`);
  const { page, errors } = await openPage(browser, 1280, 1100); // tall enough to show a whole answer
  await page.goto(primary.url);
  await page.locator('#model option[value="mixture"]').waitFor({ state: 'attached', timeout: WAIT_MS });
  await page.selectOption('#model', 'mixture');
  await page.fill('#prompt', process.env.SHAREDLLM_DASHBOARD_PROMPT ?? 'The old woman walked down to the harbour');
  await page.keyboard.press('Enter');
  await page.locator('.attr-legend').waitFor({ timeout: WAIT_MS });
  await page.locator('.chat-input button[type="submit"]').waitFor({ timeout: WAIT_MS }); // the answer is done
  const tokens = page.locator('.bubble.assistant .tok[data-top]');
  assert.ok((await tokens.count()) > 0, 'attributed tokens');
  // Each token: coloured by its top specialist, its shares (summing to about 100%) in its title.
  for (let i = 0; i < Math.min(await tokens.count(), 8); i++) {
    const title = (await tokens.nth(i).getAttribute('data-shares')) ?? '';
    const shares = [...title.matchAll(/(\S+) (\d+)%/g)].map((m) => [m[1]!, Number(m[2])] as const);
    assert.ok(shares.length >= 1 && shares.every(([id]) => specialistIds.includes(id)), title);
    assert.equal(await tokens.nth(i).getAttribute('data-top'), shares[0]![0], 'coloured by the largest share');
    assert.ok(Math.abs(shares.reduce((n, [, v]) => n + v, 0) - 100) <= shares.length, title);
  }
  assert.equal(await page.locator('.bubble .notice.error').count(), 0, 'no error under the reply');
  // Hovering a token shows its shares (a tooltip of the page's own, so that screenshots show it too).
  const wordy = Number(await page.evaluate("[...document.querySelectorAll('.bubble.assistant .tok[data-top]')].findIndex((t) => /\\S/.test(t.firstChild?.textContent ?? ''))"));
  assert.ok(wordy >= 0, 'a token that is not white space');
  const visible = tokens.nth(wordy);
  await visible.hover();
  await page.locator('.tok:hover .shares').waitFor({ timeout: WAIT_MS });
  assert.equal(await page.locator('.tok:hover .shares').innerText(), await visible.getAttribute('data-shares'));
  await shot(page, 'chat-attribution.png');
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
  assert.match((await tokens.nth(2).getAttribute('data-shares')) ?? '', /^code-py 94% · prose-en 5% · bible-es 1%$/);
  await page.locator('.chat-input button[type="submit"]').waitFor({ timeout: WAIT_MS });
  await shot(page, 'chat-attribution-fixture.png');
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
  // The adapters routes' shapes (src/api/adapters/routes.ts), played by the test.
  const adapter = (id: string, name: string, state: string, step: number, loss: number | null) => ({
    id, object: 'adapter', name, model: `sharedllm-tiny@${name}`, kind: 'norm', state, step, steps: 120, loss, eta_seconds: state === 'training' ? 42 : null,
    queue_position: null, error: null, base: 'sha256:00', created_at: '2026-11-27T10:00:00.000Z', started_at: null, finished_at: null, text_kept: false,
    consent: { purpose: name === 'my-letters' ? 'write like me' : 'old notes', keep_text: false, text_sha256: 'ab'.repeat(32), given_at: '2026-11-27T10:00:00.000Z' },
  });
  const adapters = [adapter('ad-2', 'old-notes', 'ready', 120, 2.9), adapter('ad-1', 'my-letters', 'training', 30, 3.2)];
  const audit = [{ seq: 1, at: '2026-11-27T10:00:00.000Z', event: 'consent_given', adapter_id: 'ad-1', name: 'my-letters' }];
  page.on('dialog', (dialog) => void dialog.accept());
  await page.route(/\/v1\/(models|dashboard\/live|adapters|adapters\/[\w-]+|audit|users\/me)$/, async (route) => {
    const request = route.request();
    const auth = request.headers()['authorization'];
    seen.push(auth);
    if (auth !== `Bearer ${KEY}`) return route.fulfill({ status: 401, json: { error: { message: 'this server requires an API key', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } } });
    const url = new URL(request.url());
    if (url.pathname === '/v1/adapters') return route.fulfill({ json: { object: 'list', data: adapters } });
    if (url.pathname === '/v1/audit') return route.fulfill({ json: { object: 'list', data: audit, has_more: false } });
    if (url.pathname === '/v1/users/me') return route.fulfill({ json: { id: 'user_1', object: 'user', name: 'tester', created_at: 1_700_000_000_000, adapters: adapters.length } });
    if (url.pathname.startsWith('/v1/adapters/') && request.method() === 'DELETE') {
      const id = url.pathname.split('/').pop()!;
      adapters.splice(adapters.findIndex((a) => a.id === id), 1);
      audit.push({ seq: audit.length + 1, at: '2026-11-27T10:05:00.000Z', event: 'adapter_deleted', adapter_id: id, name: 'old-notes' });
      return route.fulfill({ json: { id, object: 'adapter.deleted', deleted: true } });
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
  assert.match(await page.locator('li[data-adapter-id="ad-1"]').innerText(), /step 30\/120 · loss 3\.200[\s\S]*write like me[\s\S]*deleted after training/);
  // Deleting from the page (the adapters route's flow, here played by the test): gone from the list, in the log.
  await page.locator('li[data-adapter-id="ad-2"]').getByRole('button', { name: /^Delete/ }).click();
  await page.locator('li[data-adapter-id="ad-2"]').waitFor({ state: 'detached', timeout: WAIT_MS });
  await page.locator('#audit', { hasText: 'adapter_deleted' }).waitFor({ timeout: WAIT_MS });
  await shot(page, 'account-fixture.png');
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

browserTest("the coordinator page draws a DiLoCo job's loss curve from its server's heartbeats, and specialists with their manifests", async () => {
  // A DiLoCo server as the coordinator sees one (diloco/job-ref.ts): a member with a `diloco-job:<id>` model
  // ref whose heartbeats carry its progress; played by a throwaway member, through the real lease.
  const rounds = [5.61, 5.02, 4.71, 4.52, 4.40, 4.33].map((innerLoss, round) => ({ round, innerLoss, heldOutLoss: innerLoss + 0.12 + 0.02 * round, participants: round === 2 ? 2 : 3 }));
  const jobId = 'd1c0c0ffee000001';
  const identity = createEphemeralIdentity();
  const client = new CoordinatorClient({ url: coordinator.url });
  const lease = client.join({
    identity,
    registration: { nodeId: identity.id, role: 'primary', name: 'diloco-d1c0c0ff', candidates: [], freeMemoryBytes: 1, threads: 1, backend: 'cpu', models: [jobRef(jobId, 'sharedllm-tiny', 6)], version: '0.0.0-test' },
    status: () => ({ freeMemoryBytes: 1, load: 0, training: { jobId, round: rounds.length, rounds: 12, metrics: rounds } }),
  });
  try {
    await lease.registered;
    const { page, errors } = await openPage(browser);
    // The specialists' panel with a manifest as the directory holds one (issue 11's shape), played by the test
    // in the live stream; everything else in it is the coordinator's own.
    const manifest = { kind: 'manifest', modelId: 'code-py', version: 2, architecture: 'llama', vocabSize: 512, hiddenDim: 96, nLayers: 6, quant: 'q8_0', fileBytes: 7_340_032, domains: ['code', 'python'], description: 'SharedLLM-tiny trained further on Python source' };
    await until('the coordinator has the job\'s progress', async () => (await getJson<{ training?: unknown }>(`${coordinator.url}/v1/nodes/${identity.id}`)).training, WAIT_MS);
    const live = await (await fetch(`${coordinator.url}/v1/dashboard/live`, { signal: AbortSignal.timeout(WAIT_MS) })).body!.getReader().read();
    const snapshot = JSON.parse(new TextDecoder().decode(live.value).replace(/^data: /, '').trim()) as Record<string, unknown>;
    const fixture = { ...snapshot, specialists: [{ modelId: 'code-py', version: 2, status: 'active', manifest, servedBy: [], source: 'local', receivedAt: Date.now() }] };
    await page.route('**/v1/dashboard/live', (route) => route.fulfill({ status: 200, headers: { 'content-type': 'text/event-stream' }, body: `data: ${JSON.stringify(fixture)}\n\n` }));
    await page.goto(coordinator.url);
    await page.locator(`#jobs [data-job-id="${jobId}"] .chart svg`).waitFor({ timeout: WAIT_MS });
    assert.match(await page.locator('#jobs').innerText(), /served by diloco-d1c0c0ff · round 6 of 12 · 3 participants in the last round/);
    assert.match(await page.locator('#specialists').innerText(), /code-py[\s\S]*python[\s\S]*q8_0/);
    await shot(page, 'federation-training.png');
    assert.deepEqual(errors, []);
    await page.context().close();
  } finally {
    await lease.leave().catch(() => lease.stop());
    client.close();
  }
});

browserTest('a user signs in with their key, trains an adapter from the page with consent, deletes it, and the audit log shows it', async () => {
  const added = await cluster!.run('users', ['users', 'add', 'mira', '--data-dir', join(cluster!.dir, 'primary')]);
  assert.equal(added.code, 0, added.stderr);
  const key = added.stdout.trim();
  const { page, errors } = await openPage(browser);
  page.on('dialog', (dialog) => void dialog.accept());
  await page.goto(primary.url);
  await page.fill('#keyfield', key);
  await page.keyboard.press('Enter');
  await page.locator('#adapters', { hasText: 'Your adapters · mira' }).waitFor({ timeout: WAIT_MS });
  // The form: text, steps, the purpose in the user's words; nothing goes before the consent box is ticked.
  await page.locator('.train summary').click();
  await page.fill('#adapter-name', 'letters');
  await page.fill('#adapter-text', USER_TEXT);
  await page.fill('#adapter-steps', String(ADAPTER_STEPS));
  await page.fill('#adapter-purpose', 'write like my letters to Mira');
  assert.equal(await page.locator('.train-form button[type="submit"]').isDisabled(), true, 'no consent, no sending');
  await page.check('#adapter-consent');
  await page.locator('.train-form button[type="submit"]').click();
  const item = page.locator('li.adapter', { hasText: 'letters' });
  await item.waitFor({ timeout: WAIT_MS });
  await page.locator('li.adapter[data-state="ready"]').waitFor({ timeout: TRAIN_WAIT_MS });
  assert.match(await item.innerText(), new RegExp(`step ${ADAPTER_STEPS}/${ADAPTER_STEPS}[\\s\\S]*write like my letters to Mira[\\s\\S]*deleted after training`));
  assert.match(await item.innerText(), /sharedllm-tiny@letters/);
  const audit = page.locator('#audit');
  await audit.filter({ hasText: 'training_finished' }).waitFor({ timeout: WAIT_MS });
  assert.match(await audit.innerText(), /consent_given/);
  await shot(page, 'adapters.png');
  // Delete from the page: gone from the list, and the audit log says so.
  const id = await item.getAttribute('data-adapter-id');
  await item.getByRole('button', { name: /^Delete/ }).click();
  await page.locator(`li[data-adapter-id="${id}"]`).waitFor({ state: 'detached', timeout: WAIT_MS });
  await audit.filter({ hasText: 'adapter_deleted' }).waitFor({ timeout: WAIT_MS });
  const left = await getJson<{ data: unknown[] }>(`${primary.url}/v1/adapters`, { headers: { authorization: `Bearer ${key}` } });
  assert.deepEqual(left.data, []);
  await shot(page, 'adapters-deleted.png');
  await page.locator('.train summary').click(); // the form open, at a phone's width
  await page.setViewportSize({ width: 360, height: 780 });
  assert.ok((await horizontalOverflow(page)) <= 0, 'no horizontal scrolling at 360 px');
  await shot(page, 'adapters-360.png');
  assert.deepEqual(errors, []);
  await page.context().close();
}, 180_000);

browserTest('the catalogue renders SUMMARY.md with its plots, verdicts and run commands, and fits 360 px', async () => {
  const { page, errors } = await openPage(browser);
  await page.goto(`${coordinator.url}/catalogue`);
  await page.locator('.bet-index a').first().waitFor({ timeout: WAIT_MS });
  const text = await page.locator('.markdown').innerText();
  assert.match(text, /npm run bet -- \d+/, 'run commands');
  assert.match(text, /^strict\t/m, 'criteria (each bet\'s table of levels; the summary table may be folded)');
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

