// The tokenizer's GGUF metadata: its shape, a write/read round trip through src/gguf, and GPT-2's own
// vocabulary read back from llama.cpp's vocab file checked against llama.cpp's golden tokenizer tests.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { openGguf, readGguf } from '../gguf/reader.ts';
import { MemorySource } from '../gguf/source.ts';
import { encodeGguf } from '../gguf/writer.ts';
import { vocabGoldenPath, vocabPath } from '../model/testing/vocab.ts';
import { ENDOFTEXT, IM_END, IM_START, trainBpe } from './bpe.ts';
import {
  CHATML_TEMPLATE,
  GGUF_TYPE,
  TOKEN_TYPE,
  tokenizerFromGgufMetadata,
  tokenizerGgufMetadata,
  vocabOnlyGgufMetadata,
} from './tokenizer-gguf.ts';
import { loadReferenceTokenizer, VARIED_TEXTS } from './tokenizer-gguf.testing.ts';

const corpus = [
  'It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.',
  'However little known the feelings or views of such a man may be on his first entering a neighbourhood...',
  'Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse.',
].join('\n\n').repeat(20);

test('tokenizerGgufMetadata has the keys, types and values llama.cpp reads', () => {
  const tok = trainBpe([corpus], { vocabSize: 300 });
  const meta = tokenizerGgufMetadata(tok);
  assert.deepEqual(meta['tokenizer.ggml.model'], { type: GGUF_TYPE.STRING, value: 'gpt2' });
  assert.deepEqual(meta['tokenizer.ggml.pre'], { type: GGUF_TYPE.STRING, value: 'gpt-2' });
  const tokens = meta['tokenizer.ggml.tokens'];
  assert.equal(tokens?.type, GGUF_TYPE.ARRAY);
  assert.equal(tokens?.type === GGUF_TYPE.ARRAY && tokens.itemType, GGUF_TYPE.STRING);
  assert.deepEqual(tokens?.value, tok.tokens);
  const types = meta['tokenizer.ggml.token_type'];
  assert.ok(types?.type === GGUF_TYPE.ARRAY && types.itemType === GGUF_TYPE.INT32 && types.value instanceof Int32Array);
  assert.deepEqual([...types.value.slice(-3)], [TOKEN_TYPE.CONTROL, TOKEN_TYPE.CONTROL, TOKEN_TYPE.CONTROL]);
  assert.ok(types.value.slice(0, -3).every((t) => t === TOKEN_TYPE.NORMAL));
  const merges = meta['tokenizer.ggml.merges'];
  assert.ok(merges?.type === GGUF_TYPE.ARRAY && merges.itemType === GGUF_TYPE.STRING);
  assert.equal(merges.value.length, tok.merges.length);
  assert.equal(merges.value[0], `${tok.tokens[tok.merges[0]?.[0] ?? 0]} ${tok.tokens[tok.merges[0]?.[1] ?? 0]}`);
  assert.deepEqual(meta['tokenizer.ggml.bos_token_id'], { type: GGUF_TYPE.UINT32, value: tok.tokens.indexOf(ENDOFTEXT) });
  assert.deepEqual(meta['tokenizer.ggml.eos_token_id'], { type: GGUF_TYPE.UINT32, value: tok.tokens.indexOf(ENDOFTEXT) });
  assert.deepEqual(meta['tokenizer.ggml.eot_token_id'], { type: GGUF_TYPE.UINT32, value: tok.tokens.indexOf(IM_END) });
  assert.deepEqual(meta['tokenizer.ggml.add_bos_token'], { type: GGUF_TYPE.BOOL, value: true });
  assert.deepEqual(meta['tokenizer.ggml.add_eos_token'], { type: GGUF_TYPE.BOOL, value: false });
  assert.deepEqual(meta['tokenizer.chat_template'], { type: GGUF_TYPE.STRING, value: CHATML_TEMPLATE });
  assert.ok(CHATML_TEMPLATE.includes(IM_START));
  assert.equal(tokenizerGgufMetadata(tok, { chatTemplate: null })['tokenizer.chat_template'], undefined);
});

test('metadata written by src/gguf and read back rebuilds the same tokenizer', () => {
  const tok = trainBpe([corpus], { vocabSize: 320 });
  const file = readGguf(new MemorySource(encodeGguf({ metadata: vocabOnlyGgufMetadata(tok) })));
  assert.equal(file.tensorInfos.length, 0);
  assert.equal(file.metadata.getString('general.architecture'), 'llama');
  const back = tokenizerFromGgufMetadata((key) => file.metadata.get(key));
  assert.deepEqual(back.toJSON(), tok.toJSON());
  for (const text of VARIED_TEXTS) assert.deepEqual(back.encode(text, { special: true }), tok.encode(text, { special: true }));
});

/** llama.cpp's tests/test-tokenizer-0 vectors: inputs separated by a marker line, one output line each. */
function goldenTests(): { text: string; ids: number[] }[] {
  const inputs = readFileSync(vocabGoldenPath('gpt-2', 'inp'), 'utf8').split('\n__ggml_vocab_test__\n');
  if (inputs[inputs.length - 1] === '') inputs.pop();
  const outputs = readFileSync(vocabGoldenPath('gpt-2', 'out'), 'utf8').split('\n').slice(0, inputs.length);
  assert.equal(outputs.length, inputs.length);
  return inputs.map((text, i) => ({
    text,
    ids: (outputs[i] ?? '').trim().split(' ').filter((s) => s.length > 0).map(Number),
  }));
}

test("GPT-2's own vocab: encode() passes llama.cpp's golden tokenizer tests and matches llama.cpp", async () => {
  const path = vocabPath('gpt-2');
  const file = openGguf(path);
  const gpt2 = tokenizerFromGgufMetadata((key) => file.metadata.get(key));
  file.dispose();
  assert.equal(gpt2.vocabSize, 50257);
  const golden = goldenTests();
  assert.ok(golden.length > 30);
  for (const { text, ids } of golden) assert.deepEqual(gpt2.encode(text), ids, `golden ${JSON.stringify(text)}`);

  const reference = await loadReferenceTokenizer(path);
  try {
    for (const text of VARIED_TEXTS) {
      assert.deepEqual(gpt2.encode(text), reference.tokenize(text), `tokenize ${JSON.stringify(text)}`);
    }
  } finally {
    await reference.dispose();
  }
});
