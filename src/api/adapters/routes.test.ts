// The adapters' routes on a real API server over the test model, with the in-memory engine
// (adapters.testing.ts): users and keys, consent, bad input, jobs and their progress, serving to the owner
// only, audit, export, deletion (twice), an adapter of another base, and a restart mid-training.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { silentLogger } from '../../util/log.ts';
import type { ApiServer } from '../server.ts';
import { type TestModel, eventually, loadTestModel, startTestServer } from '../testing.ts';
import { hashUserKey, newUserKey } from '../users.ts';
import { type FakeEngine, fakeAdapterBytes, fakeEngine } from './adapters.testing.ts';
import { type Adapters, openAdapters } from './service.ts';

const ADMIN_KEY = 'admin-key-for-tests';
const TEXT = 'My grandmother kept bees behind the orchard and wrote every harvest down in a blue notebook. '.repeat(4);

interface Answer {
  status: number;
  body: Record<string, unknown> & { error?: { code: string | null; message: string } };
}

describe('adapters API', () => {
  let model: TestModel;
  let dataDir: string;
  let engine: FakeEngine;
  let adapters: Adapters;
  let server: ApiServer;
  const keys = { alice: '', bob: '' };

  const start = async () => {
    adapters = openAdapters({ dataDir, engine, base: { id: model.modelId, generator: model.generator, tokenizer: model.tokenizer, nCtx: model.forward.nCtx }, logger: silentLogger, config: { defaultSteps: 5 } });
    server = await startTestServer(model, { apiKey: ADMIN_KEY, users: adapters.users, models: [adapters.models], extraRoutes: (r) => adapters.routes(r) });
  };
  const stop = async () => {
    await server.close();
    await adapters.close();
  };
  const call = async (method: string, path: string, key: string | undefined, body?: unknown): Promise<Answer> => {
    const r = await fetch(`${server.url}${path}`, {
      method,
      headers: { ...(key === undefined ? {} : { authorization: `Bearer ${key}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await r.text();
    return { status: r.status, body: r.headers.get('content-type')?.includes('json') === true ? (JSON.parse(text) as Answer['body']) : { bytes: text } };
  };
  const train = async (key: string, body: Record<string, unknown>) => {
    const created = await call('POST', '/v1/adapters', key, { consent: { purpose: 'write like me' }, text: TEXT, ...body });
    assert.equal(created.status, 202, JSON.stringify(created.body));
    const id = String(created.body.id);
    await eventually(() => adapters.store.adapter(id)?.state === 'ready', `adapter ${id} ready`);
    return id;
  };
  const addUser = (name: keyof typeof keys) => {
    keys[name] = newUserKey();
    adapters.store.addUser(name, hashUserKey(keys[name]));
  };

  before(async () => {
    model = await loadTestModel();
    dataDir = mkdtempSync(join(tmpdir(), 'adapters-routes-'));
    engine = fakeEngine();
    await start();
    addUser('alice');
    addUser('bob');
  });
  after(async () => {
    await stop();
    await model.dispose();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('a user key identifies its user; the admin key still works; an unknown user key is a 401', async () => {
    assert.equal((await call('GET', '/v1/users/me', keys.alice)).body.name, 'alice');
    assert.equal((await call('GET', '/v1/models', ADMIN_KEY)).status, 200);
    assert.equal((await call('GET', '/v1/models', undefined)).status, 401);
    const stranger = await call('GET', '/v1/models', newUserKey());
    assert.equal(stranger.status, 401);
    assert.equal(stranger.body.error?.code, 'invalid_api_key');
    const admin = await call('POST', '/v1/adapters', ADMIN_KEY, { consent: { purpose: 'x' }, name: 'a', text: TEXT });
    assert.equal(admin.status, 403);
    assert.equal(admin.body.error?.code, 'user_key_required');
  });

  it('without consent: 400 consent_required, and nothing stored', async () => {
    for (const consent of [undefined, null, {}, { purpose: '' }, { purpose: '   ' }]) {
      const r = await call('POST', '/v1/adapters', keys.alice, { name: 'noconsent', text: TEXT, ...(consent === undefined ? {} : { consent }) });
      assert.equal(r.status, 400, JSON.stringify(consent));
      assert.equal(r.body.error?.code, 'consent_required');
    }
    assert.deepEqual(adapters.store.adaptersOf(adapters.store.userByName('alice')!.id), []);
    assert.deepEqual(readdirSync(join(dataDir, 'adapters')), []);
    assert.equal(engine.trained.length, 0);
  });

  it('refuses bad text: empty, binary, huge, shorter than one batch', async () => {
    const post = (body: Record<string, unknown>) => call('POST', '/v1/adapters', keys.alice, { name: 'bad', consent: { purpose: 'p' }, ...body });
    const cases: [Record<string, unknown>, number, string][] = [
      [{ text: '  \n\t ' }, 400, 'empty_text'],
      [{ text: `hello\u0000world ${TEXT}` }, 400, 'binary_text'],
      [{ text: `${'\u0001\u0002'.repeat(50)} ${TEXT}` }, 400, 'binary_text'],
      [{ files: [{ name: 'photo.jpg', content_base64: Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10]).toString('base64') }] }, 400, 'binary_text'],
      [{ text: 'x'.repeat((4 << 20) + 1) }, 413, 'text_too_large'],
      [{ text: 'too short' }, 400, 'text_too_short'],
    ];
    for (const [body, status, code] of cases) {
      const r = await post(body);
      assert.equal(r.status, status, `${code}: ${JSON.stringify(r.body).slice(0, 200)}`);
      assert.equal(r.body.error?.code, code);
    }
    const both = await post({ text: TEXT, files: [{ content: TEXT }] });
    assert.equal(both.status, 400);
    assert.deepEqual(readdirSync(join(dataDir, 'adapters')), []);
  });

  it('trains in the background with progress, keeps the consent record, deletes the text when done', async () => {
    engine.hold();
    const created = await call('POST', '/v1/adapters', keys.alice, { name: 'diary', consent: { purpose: 'write like me' }, files: [{ name: 'a.txt', content: TEXT }, { name: 'b.txt', content_base64: Buffer.from(TEXT).toString('base64') }] });
    assert.equal(created.status, 202);
    const id = String(created.body.id);
    assert.equal(created.body.model, `${model.modelId}@diary`);
    assert.ok(existsSync(join(dataDir, 'adapters', id, 'text.txt')), 'the text waits for its job');
    await eventually(() => adapters.store.adapter(id)?.state === 'training', 'training');
    engine.release();
    await eventually(() => adapters.store.adapter(id)?.state === 'ready', 'ready');
    const got = await call('GET', `/v1/adapters/${id}`, keys.alice);
    assert.equal(got.body.state, 'ready');
    assert.equal(got.body.step, 5);
    assert.equal(got.body.text_kept, false);
    const consent = got.body.consent as { purpose: string; keep_text: boolean; text_sha256: string };
    assert.equal(consent.purpose, 'write like me');
    assert.equal(consent.keep_text, false);
    assert.match(consent.text_sha256, /^[0-9a-f]{64}$/);
    assert.ok(!existsSync(join(dataDir, 'adapters', id, 'text.txt')), 'the text is gone after training');
    const list = await call('GET', '/v1/adapters', keys.alice);
    assert.deepEqual((list.body.data as { id: string }[]).map((a) => a.id), [id]);
    assert.equal(((await call('GET', '/v1/adapters', keys.bob)).body.data as unknown[]).length, 0);
  });

  it('keeps the text when the consent says so, and still deletes it with the adapter', async () => {
    const id = await train(keys.alice, { name: 'kept', consent: { purpose: 'p', keep_text: true } });
    assert.equal((await call('GET', `/v1/adapters/${id}`, keys.alice)).body.text_kept, true);
    assert.equal(readFileSync(join(dataDir, 'adapters', id, 'text.txt'), 'utf8'), TEXT);
    assert.equal((await call('DELETE', `/v1/adapters/${id}`, keys.alice)).status, 200);
    assert.ok(!existsSync(join(dataDir, 'adapters', id)));
  });

  it("serves <base>@<name> to its owner only; another user's adapter is a 404 everywhere", async () => {
    const id = adapters.store.adapterByName(adapters.store.userByName('alice')!.id, 'diary')!.id;
    const alice = new OpenAI({ apiKey: keys.alice, baseURL: `${server.url}/v1`, maxRetries: 0 });
    const bob = new OpenAI({ apiKey: keys.bob, baseURL: `${server.url}/v1`, maxRetries: 0 });
    const name = `${model.modelId}@diary`;
    assert.ok((await alice.models.list()).data.some((m) => m.id === name));
    assert.ok(!(await bob.models.list()).data.some((m) => m.id === name));
    const reply = await alice.chat.completions.create({ model: name, messages: [{ role: 'user', content: 'secret prompt words' }], max_tokens: 4, temperature: 0 });
    assert.equal(reply.model, name);
    await assert.rejects(bob.chat.completions.create({ model: name, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }), OpenAI.NotFoundError);
    for (const [method, path] of [['GET', `/v1/adapters/${id}`], ['DELETE', `/v1/adapters/${id}`], ['GET', `/v1/adapters/${id}/export`]] as const) {
      const r = await call(method, path, keys.bob);
      assert.equal(r.status, 404, `${method} ${path}`);
      assert.equal(r.body.error?.code, 'adapter_not_found');
      assert.equal(JSON.stringify(r.body), JSON.stringify((await call(method, path.replace(id, 'adapter_0123456789abcdef01234567'), keys.bob)).body).replace('adapter_0123456789abcdef01234567', id));
    }
    assert.equal(adapters.store.adapter(id)?.state, 'ready', "bob's DELETE did nothing");
  });

  it("the audit log shows the caller's own events, with token counts and never text", async () => {
    const events = (await call('GET', '/v1/audit', keys.alice)).body.data as { event: string; prompt_tokens?: number; completion_tokens?: number }[];
    const kinds = events.map((e) => e.event);
    for (const kind of ['consent_given', 'training_started', 'training_finished', 'adapter_used', 'adapter_deleted']) assert.ok(kinds.includes(kind), `${kind} in ${kinds.join(', ')}`);
    const used = events.find((e) => e.event === 'adapter_used')!;
    assert.ok(used.prompt_tokens! > 0 && used.completion_tokens! > 0);
    const all = JSON.stringify(events);
    assert.ok(!all.includes('secret prompt') && !all.includes('grandmother'), 'no prompt, no training text');
    assert.deepEqual((await call('GET', '/v1/audit', keys.bob)).body.data, []);
    assert.equal((await call('GET', '/v1/audit', ADMIN_KEY)).status, 403);
    assert.equal((await call('GET', '/v1/audit?limit=0', keys.alice)).status, 400);
  });

  it('exports the adapter file, and a merged model that is deleted once sent', async () => {
    const id = adapters.store.adapterByName(adapters.store.userByName('alice')!.id, 'diary')!.id;
    const plain = await fetch(`${server.url}/v1/adapters/${id}/export`, { headers: { authorization: `Bearer ${keys.alice}` } });
    assert.equal(plain.status, 200);
    assert.deepEqual(Buffer.from(await plain.arrayBuffer()), readFileSync(join(dataDir, 'adapters', id, 'adapter.gguf')));
    assert.match(plain.headers.get('content-disposition') ?? '', /attachment; filename="diary.gguf"/);
    const merged = await fetch(`${server.url}/v1/adapters/${id}/export?format=merged`, { headers: { authorization: `Bearer ${keys.alice}` } });
    assert.equal(Buffer.from(await merged.arrayBuffer()).subarray(0, 6).toString(), 'MERGED');
    await eventually(() => engine.exported.every((p) => !existsSync(p)), 'the derived file deleted');
    assert.equal((await call('GET', `/v1/adapters/${id}/export?format=lora`, keys.alice)).status, 400);
    assert.equal((await call('GET', `/v1/adapters/${id}/export?format=zip`, keys.alice)).status, 400);
    const events = (await call('GET', '/v1/audit', keys.alice)).body.data as { event: string; format?: string }[];
    assert.deepEqual(events.filter((e) => e.event === 'adapter_exported').map((e) => e.format), ['adapter', 'merged']);
  });

  it('a lora adapter is not served per request (400 to its owner, 404 to others) and exports as a LoRA', async () => {
    const id = await train(keys.bob, { name: 'lowrank', kind: 'lora', rank: 2 });
    assert.equal((await call('GET', `/v1/adapters/${id}`, keys.bob)).body.rank, 2);
    const bob = new OpenAI({ apiKey: keys.bob, baseURL: `${server.url}/v1`, maxRetries: 0 });
    assert.ok(!(await bob.models.list()).data.some((m) => m.id.endsWith('@lowrank')));
    assert.equal((await call('POST', '/v1/completions', keys.bob, { model: `${model.modelId}@lowrank`, prompt: 'Hi', max_tokens: 2 })).body.error?.code, 'adapter_not_servable');
    assert.equal((await call('POST', '/v1/completions', keys.alice, { model: `${model.modelId}@lowrank`, prompt: 'Hi', max_tokens: 2 })).status, 404);
    const lora = await fetch(`${server.url}/v1/adapters/${id}/export`, { headers: { authorization: `Bearer ${keys.bob}` } });
    assert.equal(Buffer.from(await lora.arrayBuffer()).subarray(0, 4).toString(), 'LORA');
    assert.match(lora.headers.get('content-disposition') ?? '', /lowrank\.lora\.gguf/);
  });

  it('refuses an adapter file made for another base, naming both hashes', async () => {
    const id = await train(keys.bob, { name: 'foreign' });
    const other = `sha256:${'cd'.repeat(32)}`;
    writeFileSync(join(dataDir, 'adapters', id, 'adapter.gguf'), fakeAdapterBytes(other, TEXT));
    const bob = new OpenAI({ apiKey: keys.bob, baseURL: `${server.url}/v1`, maxRetries: 0 });
    await assert.rejects(bob.completions.create({ model: `${model.modelId}@foreign`, prompt: 'Hello', max_tokens: 2 }), (error: unknown) => {
      assert.ok(error instanceof OpenAI.APIError && error.status === 409, String(error));
      assert.ok(error.message.includes(other) && error.message.includes(engine.baseHash), error.message);
      return true;
    });
    const merged = await call('GET', `/v1/adapters/${id}/export?format=merged`, keys.bob);
    assert.equal(merged.status, 409);
    assert.equal(merged.body.error?.code, 'adapter_base_mismatch');
    assert.deepEqual(readdirSync(join(dataDir, 'adapters', id, 'exports')), [], 'nothing derived is left');
  });

  it('deletes an adapter with its files, cached gains and consent record; the second time is a 404', async () => {
    const id = adapters.store.adapterByName(adapters.store.userByName('alice')!.id, 'diary')!.id;
    const first = await call('DELETE', `/v1/adapters/${id}`, keys.alice);
    assert.deepEqual(first.body, { id, object: 'adapter.deleted', deleted: true });
    const second = await call('DELETE', `/v1/adapters/${id}`, keys.alice);
    assert.equal(second.status, 404);
    assert.ok(!existsSync(join(dataDir, 'adapters', id)));
    assert.equal(adapters.store.adapter(id), undefined);
    assert.ok(adapters.store.deletions().some((d) => d.what === 'adapter' && d.subject === id));
    const alice = new OpenAI({ apiKey: keys.alice, baseURL: `${server.url}/v1`, maxRetries: 0 });
    await assert.rejects(alice.completions.create({ model: `${model.modelId}@diary`, prompt: 'Hello', max_tokens: 2 }), OpenAI.NotFoundError);
  });

  it('deletes an adapter while it trains: the job stops, nothing is left', async () => {
    engine.hold();
    const created = await call('POST', '/v1/adapters', keys.alice, { name: 'midway', consent: { purpose: 'p' }, text: TEXT });
    const id = String(created.body.id);
    await eventually(() => adapters.store.adapter(id)?.state === 'training', 'training');
    assert.equal((await call('DELETE', `/v1/adapters/${id}`, keys.alice)).status, 200);
    engine.release();
    assert.ok(!existsSync(join(dataDir, 'adapters', id)));
  });

  it('a restart mid-training resumes the job when its text is there, and fails it visibly when not', async () => {
    engine.hold();
    const a = String((await call('POST', '/v1/adapters', keys.alice, { name: 'resumes', consent: { purpose: 'p' }, text: TEXT })).body.id);
    const b = String((await call('POST', '/v1/adapters', keys.alice, { name: 'lost', consent: { purpose: 'p' }, text: TEXT })).body.id);
    await eventually(() => adapters.store.adapter(a)?.state === 'training', 'training');
    await stop();
    engine.release();
    rmSync(join(dataDir, 'adapters', b, 'text.txt'));
    writeFileSync(join(dataDir, 'adapters', a, 'adapter.gguf.0123.tmp'), 'half an adapter');
    await start();
    assert.ok(!existsSync(join(dataDir, 'adapters', a, 'adapter.gguf.0123.tmp')), 'temp files of the old run are gone');
    await eventually(() => adapters.store.adapter(a)?.state === 'ready', 'resumed job ready');
    const lost = await call('GET', `/v1/adapters/${b}`, keys.alice);
    assert.equal(lost.body.state, 'failed');
    assert.match(String(lost.body.error), /interrupted by a restart.*text is gone/);
  });

  it('DELETE /v1/users/me removes the user, their adapters, texts and audit log; their key stops working', async () => {
    const id = await train(keys.bob, { name: 'mine', consent: { purpose: 'p', keep_text: true } });
    const userId = adapters.store.userByName('bob')!.id;
    assert.equal((await call('DELETE', '/v1/users/me', keys.bob)).status, 200);
    assert.equal((await call('GET', '/v1/users/me', keys.bob)).status, 401);
    assert.ok(!existsSync(join(dataDir, 'adapters', id)));
    assert.deepEqual(adapters.store.auditOf(userId, 0, 100), []);
    assert.ok(adapters.store.deletions().some((d) => d.what === 'user' && d.subject === userId));
    // Nothing of bob's text is anywhere under the data dir (the db included).
    for (const file of filesUnder(dataDir)) assert.ok(!readFileSync(file).includes(Buffer.from('grandmother kept bees')), file);
  });
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}
