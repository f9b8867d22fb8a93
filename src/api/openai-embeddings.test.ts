// /v1/embeddings through the official `openai` client: mean-pooled final hidden states after the final
// norm, checked against the hidden states of a head-less part of the same model, normed and pooled here.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { loadModelPart } from '../model/load.ts';
import type { ModelPart } from '../model/model-part.ts';
import { OUTPUT_NORM } from '../model/tensors.ts';
import type { ApiServer } from './server.ts';
import { type TestModel, loadTestModel, startTestServer } from './testing.ts';

let model: TestModel;
let server: ApiServer;
let client: OpenAI;
let trunk: ModelPart;

before(async () => {
  model = await loadTestModel();
  server = await startTestServer(model);
  client = new OpenAI({ apiKey: 'unused', baseURL: `${server.url}/v1`, maxRetries: 0 });
  // Embeddings and every layer, no head: its step returns the last layer's hidden states, before the norm.
  trunk = (await loadModelPart(model.path, { nCtx: 256, gpu: 'off', layout: { head: false } })).part;
});

after(async () => {
  await server?.close();
  trunk?.dispose();
  await model?.dispose();
});

/** The expected vector: RMS norm with the output norm's gain, per token; mean; unit length. */
function referenceEmbedding(text: string): Float64Array {
  const ids = model.tokenizer.encode(text, { addBos: model.tokenizer.addBosDefault });
  const seq = trunk.openSequence();
  let hidden: Float32Array;
  try {
    hidden = trunk.step([{ seq, tokens: Int32Array.from(ids) }]).hidden!;
  } finally {
    trunk.closeSequence(seq);
  }
  const { nEmbd, rmsEps } = trunk.h;
  const gain = model.part.norms.get(OUTPUT_NORM)!;
  const mean = new Float64Array(nEmbd);
  for (let t = 0; t < ids.length; t++) {
    const row = hidden.subarray(t * nEmbd, (t + 1) * nEmbd);
    const rms = Math.sqrt(row.reduce((s, x) => s + x * x, 0) / nEmbd + rmsEps);
    for (let i = 0; i < nEmbd; i++) mean[i]! += ((row[i]! / rms) * gain[i]!) / ids.length;
  }
  const norm = Math.sqrt(mean.reduce((s, x) => s + x * x, 0));
  return mean.map((x) => x / norm);
}

function largestDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

describe('embeddings', () => {
  test('mean-pooled final normed hidden states, unit length, base64 (the client default) and float', async () => {
    const inputs = ['The quick brown fox', 'Hello there, how are you today?'];
    const res = await client.embeddings.create({ model: model.modelId, input: inputs });
    assert.equal(res.object, 'list');
    assert.equal(res.data.length, 2);
    const promptTokens = inputs.reduce((n, t) => n + model.tokenizer.encode(t, { addBos: model.tokenizer.addBosDefault }).length, 0);
    assert.deepEqual(res.usage, { prompt_tokens: promptTokens, total_tokens: promptTokens });
    for (const [i, text] of inputs.entries()) {
      const got = res.data[i]!;
      assert.equal(got.index, i);
      assert.equal(got.embedding.length, model.part.h.nEmbd);
      const diff = largestDifference(got.embedding, referenceEmbedding(text));
      console.log(`embedding ${i}: largest difference from the reference ${diff.toExponential(2)}`);
      assert.ok(diff < 2e-3, `embedding ${i} differs from the reference by ${diff}`);
    }
    const floats = await client.embeddings.create({ model: model.modelId, input: inputs[0]!, encoding_format: 'float' });
    assert.ok(largestDifference(floats.data[0]!.embedding, res.data[0]!.embedding) < 1e-6);
  });

  test('token-id input equals text input; alongside a generation, both stay right', async () => {
    const text = 'Once upon a time';
    const ids = model.tokenizer.encode(text, { addBos: model.tokenizer.addBosDefault });
    const reference = await model.generator.complete(ids, { temperature: 0, maxTokens: 6 });
    const [byIds, , completion] = await Promise.all([
      client.embeddings.create({ model: model.modelId, input: [ids], encoding_format: 'float' }),
      client.embeddings.create({ model: model.modelId, input: text, encoding_format: 'float' }),
      client.completions.create({ model: model.modelId, prompt: text, max_tokens: 6, temperature: 0 }),
    ]);
    assert.ok(largestDifference(byIds.data[0]!.embedding, referenceEmbedding(text)) < 2e-3);
    assert.equal(completion.choices[0]!.text, reference.text);
    assert.equal(model.forward.open.size, 0, 'every sequence is closed');
  });

  test("one step mixing a 'pooled' group and a 'last' group gives what separate steps give", () => {
    const a = Int32Array.from(model.tokenizer.encode('The quick brown fox', { addBos: true }));
    const b = Int32Array.from(model.tokenizer.encode('What is 2+2?', { addBos: true }));
    const run = (inputs: { tokens: Int32Array; logits: 'pooled' | 'last' }[]) => {
      const seqs = inputs.map(() => model.part.openSequence());
      try {
        return model.part.step(inputs.map((inp, i) => ({ seq: seqs[i]!, ...inp }))).logits.map((rows) => rows[0]!);
      } finally {
        for (const s of seqs) model.part.closeSequence(s);
      }
    };
    const [pooledAlone] = run([{ tokens: a, logits: 'pooled' }]);
    const [logitsAlone] = run([{ tokens: b, logits: 'last' }]);
    const [logitsMixed, pooledMixed] = run([
      { tokens: b, logits: 'last' },
      { tokens: a, logits: 'pooled' },
    ]);
    assert.equal(pooledMixed!.length, model.part.h.nEmbd);
    assert.equal(logitsMixed!.length, model.part.h.nVocab);
    assert.ok(largestDifference(pooledMixed!, pooledAlone!) < 1e-3);
    assert.ok(largestDifference(logitsMixed!, logitsAlone!) < 1e-2);
  });

  test('bad inputs are 400s', async () => {
    await assert.rejects(client.embeddings.create({ model: model.modelId, input: '' }), OpenAI.BadRequestError);
    await assert.rejects(client.embeddings.create({ model: model.modelId, input: [] }), OpenAI.BadRequestError);
    await assert.rejects(client.embeddings.create({ model: model.modelId, input: 'x', dimensions: 3 }), OpenAI.BadRequestError);
    await assert.rejects(client.embeddings.create({ model: model.modelId, input: [[1, 10_000_000]] }), OpenAI.BadRequestError);
    await assert.rejects(client.embeddings.create({ model: model.modelId, input: 'hi '.repeat(400) }), OpenAI.BadRequestError);
    await assert.rejects(client.embeddings.create({ model: 'other', input: 'x' }), OpenAI.NotFoundError);
  });
});
