// Golden tests against llama.cpp: its own tokenizer test files (`models/ggml-vocab-<name>.gguf.inp/.out`,
// read as `tests/test-tokenizer-0.cpp` reads them) for the five vocabularies SharedLLM's models use.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { VOCAB_NAMES, type VocabName, vocabGoldenPath, vocabPath } from './testing/vocab.ts';
import { Tokenizer, TokenizerError } from './tokenizer.ts';

const tokenizers = new Map<VocabName, Tokenizer>();

before(async () => {
  // One shared llama.cpp instance; each vocabulary loads in well under a second or two.
  for (const name of VOCAB_NAMES) tokenizers.set(name, await Tokenizer.load(vocabPath(name)));
});

after(async () => {
  for (const tokenizer of tokenizers.values()) await tokenizer.dispose();
});

function tok(name: VocabName): Tokenizer {
  const tokenizer = tokenizers.get(name);
  assert.ok(tokenizer, `tokenizer ${name} not loaded`);
  return tokenizer;
}

interface GoldenCase {
  readonly text: string;
  readonly ids: number[];
}

/** Reads llama.cpp's golden pairs: inputs split by a marker line, one line of ids per input. */
function readGolden(name: VocabName): GoldenCase[] {
  const raw = readFileSync(vocabGoldenPath(name, 'inp'), 'utf8');
  const outLines = readFileSync(vocabGoldenPath(name, 'out'), 'utf8').split('\n');
  const separator = '\n__ggml_vocab_test__\n';
  const inputs: string[] = [];
  let pos = 0;
  while (pos < raw.length) {
    const next = raw.indexOf(separator, pos);
    if (next === -1) {
      inputs.push(raw.slice(pos));
      break;
    }
    inputs.push(raw.slice(pos, next));
    pos = next + separator.length;
  }
  // getline() gives no line after the final newline.
  if (outLines.at(-1) === '') outLines.pop();
  assert.equal(outLines.length, inputs.length, `${name}: .inp and .out hold different numbers of cases`);
  return inputs.map((text, i) => {
    const line = (outLines[i] ?? '').trim();
    return { text, ids: line === '' ? [] : line.split(' ').map((s) => Number.parseInt(s, 10)) };
  });
}

describe('llama.cpp golden tokenization', () => {
  for (const name of VOCAB_NAMES) {
    test(`${name}: every case of ggml-vocab-${name}.gguf.inp/.out`, (t) => {
      const cases = readGolden(name);
      assert.ok(cases.length > 30, `expected the full golden set, got ${cases.length} cases`);
      let failures = 0;
      for (const { text, ids } of cases) {
        const actual = tok(name).encode(text);
        if (JSON.stringify(actual) !== JSON.stringify(ids)) {
          failures++;
          t.diagnostic(`${JSON.stringify(text)}: expected ${ids.join(' ')}, got ${actual.join(' ')}`);
        }
      }
      t.diagnostic(`${cases.length} cases, ${failures} different`);
      assert.equal(failures, 0);
    });
  }
});

describe('vocabulary facts', () => {
  test('BOS/EOS/EOT and add_bos follow the GGUF', () => {
    assert.deepEqual(pick(tok('llama-spm')), { bos: 1, eos: 2, eot: undefined, addBos: true, type: 'spm' });
    assert.deepEqual(pick(tok('llama-bpe')), { bos: 128000, eos: 128001, eot: 128009, addBos: true, type: 'bpe' });
    assert.deepEqual(pick(tok('qwen2')), { bos: 151643, eos: 151643, eot: 151645, addBos: false, type: 'bpe' });
    assert.deepEqual(pick(tok('phi-3')), { bos: 1, eos: 32000, eot: 32007, addBos: true, type: 'spm' });
    assert.equal(tok('llama-bpe').vocabSize, 128256);
    assert.equal(tok('qwen2').vocabSize, 151936);
  });

  test('end of generation: EOS and EOT are, ordinary text is not', () => {
    for (const name of VOCAB_NAMES) {
      const t = tok(name);
      for (const id of [t.eos, t.eot]) if (id !== undefined) assert.ok(t.isEndOfGeneration(id), `${name}: ${id}`);
      for (const id of t.encode('Hello world')) assert.ok(!t.isEndOfGeneration(id), `${name}: ${id}`);
    }
    assert.ok(tok('phi-3').isEndOfGeneration(tok('phi-3').encodeWithSpecial('<|end|>')[0] ?? -1));
  });

  test('addBos puts BOS first', () => {
    const t = tok('llama-bpe');
    assert.deepEqual(t.encode('Hello', { addBos: true }), [128000, ...t.encode('Hello')]);
  });
});

function pick(t: Tokenizer) {
  return { bos: t.bos, eos: t.eos, eot: t.eot, addBos: t.addBosDefault, type: t.vocabType };
}

describe('special tokens in user text', () => {
  for (const name of VOCAB_NAMES) {
    test(`${name}: special-token strings in user text stay text`, () => {
      const t = tok(name);
      const specials: number[] = [];
      for (let id = 0; id < t.vocabSize; id++) {
        if ((t.isControl(id) || t.isEndOfGeneration(id)) && t.tokenText(id) !== '') specials.push(id);
      }
      assert.ok(specials.length > 0);
      const specialSet = new Set(specials);
      for (const id of specials) {
        const text = t.tokenText(id);
        const ids = t.encode(`Hi ${text} there${text}`);
        const leaked = ids.filter((x) => specialSet.has(x));
        assert.deepEqual(leaked, [], `${name}: ${JSON.stringify(text)} became special ids`);
      }
      // The trusted path does produce them.
      const eog = t.eot ?? t.eos;
      assert.ok(eog !== undefined);
      assert.deepEqual(t.encodeWithSpecial(t.tokenText(eog)), [eog]);
    });
  }

  test('the usual suspects: <|eot_id|>, </s>, <|im_end|>, <|end|>', () => {
    assert.ok(!tok('llama-bpe').encode('<|eot_id|>').includes(128009));
    assert.ok(!tok('llama-spm').encode('</s><s>').some((id) => id === 1 || id === 2));
    assert.ok(!tok('qwen2').encode('<|im_end|><|im_start|>').some((id) => id >= 151643));
    assert.ok(!tok('phi-3').encode('<|end|><|user|>').some((id) => id >= 32000));
    assert.deepEqual(tok('qwen2').encodeWithSpecial('<|im_start|>user\n').slice(0, 1), [151644]);
  });
});

