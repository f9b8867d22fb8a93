// Byte-level BPE: the pre-tokenizer, training, encode/decode, and THE KEY CHECK: a tokenizer we train,
// exported as a vocab-only GGUF, tokenizes exactly like llama.cpp reading that GGUF.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BYTE_TO_CHAR } from './bpe-bytes.ts';
import { gpt2Split, splitSpecial } from './bpe-pretokenize.ts';
import { BpeTokenizer, cleanUpTokenizationSpaces, countWords, ENDOFTEXT, IM_END, IM_START, trainBpe } from './bpe.ts';
import { seededRandom } from './corpus.ts';
import { referenceForTokenizer, VARIED_TEXTS } from './tokenizer-gguf.testing.ts';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Generated multilingual prose, so that merges also join the bytes of accented, CJK and emoji text. */
function multilingualText(sentences: number, seed: number): string {
  const words = [
    'the', 'of', 'and', 'a', 'to', 'in', 'is', 'was', 'that', 'for', 'it', 'with', 'as', 'his', 'on', 'be',
    'café', 'naïve', 'über', 'señor', 'garçon', 'élève', 'Zürich', 'São', 'Paulo', 'fjörd', 'smørrebrød',
    '東京', '漢字', 'ひらがな', 'カタカナ', '中文', '你好', '世界', '한국어', 'Привет', 'мир', 'κόσμε',
    '😀', '👍', '🎉', '❤️', '42', '2024', '3.14', "don't", "it's", "we're",
  ];
  const random = seededRandom(seed);
  const out: string[] = [];
  for (let s = 0; s < sentences; s++) {
    const n = 4 + Math.floor(random() * 10);
    const sentence = Array.from({ length: n }, () => words[Math.floor(random() * words.length)]).join(' ');
    out.push(sentence.charAt(0).toUpperCase() + sentence.slice(1) + (random() < 0.2 ? '!\n\n' : '. '));
  }
  return out.join('');
}

/** A few hundred KB of training text that exists wherever the repo is installed. */
function trainingDocuments(): string[] {
  return [
    readFileSync(join(repoRoot, 'node_modules/typescript/lib/lib.es5.d.ts'), 'utf8'),
    multilingualText(3000, 7),
  ];
}

test('gpt2Split cuts words like GPT-2 (contractions, letters, numbers, other, whitespace rules)', () => {
  assert.deepEqual(gpt2Split("Hello world's  end"), ['Hello', ' world', "'s", ' ', ' end']);
  assert.deepEqual(gpt2Split("they'll WE'LL"), ['they', "'ll", ' WE', "'", 'LL']);
  assert.deepEqual(gpt2Split('abc123 4.5'), ['abc', '123', ' 4', '.', '5']);
  assert.deepEqual(gpt2Split('a  \n\n  b'), ['a', '  \n\n ', ' b']);
  assert.deepEqual(gpt2Split('end   '), ['end', '   ']);
  assert.deepEqual(gpt2Split(' !!? x'), [' !!?', ' x']);
  assert.deepEqual(gpt2Split('\tdef'), ['\t', 'def']);
  assert.deepEqual(gpt2Split('東京タワー😀👍'), ['東京タワー', '😀👍']);
  // U+0085 is whitespace for llama.cpp (not for JS \s); U+FEFF is not (it is for JS \s).
  assert.deepEqual(gpt2Split('a\u0085\u0085b'), ['a', '\u0085', '\u0085', 'b']);
  assert.deepEqual(gpt2Split('a \ufeffb'), ['a', ' \ufeff', 'b']);
  for (const text of VARIED_TEXTS) assert.equal(gpt2Split(text).join(''), text);
});

test('splitSpecial cuts at special tokens, longest first', () => {
  const specials = new Map([['<|a|>', 10], ['<|a|><|b|>', 11], ['<|b|>', 12]]);
  assert.deepEqual(splitSpecial('x<|a|><|b|>y<|b|>', specials), [
    { kind: 'text', text: 'x' }, { kind: 'special', id: 11 }, { kind: 'text', text: 'y' }, { kind: 'special', id: 12 },
  ]);
  assert.deepEqual(splitSpecial('', specials), []);
});

