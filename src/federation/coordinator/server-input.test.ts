/**
 * Issue 8, defect 7: an open coordinator stored and re-served arbitrary unknown fields (20 manifests with a
 * 900 KB junk field each: 23 MB in the database, 18 MB per GET /v1/manifests). Now unknown fields are
 * dropped before anything is stored, and registrations and manifests have size caps (413 naming the
 * setting). A real coordinator with its SQLite database; the database files are searched for the junk.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { localTestConfig } from '../config.ts';
import { createEphemeralIdentity, signBody } from '../identity.ts';
import type { Identity } from '../identity.ts';
import { ErrorBodySchema } from '../protocol.ts';
import { ManifestListSchema } from '../protocol-directory.ts';
import type { Manifest } from '../protocol-directory.ts';
import { silentLogger } from '../../util/log.ts';
import { startCoordinator } from './coordinator.ts';
import type { RunningCoordinator } from './coordinator.ts';
import { SQLITE_FILE } from './sqlite-store.ts';
import { makeHeartbeat, makeManifest, makeRegistration, tempDir } from './testing.ts';

const config = { ...localTestConfig(), suspectTimeoutMs: 60_000, deadTimeoutMs: 60_000 };
/** Never part of a legitimate message: found anywhere means junk was kept. */
const MARK = 'JUNK-7f3a';
let coordinator: RunningCoordinator;
let dir: ReturnType<typeof tempDir>;

before(async () => {
  dir = tempDir();
  // An open coordinator: no join token, as in the report.
  coordinator = await startCoordinator({ host: '127.0.0.1', port: 0, dataDir: dir.path, config, logger: silentLogger });
});

after(async () => {
  await coordinator.close();
  dir.cleanup();
});

