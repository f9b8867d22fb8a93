// drain(): the API's part of an orderly shutdown (SIGTERM on a primary). New requests get 503 at once, a
// request waiting for a slot is refused, a stream that ends within the grace period ends normally, one that
// does not is ended with an SSE error frame; then the server closes with every sequence freed.
// Over a stub Forward that takes a few milliseconds a step, so "a long stream" is long whatever the CPU.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import { Batcher, type Forward } from '../model/batcher.ts';
import { Generator } from '../model/generator.ts';
import { Tokenizer } from '../model/tokenizer.ts';
import { silentLogger } from '../util/log.ts';
import { type ApiServer, createApiServer } from './server.ts';
import { cachedTestModel, eventually } from './testing.ts';

const MODEL_ID = 'drain-model';
/** Each step waits this long, so a 2000-token answer outlasts any grace period below. */
const STEP_MS = 5;

let tokenizer: Tokenizer;
const open = new Set<number>();

function slowForward(nVocab: number): Forward {
  let next = 0;
  return {
    nVocab,
    nCtx: 4096,
    openSequence: () => {
      open.add(next);
      return next++;
    },
    closeSequence: (seq) => {
      open.delete(seq);
    },
    step: async (inputs) => {
      await new Promise((r) => setTimeout(r, STEP_MS));
      return {
        logits: inputs.map(() => {
          const row = new Float32Array(nVocab);
          row[400] = 1e4; // an ordinary token, never the end
          return [row];
        }),
      };
    },
  };
}

before(async () => {
  tokenizer = await Tokenizer.load(cachedTestModel());
});

after(async () => {
  await tokenizer?.dispose();
});

function startServer(): Promise<ApiServer> {
  const generator = new Generator(new Batcher(slowForward(tokenizer.vocabSize)), tokenizer);
  return createApiServer({ generator, tokenizer, modelId: MODEL_ID, host: '127.0.0.1', port: 0, logger: silentLogger, maxConcurrent: 1, maxQueued: 2 });
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** POST a completion; resolves with the whole reply. `started` resolves at the first bytes of the body. */
function complete(server: ApiServer, body: object): { reply: Promise<Reply>; started: Promise<void> } {
  let markStarted: () => void = () => {};
  const started = new Promise<void>((resolve) => (markStarted = resolve));
  const reply = new Promise<Reply>((resolve, reject) => {
    const req = request(`${server.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => {
        text += d.toString();
        markStarted();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(JSON.stringify({ model: MODEL_ID, prompt: 'Once upon a time', temperature: 0, ...body }));
  });
  return { reply, started };
}

test('a stream that ends within the grace period ends normally; new requests meanwhile get 503', async () => {
  const server = await startServer();
  const short = complete(server, { max_tokens: 10, stream: true });
  await short.started;
  const drained = server.drain(60_000);
  const refused = await complete(server, { max_tokens: 2 }).reply;
  assert.equal(refused.status, 503);
  assert.equal(refused.headers.connection, 'close');
  assert.match(refused.text, /"message":"the server is shutting down; retry against another primary node","type":"unavailable_error"/);
  const finished = await short.reply;
  assert.ok(finished.text.endsWith('data: [DONE]\n\n'), finished.text.slice(-200));
  await drained;
  assert.equal(open.size, 0);
});

test('past the grace period a stream gets an error frame, a waiting request 503; every sequence is closed', async () => {
  const server = await startServer();
  const long = complete(server, { max_tokens: 2000, stream: true });
  await long.started;
  const waiting = complete(server, { max_tokens: 2 });
  await eventually(() => open.size === 1, 'the long stream holds the only slot');
  await server.drain(100);
  const [streamed, queued] = await Promise.all([long.reply, waiting.reply]);
  assert.equal(queued.status, 503);
  assert.match(streamed.text, /data: \{"error":\{"message":"the server is shutting down[^"]*","type":"unavailable_error"/);
  assert.ok(!streamed.text.includes('[DONE]'));
  assert.equal(open.size, 0);
});
