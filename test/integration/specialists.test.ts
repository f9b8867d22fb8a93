// The specialist directory across real processes (issue 11): a coordinator, a worker (127.0.0.2) and two
// primaries, A serving a specialist beside its base model and B with an API key. Primaries have no data-plane
// listener, so while the coordinator is down A and B hear of each other only through the worker: this is the
// path the test exercises. In order: a manifest published at the coordinator is listed by every primary and
// A serves the specialist under its manifest's id (with a signed serving record); the coordinator is killed; a
// second manifest published at B's API reaches A and the worker, and so does its revocation at A; forged and altered entries pushed to the
// worker are refused everywhere; the coordinator restarts and catches up by gossip.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { call } from '../../src/federation/dataplane.ts';
import { createEphemeralIdentity, signBody } from '../../src/federation/identity.ts';
import { type Manifest, ManifestSchema, type SpecialistView } from '../../src/federation/protocol-directory.ts';
import { connect } from '../../src/federation/transport/rpc.ts';
import { SHAPES } from '../../src/model/testing/make-model.ts';
import { cachedModel } from '../../src/model/testing/cached-model.ts';
import { asMember } from './member-probe.ts';
import { type CoordinatorHandle, Cluster, type PrimaryHandle, type WorkerHandle, complete, getJson, testModel, until } from './harness.ts';

/** Fast rounds: the whole test runs on gossip, not on timers. */
const GOSSIP = ['--gossip-interval', '0.25'];
const API_KEY = 'test-key-b';

const cluster = new Cluster();
let coordinator: CoordinatorHandle;
let worker: WorkerHandle;
let a: PrimaryHandle;
let b: PrimaryHandle;
let specialistFile: string;
const publisherDir = () => join(cluster.dir, 'publisher');

interface Listing {
  specialists: SpecialistView[];
  served?: string[];
}

const listing = (url: string, key?: string) => getJson<Listing>(`${url}/v1/specialists`, key === undefined ? {} : { headers: { authorization: `Bearer ${key}` } });
const viewAt = async (url: string, modelId: string, key?: string) => (await listing(url, key)).specialists.find((s) => s.modelId === modelId);

/** Model ids in the worker's replica (its SQLite file; the worker has no HTTP API). */
function workerHolds(): string[] {
  const db = new Database(join(cluster.dir, 'worker', 'directory.db'), { readonly: true, fileMustExist: true });
  try {
    return (db.prepare("SELECT model_id FROM directory_entries WHERE kind = 'manifest' ORDER BY model_id").all() as { model_id: string }[]).map((row) => row.model_id);
  } finally {
    db.close();
  }
}

async function makeManifest(model: string, id: string, out: string): Promise<Manifest> {
  const path = join(cluster.dir, out);
  const r = await cluster.run(`manifest-${id}`, ['specialist', 'manifest', '--model', model, '--id', id, '--domain', 'test', '--description', `test specialist ${id}`, '--data-dir', publisherDir(), '--out', path]);
  assert.equal(r.code, 0, r.stderr);
  return ManifestSchema.parse(JSON.parse(readFileSync(path, 'utf8')));
}

cluster.setup(async () => {
  const base = testModel();
  specialistFile = cachedModel({ shape: { ...SHAPES.smollm2, tiedEmbeddings: false }, nLayer: 2, type: 'Q8_0', seed: 2 });
  coordinator = await cluster.coordinator();
  worker = await cluster.worker('worker', { coordinatorUrl: coordinator.url, host: '127.0.0.2', extra: GOSSIP });
  // Every layer on the primaries themselves: this test is about the directory, not the pipeline.
  const common = { coordinatorUrl: coordinator.url, model: base, waitWorkers: 0, localLayers: 4 };
  [a, b] = await Promise.all([
    cluster.primary('primary-a', { ...common, extra: [...GOSSIP, '--specialist', specialistFile] }),
    cluster.primary('primary-b', { ...common, extra: [...GOSSIP, '--api-key', API_KEY] }),
  ]);
});