test('trainBpe: vocab size, layout, special tokens, determinism, round trip', () => {
  const docs = trainingDocuments();
  const tok = trainBpe(docs, { vocabSize: 600 });
  assert.equal(tok.vocabSize, 600);
  assert.deepEqual(tok.tokens.slice(0, 256), BYTE_TO_CHAR);
  assert.deepEqual(tok.tokens.slice(-3), [ENDOFTEXT, IM_START, IM_END]);
  assert.equal(tok.bosId, 597);
  assert.equal(tok.eosId, 597);
  assert.equal(tok.eotId, 599);
  assert.equal(tok.merges.length, 600 - 256 - 3);
  // Merge i produced token 256 + i (no merge repeated a known text in this run).
  tok.merges.forEach(([l, r], i) => assert.equal(tok.tokens[256 + i], (tok.tokens[l] ?? '') + (tok.tokens[r] ?? '')));

  // Same word counts in another order: same tokenizer.
  const shuffled = trainBpe(new Map([...countWords(docs)].reverse()), { vocabSize: 600 });
  assert.deepEqual(shuffled.toJSON(), tok.toJSON());
  // JSON round trip.
  const again = BpeTokenizer.fromJSON(JSON.parse(JSON.stringify(tok.toJSON())));
  for (const text of VARIED_TEXTS) {
    const ids = tok.encode(text);
    assert.deepEqual(again.encode(text), ids);
    assert.equal(tok.decode(ids), text);
  }
  // Special tokens: plain text unless asked for.
  assert.ok(!tok.encode(`a${ENDOFTEXT}b`).includes(tok.eosId));
  assert.deepEqual(tok.encode(`${IM_START}hi${IM_END}`, { special: true }).filter((id) => tok.isSpecial(id)), [598, 599]);
  assert.equal(tok.decode([tok.bosId, ...tok.encode('hi')]), 'hi');
  assert.equal(tok.decode([tok.bosId, ...tok.encode('hi')], { special: true }), `${ENDOFTEXT}hi`);
  // Compression on held-out English prose: better than bytes.
  const heldOut = 'The results of present observations are consistent with the very low thermal conductivity.';
  const ids = tok.encode(heldOut);
  assert.ok(ids.length < heldOut.length * 0.6, `${ids.length} tokens for ${heldOut.length} bytes`);
});

test('trainBpe never learns a special token text as an ordinary token', () => {
  const docs = Array.from({ length: 50 }, () => `text ${ENDOFTEXT} more ${ENDOFTEXT}`);
  const tok = trainBpe(docs, { vocabSize: 400, minFrequency: 1 });
  const ordinary = tok.tokens.filter((_, id) => !tok.isSpecial(id));
  assert.ok(!ordinary.includes(ENDOFTEXT));
  assert.equal(tok.decode(tok.encode(docs[0] ?? '')), docs[0]);
});

test('trainBpe rejects a vocab too small for the bytes and special tokens', () => {
  assert.throws(() => trainBpe(['abc'], { vocabSize: 200 }), /bad vocabSize/);
});

test('cleanUpTokenizationSpaces mirrors llama.cpp clean_spaces', () => {
  assert.equal(cleanUpTokenizationSpaces('Hello , world . Is it ? Yes !'), 'Hello, world. Is it? Yes!');
  assert.equal(cleanUpTokenizationSpaces("it ' s the dog 's bone , they 're here 'll 't"), "it's the dog's bone, they're here 'll 't");
});

test('KEY: llama.cpp reading our vocab-only GGUF tokenizes exactly like encode()', async () => {
  const tok = trainBpe(trainingDocuments(), { vocabSize: 1024 });
  const reference = await referenceForTokenizer(tok);
  try {
    let largest = 0;
    // Long words too: runs of one character and long numbers (GPT-2's \p{N}+ has no length limit).
    const long = `${'='.repeat(3000)} ${'9'.repeat(2000)}${' '.repeat(1000)}x${'ab'.repeat(1500)}`;
    for (const text of [...VARIED_TEXTS, VARIED_TEXTS.join('\n'), multilingualText(40, 99), long]) {
      const ours = tok.encode(text);
      largest = Math.max(largest, ours.length);
      assert.deepEqual(reference.tokenize(text), ours, `tokenize ${JSON.stringify(text)}`);
      assert.deepEqual(reference.tokenize(text, true), tok.encode(text, { special: true }), `special ${JSON.stringify(text)}`);
      // llama.cpp detokenizes with GPT-2's clean-up of spaces; decode() does it on request.
      assert.equal(reference.detokenize(ours), tok.decode(ours, { cleanSpaces: true }), `detokenize ${JSON.stringify(text)}`);
      assert.equal(tok.decode(ours), text, `round trip ${JSON.stringify(text)}`);
    }
    // A lone surrogate reaches llama.cpp as U+FFFD (UTF-8 conversion), and so it does in encode().
    const lone = 'lone \ud800 surrogate\udfff';
    assert.deepEqual(reference.tokenize(lone), tok.encode(lone));
    assert.equal(tok.decode(tok.encode(lone)), 'lone \ufffd surrogate\ufffd');
    // Where there is nothing to clean, llama.cpp's round trip is exact too.
    const plain = VARIED_TEXTS[2] ?? '';
    assert.equal(reference.detokenize(reference.tokenize(plain)), plain);
    // Special tokens render only when asked for, as in decode().
    const chat = tok.encode(`${IM_START}user\nhi${IM_END}`, { special: true });
    assert.equal(reference.detokenize(chat, true), tok.decode(chat, { special: true }));
    assert.equal(reference.detokenize(chat), tok.decode(chat));
    // The exported Jinja template is recognised as ChatML.
    assert.equal(reference.chatWrapperName(), 'ChatML');
    console.log(`# llama.cpp and encode() agree on ${VARIED_TEXTS.length + 3} texts (longest ${largest} tokens)`);
  } finally {
    await reference.dispose();
  }
});
