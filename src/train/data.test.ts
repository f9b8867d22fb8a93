// Data for training: the held-out split, a batch cursor that can start anywhere, evaluation rows that score
// every token once, and the unigram baseline.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type CorpusDocument } from './corpus.ts';
import { BatchCursor, evalRows, prepareData, unigramPerplexity } from './data.ts';

const docs: CorpusDocument[] = Array.from({ length: 20 }, (_, i) => ({
  name: `doc-${i}.txt`,
  text: `Document ${i}. The quick brown fox jumps over the lazy dog, and the dog sleeps on. `.repeat(20),
}));

test('prepareData: held-out documents are not trained on; EOS ends each document', () => {
  const d = prepareData(docs, { vocabSize: 300, heldOutFraction: 0.1, splitSeed: 3 });
  assert.equal(d.heldOutNames.length, 2);
  assert.equal(d.trainDocs, 18);
  assert.equal(d.train.at(-1), d.tokenizer.eosId);
  assert.equal(d.heldOut.at(-1), d.tokenizer.eosId);
  for (const name of d.heldOutNames) assert.ok(d.heldOutText.includes(`Document ${name.slice(4, -4)}.`));
  assert.equal(prepareData(docs, { vocabSize: 300, heldOutFraction: 0.1, splitSeed: 3 }).fingerprint, d.fingerprint);
  // one document: the tail of its stream is held out
  const one = prepareData(docs.slice(0, 1), { vocabSize: 300, heldOutFraction: 0.1 });
  assert.ok(one.heldOut.length > 0 && one.train.length > 8 * one.heldOut.length);
});

test('BatchCursor at position k yields what a cursor from 0 yields after k batches, across epochs', () => {
  const tokens = Int32Array.from({ length: 1000 }, (_, i) => i);
  const seq = new BatchCursor(tokens, 3, 16, 7);
  const all = Array.from({ length: 50 }, () => seq.next()); // 20 batches per epoch: 2.5 epochs
  for (const k of [0, 5, 19, 20, 33]) {
    const c = new BatchCursor(tokens, 3, 16, 7, k);
    for (let i = k; i < Math.min(k + 8, 50); i++) assert.deepEqual(c.next().input, all[i]!.input, `batch ${i} from position ${k}`);
  }
  assert.notDeepEqual(all[0]!.input, all[20]!.input, 'each epoch has its own order');
});

test('evalRows covers every target once; unigram perplexity is sane', () => {
  const tokens = Int32Array.from({ length: 101 }, (_, i) => i % 7);
  let n = 0;
  for (const { input, target } of evalRows(tokens, 8, 3)) {
    assert.equal(input.length, target.length);
    assert.equal(target[0], tokens[n + 1]);
    n += target.length;
  }
  assert.equal(n, 100);
  const uniform = unigramPerplexity(Int32Array.from({ length: 7000 }, (_, i) => i % 7), tokens, 7);
  assert.ok(Math.abs(uniform - 7) < 0.01);
});
