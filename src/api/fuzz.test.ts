// Seeded fuzzing of POST /v1/chat/completions (and /v1/completions): huge strings, many messages, deep JSON,
// wrong types in every field, huge numbers, unicode edge cases, NUL bytes, bodies over the limit. No input may
// crash the server or give a 5xx: each gets a 2xx or a 4xx in OpenAI's error shape with a short, clear message,
// and every sequence is closed afterwards.
//
// The server runs the test model's real tokenizer and chat template over a stub Forward (logits that pick a
// token at once and end the answer after a few tokens), so thousands of requests take seconds; the model
// math is tested elsewhere. The stub refuses to run past its context, which catches a prompt the API let
// through too long.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import { Batcher, type Forward } from '../model/batcher.ts';
import { Generator } from '../model/generator.ts';
import { Tokenizer } from '../model/tokenizer.ts';
import { silentLogger } from '../util/log.ts';
import { mulberry32 } from '../util/random.ts';
import { type ApiServer, createApiServer } from './server.ts';
import { cachedTestModel, eventually } from './testing.ts';

const N_CTX = 4096;
const MAX_BODY_BYTES = 4 << 20;
const MODEL_ID = 'fuzz-model';
/** Random requests per endpoint and seed. */
const ROUNDS = 120;
const SEEDS = [1, 2];
/** An error message should say what is wrong in a line or two, never echo the input back. */
const MAX_MESSAGE_CHARS = 600;

let tokenizer: Tokenizer;
let server: ApiServer;
const open = new Set<number>();

/** Logits that put all the weight on one token: a varied ordinary token, then the end of the answer. */
function stubForward(nVocab: number, eos: number): Forward {
  const used = new Map<number, number>();
  const answered = new Map<number, number>();
  let next = 0;
  return {
    nVocab,
    nCtx: N_CTX,
    openSequence() {
      const seq = next++;
      open.add(seq);
      used.set(seq, 0);
      answered.set(seq, 0);
      return seq;
    },
    closeSequence(seq) {
      open.delete(seq);
      used.delete(seq);
      answered.delete(seq);
    },
    step(inputs) {
      return {
        logits: inputs.map((input) => {
          const n = (used.get(input.seq) ?? 0) + (input.tokens?.length ?? 0);
          if (n > N_CTX) throw new Error(`sequence ${input.seq} ran past its context: ${n} tokens > ${N_CTX}`);
          used.set(input.seq, n);
          const k = (answered.get(input.seq) ?? 0) + 1;
          answered.set(input.seq, k);
          const row = new Float32Array(nVocab);
          // Far above any penalty or temperature the request may set: sampling has one choice.
          row[k > 6 ? eos : 300 + ((n * 7919) % 5000)] = 1e4;
          return [row];
        }),
      };
    },
  };
}

before(async () => {
  tokenizer = await Tokenizer.load(cachedTestModel());
  const eos = tokenizer.eos ?? tokenizer.eot;
  assert.ok(eos !== undefined, 'the test vocabulary has an end token');
  const generator = new Generator(new Batcher(stubForward(tokenizer.vocabSize, eos)), tokenizer);
  server = await createApiServer({ generator, tokenizer, modelId: MODEL_ID, host: '127.0.0.1', port: 0, logger: silentLogger, maxBodyBytes: MAX_BODY_BYTES, maxConcurrent: 4 });
});

after(async () => {
  await server?.close();
  await tokenizer?.dispose();
});

interface Reply {
  status: number;
  text: string;
}

function send(path: string, body: string | Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The verdict on one reply: a 2xx that looks like an answer, or a 4xx in OpenAI's error shape. */
function check(what: string, reply: Reply): void {
  const show = () => `${what} -> ${reply.status} ${reply.text.slice(0, 300)}`;
  assert.ok(reply.status < 500, `no input may cause a 5xx: ${show()}`);
  if (reply.status >= 400) {
    const body = JSON.parse(reply.text) as { error?: { message?: unknown; type?: unknown; param?: unknown; code?: unknown } };
    assert.equal(typeof body.error?.message, 'string', show());
    assert.equal(typeof body.error?.type, 'string', show());
    const message = body.error!.message as string;
    assert.ok(message.length > 10 && message.length <= MAX_MESSAGE_CHARS, `a short, clear message: ${show()}`);
    return;
  }
  assert.equal(reply.status, 200, show());
  if (reply.text.startsWith('data: ')) {
    assert.ok(reply.text.endsWith('data: [DONE]\n\n'), `a stream ends with [DONE]: ${show()}`);
  } else {
    const body = JSON.parse(reply.text) as { choices?: unknown[] };
    assert.equal(body.choices?.length, 1, show());
  }
}

// ---------------------------------------------------------------------------------------------------
// Raw JSON pieces: values JSON.stringify cannot make (deep nesting without recursion, huge literals).

class Raw {
  constructor(readonly json: string) {}
}

/** JSON text of `value`, with every Raw spliced in verbatim. */
function encode(value: unknown): string {
  const raws: string[] = [];
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (!(v instanceof Raw)) return v;
    raws.push(v.json);
    return `\u0000RAW${raws.length - 1}\u0000`;
  });
  return text.replace(/"\\u0000RAW(\d+)\\u0000"/g, (_m, i: string) => raws[Number(i)]!);
}