async function post(path: string, body: unknown): Promise<{ status: number; text: string }> {
  const res = await fetch(`${coordinator.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, text: await res.text() };
}

async function get(path: string): Promise<string> {
  const res = await fetch(`${coordinator.url}${path}`);
  assert.equal(res.status, 200);
  return res.text();
}

function errorOf(answer: { status: number; text: string }, status: number, code: string): string {
  assert.equal(answer.status, status, answer.text);
  const body = ErrorBodySchema.parse(JSON.parse(answer.text));
  assert.equal(body.error.code, code);
  return body.error.message;
}

/** The database and its WAL hold no junk. */
function assertDatabaseClean(): void {
  for (const name of [SQLITE_FILE, `${SQLITE_FILE}-wal`]) {
    const path = join(dir.path, name);
    if (existsSync(path)) assert.equal(readFileSync(path).includes(MARK), false, `${name} holds junk`);
  }
}

/** A manifest signed with `extra` fields included in what the publisher signs. */
function signedWith(publisher: Identity, manifest: Manifest, extra: Record<string, unknown>): Record<string, unknown> {
  const { signature: _signature, ...unsigned } = manifest;
  return signBody(publisher, { ...unsigned, ...extra });
}

test('the reported attack: 20 manifests with a 900 KB junk field are refused with 413 naming the cap', async () => {
  const junk = MARK.repeat(Math.ceil(900_000 / MARK.length));
  for (let i = 0; i < 20; i++) {
    const publisher = createEphemeralIdentity();
    const manifest = makeManifest({ contentHash: `sha256:${i.toString(16).padStart(2, '0').repeat(32)}` }, publisher);
    const message = errorOf(await post('/v1/manifests', signedWith(publisher, manifest, { junk })), 413, 'payload_too_large');
    assert.match(message, new RegExp(`limit of ${config.maxManifestBytes} bytes \\(config\\.maxManifestBytes\\)`));
  }
  const listed = await get('/v1/manifests');
  assert.equal(ManifestListSchema.parse(JSON.parse(listed)).manifests.length, 0);
  assertDatabaseClean();
});

test('a manifest with unsigned unknown fields is stored and served without them', async () => {
  const publisher = createEphemeralIdentity();
  const manifest = makeManifest({ contentHash: `sha256:${'a1'.repeat(32)}` }, publisher);
  const created = await post('/v1/manifests', { ...manifest, junk: MARK.repeat(100) });
  assert.equal(created.status, 201, created.text);
  assert.deepEqual(JSON.parse(created.text), { status: 'stored', key: manifest.modelId, version: manifest.version });
  const listed = await get('/v1/manifests');
  const one = await get(`/v1/manifests/${encodeURIComponent(manifest.contentHash)}`);
  assert.deepEqual(JSON.parse(one), manifest);
  for (const text of [listed, one]) assert.equal(text.includes(MARK), false);
  assertDatabaseClean();
});

test('a manifest signed over unknown fields is refused, naming them (a stored copy would not verify)', async () => {
  const publisher = createEphemeralIdentity();
  const manifest = makeManifest({ contentHash: `sha256:${'b2'.repeat(32)}` }, publisher);
  const message = errorOf(await post('/v1/manifests', signedWith(publisher, manifest, { junk: MARK })), 400, 'invalid_body');
  assert.match(message, /signed over fields this coordinator does not store: junk/);
  assert.equal((await fetch(`${coordinator.url}/v1/manifests/${encodeURIComponent(manifest.contentHash)}`)).status, 404);
  assertDatabaseClean();
});

test('registrations and heartbeats: unknown fields (nested too) are accepted, neither stored nor served', async () => {
  const node = createEphemeralIdentity();
  const base = makeRegistration({ nodeId: 'junk-w1' }, node);
  const { signature: _signature, ...unsigned } = base;
  // A "newer node": extra fields at the top and inside candidates and models, all covered by its signature.
  const registration = signBody(node, {
    ...unsigned,
    junk: MARK,
    candidates: unsigned.candidates.map((candidate) => ({ ...candidate, junk: MARK })),
    models: unsigned.models.map((model) => ({ ...model, junk: MARK })),
  });
  assert.equal((await post('/v1/nodes/register', registration)).status, 200);
  const beat = await post('/v1/nodes/junk-w1/heartbeat', signBody(node, { nodeId: 'junk-w1', incarnation: 1, freeMemoryBytes: 5, load: 0, beat: 1, junk: MARK }));
  assert.equal(beat.status, 200, beat.text);
  const view = await get('/v1/nodes/junk-w1');
  assert.equal(JSON.parse(view).freeMemoryBytes, 5);
  for (const text of [view, await get('/v1/nodes')]) assert.equal(text.includes(MARK), false);
  assertDatabaseClean();
});

test('an oversize registration is refused with 413 naming config.maxRegistrationBytes', async () => {
  const node = createEphemeralIdentity();
  const { signature: _signature, ...unsigned } = makeRegistration({ nodeId: 'big-w1' }, node);
  const big = signBody(node, { ...unsigned, junk: MARK.repeat(Math.ceil((config.maxRegistrationBytes + 1) / MARK.length)) });
  const message = errorOf(await post('/v1/nodes/register', big), 413, 'payload_too_large');
  assert.match(message, /^registration of \d+\+ bytes is above the limit of \d+ bytes \(config\.maxRegistrationBytes\)$/);
  assert.equal((await fetch(`${coordinator.url}/v1/nodes/big-w1`)).status, 404);
  assertDatabaseClean();
});

test('a request target that is no URL is a 400, before auth, and the coordinator keeps serving', async () => {
  // On the old listener this one line crashed the whole process (an unhandled rejection from new URL()).
  const url = new URL(coordinator.url);
  const reply = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => socket.end('GET //[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    let data = '';
    socket.on('data', (chunk: Buffer) => (data += chunk.toString()));
    socket.on('close', () => resolve(data));
    socket.on('error', reject);
  });
  assert.match(reply, /^HTTP\/1\.1 400/);
  assert.match(reply, /"code":"bad_request"/);
  assert.equal((await fetch(`${coordinator.url}/health`)).status, 200);
});
