// Per-user adapters end to end, on real processes: a coordinator, one worker and a primary serving the
// bundled tiny model, driven through the official `openai` client. An operator adds a user
// (`sharedllm users add`); the user trains a norm adapter with consent (a few steps), chats with it (the
// greedy text differs from the base's), reads their audit log, exports the adapter and the merged model (which
// node-llama-cpp loads and continues greedily exactly as the primary serves the adapter), deletes it (twice:
// 404 the second time) and then themself; finally no file under the primary's data dir or cache, nor the
// worker's, holds the adapter's bytes or the training text's.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { Tokenizer } from '../../src/model/tokenizer.ts';
import { loadReference } from '../../src/model/testing/reference.ts';
import { readAdapter } from '../../src/train/adapter/index.ts';
import { Cluster, ROOT, type PrimaryHandle, until } from './harness.ts';

const MODEL = join(ROOT, 'models', 'sharedllm-tiny.gguf');
const MODEL_ID = 'sharedllm-tiny';
const ADMIN_KEY = 'integration-admin-key';
/** A made-up voice, so that its bytes can be looked for afterwards (and found nowhere). */
const MARKER = 'Quillon the lamplighter of Vennmoor counted the herons twice';
const TEXT = Array.from({ length: 24 }, (_, i) => `${MARKER} on day ${i + 1}, and each evening he wrote that the tide was kind and the harbour bells rang low over the grey water.`).join('\n');
const PROMPT = 'The harbour at night';
const N_TOKENS = 24;
/** Training steps: enough to move the gains, few enough for the suite. */
const STEPS = 8;

interface AdapterView {
  id: string;
  model: string;
  state: string;
  step: number;
  steps: number;
  error: string | null;
  consent: { purpose: string; keep_text: boolean; text_sha256: string };
}

const cluster = new Cluster();
let primary: PrimaryHandle;
let key: string;
let client: OpenAI;
let adapterId: string;
let adapterBytes: Buffer;
/** The client's own folder (downloads), inside the cluster's temp folder (removed with it). */
const scratch = join(cluster.dir, 'client');
mkdirSync(scratch);

cluster.setup(async () => {
  const coordinator = await cluster.coordinator();
  await cluster.worker('worker', { coordinatorUrl: coordinator.url, host: '127.0.0.2' });
  primary = await cluster.primary('primary', { coordinatorUrl: coordinator.url, model: MODEL, waitWorkers: 1, localLayers: 3, extra: ['--api-key', ADMIN_KEY] });
});

const primaryDataDir = () => join(cluster.dir, 'primary');
const greedy = async (model: string) => (await client.completions.create({ model, prompt: PROMPT, max_tokens: N_TOKENS, temperature: 0 })).choices[0]!.text;

cluster.test('an operator adds a user on the running node; their key works, a wrong one does not', async () => {
  const added = await cluster.run('users', ['users', 'add', 'alice', '--data-dir', primaryDataDir()]);
  assert.equal(added.code, 0, added.stderr);
  key = added.stdout.trim();
  assert.match(key, /^sllm_[A-Za-z0-9_-]{43}$/);
  client = new OpenAI({ apiKey: key, baseURL: `${primary.url}/v1`, maxRetries: 0 });
  assert.equal((await client.get<{ name: string }>('/users/me')).name, 'alice');
  const stranger = new OpenAI({ apiKey: `${key.slice(0, -4)}AAAA`, baseURL: `${primary.url}/v1`, maxRetries: 0 });
  await assert.rejects(stranger.models.list(), OpenAI.AuthenticationError);
});

cluster.test('training needs consent; with it, a background job trains the adapter', async () => {
  await assert.rejects(client.post('/adapters', { body: { name: 'voice', text: TEXT } }), (e: unknown) => e instanceof OpenAI.BadRequestError && /consent/.test(e.message));
  const created = await client.post<AdapterView>('/adapters', { body: { name: 'voice', text: TEXT, steps: STEPS, seed: 1, consent: { purpose: 'integration test: write like Quillon' } } });
  adapterId = created.id;
  assert.equal(created.model, `${MODEL_ID}@voice`);
  const done = await until('the adapter trained', async () => {
    const view = await client.get<AdapterView>(`/adapters/${adapterId}`);
    return view.state === 'ready' || view.state === 'failed' ? view : undefined;
  }, 240_000, 500);
  assert.equal(done.state, 'ready', done.error ?? '');
  assert.equal(done.step, STEPS);
  assert.equal(done.consent.keep_text, false);
  assert.deepEqual(readdirSync(join(primaryDataDir(), 'adapters', adapterId)), ['adapter.gguf'], 'the text is deleted once trained');
}, 300_000);