cluster.test('a manifest published at the coordinator is listed by every primary; A serves it under its id', async () => {
  const manifest = await makeManifest(specialistFile, 'test-code', 'code.json');
  const r = await cluster.run('publish-code', ['specialist', 'publish', '--manifest', join(cluster.dir, 'code.json'), '--coordinator-url', coordinator.url, '--model', specialistFile]);
  assert.equal(r.code, 0, r.stderr);

  const atA = await until('A lists test-code, served by A', async () => {
    const view = await viewAt(a.url, 'test-code');
    return view?.servedBy.some((s) => s.nodeId === a.nodeId) ? view : undefined;
  });
  assert.equal(atA.version, 1);
  assert.equal(atA.manifest?.contentHash, manifest.contentHash);
  await until('B lists test-code', () => viewAt(b.url, 'test-code', API_KEY));
  await until('the worker holds test-code', async () => workerHolds().includes('test-code') || undefined);
  // The serving record A signed reaches the coordinator too.
  await until('the coordinator sees A serving test-code', async () => (await viewAt(coordinator.url, 'test-code'))?.servedBy.some((s) => s.nodeId === a.nodeId) || undefined);

  // A serves the specialist in the OpenAI API under the manifest's id; B does not.
  const models = await getJson<{ data: { id: string }[] }>(`${a.url}/v1/models`);
  assert.ok(models.data.some((m) => m.id === 'test-code'), JSON.stringify(models));
  assert.equal(typeof (await complete(a.url, 'test-code', 'Hello', 3)), 'string');
  const modelsB = await getJson<{ data: { id: string }[] }>(`${b.url}/v1/models`, { headers: { authorization: `Bearer ${API_KEY}` } });
  assert.ok(!modelsB.data.some((m) => m.id === 'test-code'));
});

cluster.test('with the coordinator killed, a manifest published at B reaches A and the worker; its revocation at A reaches B and the worker', async () => {
  await coordinator.proc.stop('SIGKILL');
  await makeManifest(testModel(), 'test-prose', 'prose.json');
  const publish = (key: string[]) => cluster.run('publish-prose', ['specialist', 'publish', '--manifest', join(cluster.dir, 'prose.json'), '--node-url', b.url, ...key]);
  const refused = await publish([]);
  assert.notEqual(refused.code, 0, 'B requires its API key');
  assert.match(refused.stderr, /401|api-key/);
  const r = await publish(['--api-key', API_KEY]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await viewAt(b.url, 'test-prose', API_KEY))?.source, 'local');

  const atA = await until('A lists test-prose', () => viewAt(a.url, 'test-prose'));
  assert.notEqual(atA.source, 'local');
  assert.notEqual(atA.source, 'coordinator');
  await until('the worker holds test-prose', async () => workerHolds().includes('test-prose') || undefined);
  const listed = await cluster.run('list-b', ['specialist', 'list', '--node-url', b.url, '--api-key', API_KEY]);
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, /test-prose\s+1\s+active/);

  // Its publisher revokes it at A, still without the coordinator: the tombstone reaches B and the worker.
  const revoked = await cluster.run('revoke-prose', ['specialist', 'revoke', '--id', 'test-prose', '--node-url', a.url, '--data-dir', publisherDir()]);
  assert.equal(revoked.code, 0, revoked.stderr);
  await until('B sees test-prose revoked', async () => (await viewAt(b.url, 'test-prose', API_KEY))?.status === 'revoked' || undefined);
  await until('the worker drops test-prose', async () => !workerHolds().includes('test-prose') || undefined);
});

cluster.test('the coordinator restarts and catches up; forged and altered entries are refused by every node', async () => {
  coordinator = await cluster.startCoordinatorAgain(coordinator);
  const caught = await until('the coordinator lists test-prose', () => viewAt(coordinator.url, 'test-prose'));
  assert.notEqual(caught.source, 'local', 'it came by gossip');

  // A member pushes a forgery (signed by a stranger, over an id it does not hold) and an altered copy of
  // test-code (a new version without a new signature) to the worker over the data plane.
  const held = (await viewAt(a.url, 'test-code'))!.manifest!;
  const stranger = createEphemeralIdentity();
  const { signature: _signature, ...unsigned } = held;
  const forged = signBody(stranger, { ...unsigned, version: 9, description: 'forged' }); // another key for a held id
  const altered = { ...held, version: 7, description: 'altered' }; // the publisher's signature no longer covers it
  const answer = await until('a member reaches the worker', () =>
    asMember(coordinator.url, {}, async (auth) => {
      const peer = await connect(`127.0.0.2:${worker.port}`, { session: 'forger', auth });
      try {
        const body = Buffer.from(JSON.stringify({ from: auth.identity.id, push: [forged, altered] }));
        return (await call(peer, 'directory_exchange', {}, { payload: body, timeoutMs: 5_000 })).header;
      } finally {
        peer.close();
      }
    }),
  );
  assert.deepEqual(answer, {});
  // A few rounds later nobody holds anything but version 1 of test-code.
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  for (const [name, url, key] of [['A', a.url], ['B', b.url, API_KEY], ['coordinator', coordinator.url]] as const) {
    const view = await viewAt(url, 'test-code', key);
    assert.equal(view?.version, 1, `${name}: ${JSON.stringify(view)}`);
    assert.equal(view?.manifest?.description, 'test specialist test-code', name);
  }
  // An altered manifest posted to a primary's API is refused with the reason.
  const posted = await fetch(`${a.url}/v1/specialists`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(altered) });
  assert.equal(posted.status, 400);
  assert.match(await posted.text(), /signed/);
});