describe('decoding', () => {
  const texts = [
    'Hello world',
    'Héllo wörld, ça va? Ünïcödé',
    '日本語のテキストと中文',
    'emoji 🦙🚀 and 😶‍🌫️ here',
    'def f(x):\n    return x  * 2\n\n\tdone',
    '12345 67 8.9',
  ];
  for (const name of VOCAB_NAMES) {
    test(`${name}: decode(encode(text)) gives the text back`, () => {
      const t = tok(name);
      for (const text of texts) assert.equal(t.decode(t.encode(text)), text);
    });
  }

  for (const name of VOCAB_NAMES) {
    test(`${name}: every token's bytes agree with llama.cpp's detokenizer`, (t) => {
      const tk = tok(name);
      const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
      let compared = 0;
      for (let id = 0; id < tk.vocabSize; id++) {
        let piece: string;
        try {
          piece = utf8.decode(tk.tokenBytes(id));
        } catch {
          continue; // part of a character: llama.cpp's string would hold U+FFFD
        }
        // llama_detokenize strips SPM's leading space and (gpt-2, llama3) cleans " ," " ." " '" etc.
        if (/ [?!.,']/.test(piece)) continue;
        const expected = tk.vocabType === 'spm' ? piece.replace(/^ /, '') : piece;
        const actual = tk.decode([id]);
        if (actual !== expected) assert.equal(actual, expected, `${name} token ${id} ${JSON.stringify(tk.tokenText(id))}`);
        compared++;
      }
      t.diagnostic(`${compared} of ${tk.vocabSize} tokens compared`);
      assert.ok(compared > tk.vocabSize * 0.9);
    });
  }

  test('control tokens have no text; byte tokens are one byte', () => {
    const spm = tok('llama-spm');
    assert.equal(spm.tokenPiece(1), '');
    assert.deepEqual(Array.from(spm.tokenBytes(spm.encode('\n').at(-1) ?? -1)), [10]);
    assert.equal(spm.tokenText(13), '<0x0A>');
  });

  test('out-of-range ids are a TokenizerError', () => {
    const t = tok('gpt-2');
    assert.throws(() => t.decode([50257]), TokenizerError);
    assert.throws(() => t.tokenBytes(-1), TokenizerError);
  });
});

describe('stream decoder', () => {
  for (const name of VOCAB_NAMES) {
    test(`${name}: emoji split across tokens come out whole`, () => {
      const t = tok(name);
      const text = ' a🦙b 😶‍🌫️ ✅ 日本 ok';
      const ids = t.encode(text);
      const decoder = t.createStreamDecoder();
      const chunks = ids.map((id) => decoder.push(id));
      const rest = decoder.flush();
      // Some token holds only part of a character: it must produce nothing until the character completes.
      const split = ids.findIndex((id) => !isValidUtf8(t.tokenBytes(id)));
      assert.ok(split >= 0, `${name}: expected an emoji split across tokens`);
      for (const chunk of chunks) assert.ok(!chunk.includes('\uFFFD'), `${name}: ${JSON.stringify(chunks)}`);
      assert.equal(rest, '');
      // SPM adds a space in front of the first word; the stream keeps pieces as they are.
      const expected = t.vocabType === 'spm' ? ` ${text}` : text;
      assert.equal(chunks.join(''), expected);
    });
  }

  test('flush() turns a dangling partial character into U+FFFD', () => {
    const t = tok('llama-spm');
    const ids = t.encode('🦙');
    const decoder = t.createStreamDecoder();
    for (const id of ids.slice(0, -1)) decoder.push(id);
    assert.equal(decoder.flush(), '\uFFFD');
    assert.equal(decoder.push(t.encode('x').at(-1) ?? -1), ' x'); // SPM's "▁x"
  });

  test('llama-spm: the four byte tokens of 🦙 give "", "", "", "🦙"', () => {
    const t = tok('llama-spm');
    const ids = t.encode('🦙').slice(-4);
    assert.deepEqual(ids.map((id) => t.tokenText(id)), ['<0xF0>', '<0x9F>', '<0xA6>', '<0x99>']);
    const decoder = t.createStreamDecoder();
    assert.deepEqual(ids.map((id) => decoder.push(id)), ['', '', '', '🦙']);
  });
});

describe('loading', () => {
  test('a missing file is a TokenizerError naming the path', async () => {
    await assert.rejects(Tokenizer.load('/nonexistent/model.gguf'), (error: unknown) => {
      assert.ok(error instanceof TokenizerError);
      assert.match(error.message, /nonexistent/);
      return true;
    });
  });

  test('use after dispose is a TokenizerError', async () => {
    const t = await Tokenizer.load(vocabPath('gpt-2'));
    await t.dispose();
    assert.throws(() => t.encode('x'), TokenizerError);
  });
});

function isValidUtf8(bytes: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}
