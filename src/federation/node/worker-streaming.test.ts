// Spans streamed to a worker that has no copy of the model: a primary that streams tampered weights (with a
// manifest that matches them, so the per-tensor hashes cannot catch it) poisons only its own copy. Another
// primary of the same model gets the span streamed afresh from itself, never the tampered cache, and its
// output equals the genuine span run locally.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadModelPart } from '../../model/load.ts';
import { cachedModel } from '../../model/testing/cached-model.ts';
import { SHAPES } from '../../model/testing/make-model.ts';
import { silentLogger } from '../../util/log.ts';
import { mulberry32 } from '../../util/random.ts';
import { call, defineMethods, notify } from '../dataplane.ts';
import { createEphemeralIdentity, fingerprint } from '../identity.ts';
import type { Identity } from '../identity.ts';
import { connect, listen } from '../transport/rpc.ts';
import { StaticMembership } from './membership.ts';
import { hashFile, sha256 } from './model-hash.ts';
import { SpanServer } from './span-source.ts';
import { WorkerService } from './worker-service.ts';

const model = cachedModel({ shape: { ...SHAPES.smollm2, tiedEmbeddings: false }, nLayer: 4, type: 'Q8_0', seed: 1 });
const N_EMBD = SHAPES.smollm2.nEmbd;
const dir = mkdtempSync(join(tmpdir(), 'sharedllm-stream-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a tampered stream is cached under its sender only; another primary streams its own genuine copy', async () => {
  const modelHash = hashFile(model, dir);
  const span = { modelHash, first: 2, last: 4 };
  const membership = new StaticMembership();
  const workerId = createEphemeralIdentity();
  const service = new WorkerService({ nodeId: workerId.id, identity: workerId, membership, cacheDir: join(dir, 'worker'), threads: 1, gpu: 'off', logger: silentLogger, spanIdleMs: 60_000 });
  const server = await listen({ host: '127.0.0.1', port: 0, methods: service.methods(), session: 'w', auth: service.auth() });
  service.attach(server);
  const reference = (await loadModelPart(model, { gpu: 'off', threads: 1, nCtx: 64, layout: { embeddings: false, first: 2, last: 4, head: false } })).part;
  const files = new SpanServer(model, modelHash);

  /** A primary streaming from `files`; `tamper` flips every weight byte of the tensors it serves. */
  async function primary(identity: Identity, tamper: boolean) {
    membership.add({ nodeId: identity.id, publicKey: identity.publicKey, role: 'primary', addrs: [], models: [modelHash] });
    const bytes = (name: string) => {
      const genuine = files.tensor(modelHash, name);
      return tamper ? genuine.map((b) => b ^ 0x5a) : genuine;
    };
    let result: ((hidden: Float32Array) => void) | undefined;
    const peer = await connect(`127.0.0.1:${server.port}`, {
      session: identity.id,
      auth: { identity },
      methods: defineMethods({
        span_manifest: (h) => {
          const m = files.manifest(h);
          return { header: { ...m, tensors: m.tensors.map((t) => ({ ...t, sha256: sha256(bytes(t.name)) })) } };
        },
        span_tensor: (h) => ({ header: { ok: true }, payload: bytes(h.name) }),
        step_result: (_h, { payload }) => result?.(new Float32Array(payload.buffer.slice(payload.byteOffset, payload.byteOffset + payload.byteLength))),
      }),
    });
    const step = (hidden: Float32Array) => {
      const done = new Promise<Float32Array>((resolve) => (result = resolve));
      notify(peer, 'step', { session: identity.id, stepId: 1, span, groups: [{ seq: 1, n: hidden.length / N_EMBD }], nEmbd: N_EMBD, route: [] }, new Uint8Array(hidden.buffer));
      return done;
    };
    return { peer, step };
  }

  try {
    const rnd = mulberry32(7);
    const hidden = Float32Array.from({ length: 2 * N_EMBD }, () => rnd() * 2 - 1);
    const evilId = createEphemeralIdentity();
    const evil = await primary(evilId, true);
    assert.equal((await call(evil.peer, 'load_span', { ...span, nCtx: 64, nSeqMax: 1 })).header.source, 'stream');

    const honestId = createEphemeralIdentity();
    const honest = await primary(honestId, false);
    assert.equal((await call(honest.peer, 'load_span', { ...span, nCtx: 64, nSeqMax: 1 })).header.source, 'stream', 'not the tampered span, neither from memory nor from disk');
    await call(honest.peer, 'open_seq', { ...span, seq: 1 });
    const ref = reference.openSequence();
    assert.deepEqual(await honest.step(hidden), reference.step([{ seq: ref, hidden }]).hidden, 'the honest primary gets the genuine weights');

    const cached = readdirSync(join(dir, 'worker', 'spans')).filter((f) => f.endsWith('.gguf')).sort();
    assert.deepEqual(cached, [fingerprint(evilId.publicKey), fingerprint(honestId.publicKey)].map((fp) => `${modelHash}-2-4-${fp}.gguf`).sort(), 'one cache file per streaming primary');
    evil.peer.close();
    honest.peer.close();
  } finally {
    await server.close();
    service.dispose();
    reference.dispose();
    files.dispose();
  }
});
