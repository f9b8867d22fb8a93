// The token floor that refuses overlong prompts without tokenizing them must never exceed the real count:
// checked on llama.cpp's five test vocabularies (SentencePiece and byte-level BPE) with seeded random texts
// and with the tightest text there is, the vocabulary's longest token repeated.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Tokenizer } from '../model/tokenizer.ts';
import { VOCAB_NAMES, type VocabName, vocabPath } from '../model/testing/vocab.ts';
import { mulberry32 } from '../util/random.ts';
import { ApiError } from './errors.ts';
import { maxTokenBytes, refuseOverlongPrompt, tokenFloor } from './prompt-size.ts';

const tokenizers = new Map<VocabName, Tokenizer>();

before(async () => {
  for (const name of VOCAB_NAMES) tokenizers.set(name, await Tokenizer.load(vocabPath(name)));
});

after(async () => {
  for (const t of tokenizers.values()) await t.dispose();
});

const ALPHABET = ['a', 'e', 'th', ' ', '  ', '\n', '\t', '    ', '中', '文', 'é', 'e\u0301', '😀', '\u0000', '\ud800', '<|endoftext|>', '</s>', '0', '123', '.', '=', '-', '_'];

function randomText(seed: number, length: number): string {
  const rng = mulberry32(seed);
  let out = '';
  while (out.length < length) {
    const piece = ALPHABET[Math.floor(rng() * ALPHABET.length)]!;
    out += piece.repeat(1 + Math.floor(rng() * (rng() < 0.1 ? 200 : 4)));
  }
  return out;
}

for (const name of VOCAB_NAMES) {
  test(`${name}: the floor never exceeds the real token count`, (t) => {
    const tok = tokenizers.get(name)!;
    const maxBytes = maxTokenBytes(tok);
    assert.ok(maxBytes !== undefined && maxBytes > 1, `${name} (${tok.vocabType}) has a floor`);
    t.diagnostic(`${tok.vocabType}, longest token ${maxBytes} bytes`);
    const texts = Array.from({ length: 20 }, (_, i) => randomText(i + 1, 200 + i * 500));
    // The tightest case: the longest ordinary token, repeated.
    let longest = 0;
    for (let id = 0; id < tok.vocabSize; id++) if (!tok.isControl(id) && tok.tokenBytes(id).length > tok.tokenBytes(longest).length) longest = id;
    texts.push(tok.tokenPiece(longest).repeat(50));
    for (const text of texts) {
      const actual = tok.encode(text).length;
      assert.ok(tokenFloor(tok, text) <= actual, `floor ${tokenFloor(tok, text)} > ${actual} tokens for ${JSON.stringify(text.slice(0, 80))}`);
    }
  });
}

test('refuseOverlongPrompt: 400 context_length_exceeded far over the context, nothing otherwise', () => {
  const tok = tokenizers.get('llama-spm')!;
  refuseOverlongPrompt(tok, 'a short prompt', 256, 'messages');
  refuseOverlongPrompt(tok, 'word '.repeat(100), 256, 'messages'); // over the context, but only tokenizing can tell
  assert.throws(
    () => refuseOverlongPrompt(tok, 'word '.repeat(100_000), 4096, 'prompt'),
    (error: unknown) => error instanceof ApiError && error.status === 400 && error.apiCode === 'context_length_exceeded' && error.param === 'prompt' && /at least \d+ tokens/.test(error.message),
  );
});