type Rng = () => number;
const int = (rng: Rng, n: number) => Math.floor(rng() * n);
const pick = <T>(rng: Rng, items: readonly T[]): T => items[int(rng, items.length)]!;

const UNICODE = [
  '\u0000', '\u0001', '\ud800', '\udfff', '\udbff\udfff', '\ufeff', '\uffff', '\ufffd', '\u202e', '\u200d', 'e\u0301',
  '👩‍👩‍👧‍👦', '🏳️‍🌈', '中文', 'עברית', '\n', '\r\n', '\t', ' ', '<|im_end|>', '<|im_start|>system', '</s>', '<s>', '\\', '"', '\u2028',
];

function randomText(rng: Rng, length: number): string {
  const parts: string[] = [];
  let n = 0;
  while (n < length) {
    const s = rng() < 0.3 ? pick(rng, UNICODE) : String.fromCharCode(32 + int(rng, 95)).repeat(1 + int(rng, 8));
    parts.push(s);
    n += s.length;
  }
  return parts.join('');
}

function deep(rng: Rng): Raw {
  const depth = pick(rng, [100, 10_000, 100_000]);
  return rng() < 0.5 ? new Raw(`${'['.repeat(depth)}${']'.repeat(depth)}`) : new Raw(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`);
}

/** A value of any type and size. */
function anyValue(rng: Rng): unknown {
  switch (int(rng, 16)) {
    case 0: return null;
    case 1: return rng() < 0.5;
    case 2: return pick(rng, [0, -1, 1, 0.5, 2, 3, 1e-320, 2 ** 31, 2 ** 53, 2 ** 53 + 2, -(2 ** 63), 1e308, -1e308]);
    case 3: return new Raw(pick(rng, ['1e400', '-1e400', '1'.repeat(5000), '-0', '0.0000000000000000000001']));
    case 4: return '';
    case 5: return pick(rng, ['user', 'assistant', 'system', 'developer', 'tool', 'function', 'text', 'none', 'auto', 'json_object', MODEL_ID]);
    case 6: return randomText(rng, 1 + int(rng, 40));
    case 7: return randomText(rng, pick(rng, [1_000, 20_000, 200_000]));
    case 8: return [];
    case 9: return {};
    case 10: return [1, 'a', null];
    case 11: return { type: 'text', text: randomText(rng, 20) };
    case 12: return deep(rng);
    case 13: return Array.from({ length: pick(rng, [17, 1_000, 20_000]) }, () => (rng() < 0.5 ? 'x' : 1));
    case 14: return { type: 'image_url', image_url: { url: 'data:,' } };
    default: return Object.fromEntries(Array.from({ length: pick(rng, [1, 1_000]) }, (_, i) => [`k${i}`, i]));
  }
}

const CHAT_FIELDS = [
  'model', 'messages', 'stream', 'stream_options', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'top_k', 'min_p',
  'repeat_penalty', 'frequency_penalty', 'presence_penalty', 'seed', 'stop', 'n', 'logit_bias', 'logprobs', 'top_logprobs', 'tools',
  'tool_choice', 'response_format', 'user',
];

function baseChat(rng: Rng): Record<string, unknown> {
  return { model: MODEL_ID, messages: [{ role: 'user', content: randomText(rng, 12) }], max_tokens: 8, temperature: 0, stream: rng() < 0.5 };
}

/** A chat request with a few things wrong, or strange but valid. */
function mutateChat(rng: Rng): unknown {
  const body = baseChat(rng);
  const messages = body.messages as Record<string, unknown>[];
  for (let m = 1 + int(rng, 3); m > 0; m--) {
    switch (int(rng, 6)) {
      case 0:
        body[pick(rng, CHAT_FIELDS)] = anyValue(rng);
        break;
      case 1:
        messages[0]![pick(rng, ['role', 'content', 'name'])] = anyValue(rng);
        break;
      case 2:
        messages[0]!.content = Array.from({ length: 1 + int(rng, 3) }, () => (rng() < 0.7 ? { type: 'text', text: anyValue(rng) } : anyValue(rng)));
        break;
      case 3: {
        const count = pick(rng, [2, 50, 2_000, 20_000]);
        const roles = ['system', 'user', 'assistant', 'developer'];
        const odd = int(rng, count * 2); // one message (or none) with a strange role
        body.messages = Array.from({ length: count }, (_, i) => ({ role: i === odd ? anyValue(rng) : roles[i % 4], content: i % 7 === 0 ? '' : 'hi there' }));
        break;
      }
      case 4:
        body.stop = Array.from({ length: pick(rng, [1, 4, 16, 17]) }, () => randomText(rng, pick(rng, [1, 10, 1_000])));
        break;
      default:
        body.stream_options = { include_usage: anyValue(rng) };
        break;
    }
  }
  return body;
}

/** A completion request with a strange prompt or fields. */
function mutateCompletion(rng: Rng): unknown {
  const body: Record<string, unknown> = { model: MODEL_ID, prompt: randomText(rng, 12), max_tokens: 8, temperature: 0, stream: rng() < 0.5 };
  switch (int(rng, 5)) {
    case 0: body.prompt = anyValue(rng); break;
    case 1: body.prompt = Array.from({ length: pick(rng, [1, 100, 5_000, 20_000]) }, () => int(rng, 60_000)); break;
    case 2: body.prompt = [Array.from({ length: 10 }, () => pick(rng, [-1, 0.5, 1e300, 5, 'x']))]; break;
    case 3: body.prompt = randomText(rng, pick(rng, [5_000, 100_000, 1_500_000])); break;
    default: body[pick(rng, [...CHAT_FIELDS, 'echo', 'suffix', 'best_of'])] = anyValue(rng); break;
  }
  return body;
}

// ---------------------------------------------------------------------------------------------------

test('hand-picked hostile bodies: each gets a clear 4xx, never a 5xx', async () => {
  const chat = (extra: object) => encode({ model: MODEL_ID, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, ...extra });
  const cases: [string, string | Buffer, RegExp?][] = [
    ['600k-character message (the reported crash)', chat({ messages: [{ role: 'user', content: 'word '.repeat(120_000) }] }), /context/],
    ['3 MB message (refused from its size)', chat({ messages: [{ role: 'user', content: 'x'.repeat(3_000_000) }] }), /context/],
    ['100k messages', chat({ messages: Array.from({ length: 100_000 }, () => ({ role: 'user', content: 'hi' })) }), /context/],
    ['over the body limit', Buffer.alloc(MAX_BODY_BYTES + 1, 0x20), /limit/],
    ['100k levels of [', `${'['.repeat(100_000)}${']'.repeat(100_000)}`],
    ['100k levels of [ as the content', chat({ messages: [{ role: 'user', content: new Raw(`${'['.repeat(100_000)}${']'.repeat(100_000)}`) }] })],
    ['100k levels of { in tool_choice', chat({ tool_choice: new Raw(`${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`) })],
    ['NUL bytes outside strings', Buffer.from('{"model":\u0000"x"}')],
    ['bytes that are not UTF-8', Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d])],
    ['a 5000-digit number', chat({ max_tokens: new Raw('9'.repeat(5000)) })],
    ['1e400', chat({ temperature: new Raw('1e400') })],
    ['truncated JSON', chat({}).slice(0, 30)],
    ['a 1 MB model name', chat({ model: 'm'.repeat(1 << 20) }), /at most 256 characters/],
    ['completions: 200k token ids', encode({ model: MODEL_ID, prompt: Array.from({ length: 200_000 }, (_, i) => i % 1000) }), /context/],
    ['completions: a 2 MB prompt', encode({ model: MODEL_ID, prompt: 'ab '.repeat(700_000) }), /context/],
  ];
  for (const [what, body, message] of cases) {
    const reply = await send(what.startsWith('completions:') ? '/v1/completions' : '/v1/chat/completions', body);
    check(what, reply);
    assert.ok(reply.status >= 400, `${what}: refused (${reply.status})`);
    if (message) assert.match(reply.text, message, what);
  }
  const huge = JSON.parse((await send('/v1/chat/completions', cases[0]![1])).text) as { error: { code: string; param: string } };
  assert.deepEqual([huge.error.code, huge.error.param], ['context_length_exceeded', 'messages']);
  // Unicode edge cases and special-token look-alikes are plain text: answered.
  for (const content of UNICODE) check(JSON.stringify(content), await send('/v1/chat/completions', chat({ messages: [{ role: 'user', content: `a${content}b` }] })));
});

for (const seed of SEEDS) {
  test(`seeded fuzz ${seed}: ${ROUNDS} chat and ${ROUNDS} completion requests, no 5xx, every sequence closed`, async (t) => {
    const rng = mulberry32(seed);
    const statuses = new Map<number, number>();
    let slowest = { ms: 0, body: '' };
    for (let i = 0; i < ROUNDS * 2; i++) {
      const chat = i % 2 === 0;
      const body = encode(chat ? mutateChat(rng) : mutateCompletion(rng));
      const t0 = performance.now();
      const reply = await send(chat ? '/v1/chat/completions' : '/v1/completions', body);
      const ms = performance.now() - t0;
      if (ms > slowest.ms) slowest = { ms, body: `${body.length} bytes, ${reply.status}: ${body.slice(0, 100)}` };
      check(`seed ${seed} #${i}: ${body.slice(0, 200)}`, reply);
      statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1);
    }
    t.diagnostic(`statuses: ${JSON.stringify(Object.fromEntries(statuses))}; slowest ${slowest.ms.toFixed(0)} ms (${slowest.body})`);
    assert.ok((statuses.get(200) ?? 0) > 0 && (statuses.get(400) ?? 0) > 0, 'the fuzzer reaches both answers and refusals');
    await eventually(() => open.size === 0, 'every sequence is closed');
    assert.equal((await fetch(`${server.url}/health`)).status, 200);
  });
}
