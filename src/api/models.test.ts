import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { staticModels } from './models.ts';
import type { ApiServer } from './server.ts';
import { type TestModel, loadTestModel, startTestServer } from './testing.ts';

describe('API model catalog', () => {
  let model: TestModel;
  let server: ApiServer;
  before(async () => {
    model = await loadTestModel();
    // A second id over the same generator stands in for a specialist; a per-caller source for an adapter.
    const other = { id: 'other', generator: model.generator, tokenizer: model.tokenizer, nCtx: model.forward.nCtx, ownedBy: 'someone' };
    const mine = { id: `${model.modelId}@mine`, generator: model.generator, tokenizer: model.tokenizer, nCtx: model.forward.nCtx };
    server = await startTestServer(model, {
      models: [
        staticModels([other]),
        {
          list: (req) => (req.headers['x-user'] === 'me' ? [mine] : []),
          resolve: (name, req) => (name === mine.id && req.headers['x-user'] === 'me' ? mine : undefined),
        },
      ],
    });
  });
  after(async () => {
    await server.close();
    await model.dispose();
  });

  it('lists the base first, then every source, per caller', async () => {
    const anon = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'x' });
    const me = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'x', defaultHeaders: { 'x-user': 'me' } });
    assert.deepEqual((await anon.models.list()).data.map((m) => m.id), [model.modelId, 'other']);
    assert.deepEqual((await me.models.list()).data.map((m) => m.id), [model.modelId, 'other', `${model.modelId}@mine`]);
    assert.equal((await anon.models.retrieve('other')).owned_by, 'someone');
  });

  it('serves a request for any model the caller may see, and 404s the rest alike', async () => {
    const anon = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'x', maxRetries: 0 });
    const reply = await anon.completions.create({ model: 'other', prompt: 'Hello', max_tokens: 3, temperature: 0 });
    assert.equal(reply.model, 'other');
    for (const name of [`${model.modelId}@mine`, 'nope']) {
      await assert.rejects(anon.completions.create({ model: name, prompt: 'Hello', max_tokens: 3 }), (error: unknown) => {
        assert.ok(error instanceof OpenAI.NotFoundError);
        assert.match(error.message, new RegExp(`'${name}' does not exist`));
        return true;
      });
    }
  });
});