cluster.test('the adapter is a model of its owner: its greedy text differs from the base', async () => {
  assert.ok((await client.models.list()).data.some((m) => m.id === `${MODEL_ID}@voice`));
  const base = await greedy(MODEL_ID);
  const tuned = await greedy(`${MODEL_ID}@voice`);
  assert.notEqual(tuned, base, `the adapter changes the text: ${JSON.stringify(tuned)}`);
  const chat = await client.chat.completions.create({ model: `${MODEL_ID}@voice`, messages: [{ role: 'user', content: 'Tell me about herons.' }], max_tokens: 8, temperature: 0 });
  assert.equal(chat.model, `${MODEL_ID}@voice`);
  const admin = new OpenAI({ apiKey: ADMIN_KEY, baseURL: `${primary.url}/v1`, maxRetries: 0 });
  await assert.rejects(admin.completions.create({ model: `${MODEL_ID}@voice`, prompt: PROMPT, max_tokens: 2 }), OpenAI.NotFoundError);
});

cluster.test('the audit log shows consent, training and each request, without text', async () => {
  const audit = await client.get<{ data: { event: string; prompt_tokens?: number }[] }>('/audit');
  const events = audit.data.map((e) => e.event);
  for (const event of ['consent_given', 'training_started', 'training_finished', 'adapter_used']) assert.ok(events.includes(event), `${event} in ${events.join(', ')}`);
  assert.equal(events.filter((e) => e === 'adapter_used').length, 2);
  assert.ok(!JSON.stringify(audit).includes('harbour') && !JSON.stringify(audit).includes('herons'));
});

cluster.test('the merged export loads in node-llama-cpp and continues exactly as the primary serves the adapter', async () => {
  const download = async (query: string) => {
    const r = await fetch(`${primary.url}/v1/adapters/${adapterId}/export${query}`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(r.status, 200, await r.clone().text());
    return Buffer.from(await r.arrayBuffer());
  };
  adapterBytes = await download('');
  writeFileSync(join(scratch, 'voice.gguf'), adapterBytes);
  assert.equal(readAdapter(join(scratch, 'voice.gguf')).kind, 'norm');
  const mergedPath = join(scratch, 'merged.gguf');
  writeFileSync(mergedPath, await download('?format=merged'));
  const served = await greedy(`${MODEL_ID}@voice`);
  const tokenizer = await Tokenizer.load(mergedPath);
  const reference = await loadReference(mergedPath, 1, 256);
  try {
    const ids = await reference.greedy(tokenizer.encode(PROMPT, { addBos: tokenizer.addBosDefault }), N_TOKENS);
    const end = ids.findIndex((id) => tokenizer.isEndOfGeneration(id));
    assert.equal(served, tokenizer.decode(end < 0 ? ids : ids.slice(0, end)));
  } finally {
    await reference.dispose();
    await tokenizer.dispose();
  }
  assert.deepEqual(readdirSync(join(primaryDataDir(), 'adapters', adapterId)).filter((n) => n !== 'exports'), ['adapter.gguf']);
  assert.deepEqual(readdirSync(join(primaryDataDir(), 'adapters', adapterId, 'exports')), [], 'the derived file is deleted once sent');
}, 180_000);

cluster.test('deleting: the adapter (404 the second time), then the user; nothing of theirs is left on any node', async () => {
  assert.deepEqual(await client.delete(`/adapters/${adapterId}`), { id: adapterId, object: 'adapter.deleted', deleted: true });
  await assert.rejects(client.delete(`/adapters/${adapterId}`), OpenAI.NotFoundError);
  await assert.rejects(greedy(`${MODEL_ID}@voice`), OpenAI.NotFoundError);
  const audit = await client.get<{ data: { event: string }[] }>('/audit');
  assert.ok(audit.data.some((e) => e.event === 'adapter_deleted'));
  await client.delete('/users/me');
  await assert.rejects(client.models.list(), OpenAI.AuthenticationError);

  // Bytes to look for: a window of trained gains (absent from the base model file) and the text.
  const gains = readAdapter(join(scratch, 'voice.gguf')).tensors.get('blk.0.attn_norm.weight')!;
  const needle = Buffer.from(gains.buffer, gains.byteOffset + 64, 64);
  assert.ok(!readFileSync(MODEL).includes(needle), 'the trained gains are not in the base file');
  assert.ok(adapterBytes.includes(needle));
  const dirs = [primaryDataDir(), join(cluster.dir, 'cache-primary'), join(cluster.dir, 'worker'), join(cluster.dir, 'cache-worker')];
  const files = dirs.flatMap(filesUnder);
  assert.ok(files.length > 0);
  for (const file of files) {
    const bytes = readFileSync(file);
    assert.ok(!bytes.includes(needle), `${file} holds the adapter's bytes`);
    assert.ok(!bytes.includes(Buffer.from('lamplighter of Vennmoor')), `${file} holds the training text`);
  }
}, 60_000);

function filesUnder(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}
