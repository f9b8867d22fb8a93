// JSON mode's grammar: the automaton accepts exactly the prefixes of JSON objects, and a constrained random
// walk over a small vocabulary always ends in an object that JSON.parse reads, whatever the budget.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createSampler } from './sampler.ts';
import { type ConstraintVocabulary, jsonObjectConstraint } from './sampler-json.ts';
import { Mt19937 } from './sampler-rng.ts';

/**
 * A vocabulary of JSON-ish pieces, with a token for each character the shortest completions need (as a
 * byte-level vocabulary has); id 0 is the end-of-generation token, id 1 a control token.
 */
const PIECES = ['<eos>', '<ctl>', '{', '}', '[', ']', '"', ':', ',', ' ', '\n  ', 'a', 'key', '"name"', '": "', '0', '1', '-', '.', 'e', '12', 'true', 'tr', 'ue', 'null', 'false', '\\', 'n', 'u00e9', '{"', '"}', '},', 'x"', 'é', 't', 'r', 'u', 'f', 'l', 's'];
const encoder = new TextEncoder();
const vocabulary: ConstraintVocabulary = {
  vocabSize: PIECES.length,
  tokenBytes: (id) => encoder.encode(id <= 1 ? '' : PIECES[id]!),
  isEndOfGeneration: (id) => id === 0,
  isControl: (id) => id === 1,
};
const id = (piece: string) => PIECES.indexOf(piece);

/** Feeds pieces through the constraint; the index of the first refused piece, or -1. */
function firstRefused(pieces: string[], budget = 1000): number {
  const c = jsonObjectConstraint(vocabulary, budget);
  for (const [i, p] of pieces.entries()) {
    if (!c.allows(id(p))) return i;
    c.accept(id(p));
  }
  return -1;
}

describe('JSON object grammar', () => {
  test('accepts objects, nested values, escapes, numbers and literals; then only the end token', () => {
    const pieces = ['{', '"name"', ':', ' ', '[', '12', '.', '0', 'e', '-', '1', ',', 'true', ',', 'null', ',', '"', 'a', '\\', 'n', '\\', 'u00e9', 'é', '"', ',', '{', '}', ']', ',', '"', 'key', '"', ':', '-', '0', '}'];
    assert.equal(firstRefused(pieces), -1);
    assert.deepEqual(JSON.parse(pieces.join('')), { name: [12.0e-1, true, null, 'a\né\u00e9', {}], key: -0 });
    const done = jsonObjectConstraint(vocabulary, 100);
    for (const p of ['{', '}']) done.accept(id(p));
    assert.ok(done.allows(0), 'the end token once complete');
    assert.ok(!done.allows(id(' ')) && !done.allows(id('{')));
  });

  test('refuses what no JSON object starts with', () => {
    assert.equal(firstRefused(['[']), 0, 'the top level is an object');
    assert.equal(firstRefused(['{', '1']), 1, 'keys are strings');
    assert.equal(firstRefused(['{', '"name"', ','] ), 2, 'a colon after a key');
    assert.equal(firstRefused(['{', '"name"', ':', '0', '1']), 4, 'no leading zeros');
    assert.equal(firstRefused(['{', '"name"', ':', 'tr', 'tr']), 4, 'literals are spelled out');
    assert.equal(firstRefused(['{', '"name"', ':', '1', ']']), 4, 'brackets match');
    assert.equal(firstRefused(['{', '"name"', ':', '"', '\n  ']), 4, 'no raw newline in a string');
    assert.equal(firstRefused(['{', '}', ' ']), 2);
    assert.equal(firstRefused(['<eos>']), 0, 'no end before the object is complete');
    assert.equal(firstRefused(['{', '<ctl>']), 1, 'control tokens never');
  });

  test('a random constrained walk always closes its object within the budget', () => {
    const rng = new Mt19937(7);
    for (let run = 0; run < 300; run++) {
      const budget = 2 + (run % 40);
      const sampler = createSampler({ temperature: 1, topK: 0, topP: 1, minP: 0, seed: run, constraint: jsonObjectConstraint(vocabulary, budget) });
      const logits = new Float32Array(PIECES.length);
      let text = '';
      for (let i = 0; i < budget; i++) {
        for (let t = 0; t < logits.length; t++) logits[t] = rng.nextDouble() * 4;
        logits[0] = -2; // the model is in no hurry to stop
        const token = sampler.sample(logits);
        if (token === 0) break;
        text += PIECES[token];
      }
      const value: unknown = JSON.parse(text);
      assert.ok(typeof value === 'object' && value !== null && !Array.isArray(value), text);
    }
  });
});
