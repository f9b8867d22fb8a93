import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { concatTokens, CorpusError, decodeText, loadCorpus, splitHeldOut, TokenBatcher } from './corpus.ts';

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'sharedllm-corpus-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('loadCorpus reads .txt files recursively in sorted order, relative names, LF newlines, no BOM', () => {
  withDir((dir) => {
    mkdirSync(join(dir, 'b', 'deep'), { recursive: true });
    writeFileSync(join(dir, 'b', 'deep', 'z.txt'), 'zed\r\nline');
    writeFileSync(join(dir, 'a.txt'), '\uFEFFalpha');
    writeFileSync(join(dir, 'b', 'm.txt'), 'em');
    writeFileSync(join(dir, 'skip.json'), '{}');
    const docs = loadCorpus(dir);
    assert.deepEqual(docs, [
      { name: 'a.txt', text: 'alpha' },
      { name: 'b/deep/z.txt', text: 'zed\nline' },
      { name: 'b/m.txt', text: 'em' },
    ]);
    // A file list mixes files and directories.
    const listed = loadCorpus([join(dir, 'a.txt'), join(dir, 'b', 'deep')]);
    assert.deepEqual(listed.map((d) => d.text), ['alpha', 'zed\nline']);
  });
});

test('loadCorpus rejects missing paths, empty corpora, empty files, binary and non-UTF-8 files', () => {
  withDir((dir) => {
    assert.throws(() => loadCorpus(join(dir, 'nope')), (e) => e instanceof CorpusError && /not found/.test(e.message));
    assert.throws(() => loadCorpus(dir), (e) => e instanceof CorpusError && /empty corpus/.test(e.message));
    writeFileSync(join(dir, 'blank.txt'), ' \n\t\n');
    assert.throws(() => loadCorpus(dir), (e) => e instanceof CorpusError && /empty document/.test(e.message));
  });
  assert.throws(() => decodeText(Uint8Array.from([0x61, 0x00, 0x62]), 'x.bin'),
    (e) => e instanceof CorpusError && e.actual === 'a NUL byte at offset 1' && e.path === 'x.bin');
  const latin1 = Uint8Array.from(Buffer.from('caf\xe9 na\xefve r\xe9sum\xe9', 'latin1'));
  assert.throws(() => decodeText(latin1, 'latin1.txt'), (e) => e instanceof CorpusError && /not UTF-8/.test(e.message));
  // A real U+FFFD in valid UTF-8 is text, not an error; a rare bad byte is tolerated when asked.
  assert.equal(decodeText(new TextEncoder().encode('ok \uFFFD'), 'r.txt'), 'ok \uFFFD');
  assert.equal(decodeText(latin1, 'latin1.txt', { maxInvalidUtf8Ratio: 0.5 }), 'caf\uFFFD na\uFFFDve r\uFFFDsum\uFFFD');
});

test('splitHeldOut is deterministic, by document, independent of input order', () => {
  const docs = Array.from({ length: 40 }, (_, i) => ({ name: `doc-${i}.txt`, text: `text ${i}` }));
  const a = splitHeldOut(docs, { fraction: 0.1, seed: 3 });
  assert.equal(a.heldOut.length, 4);
  assert.equal(a.train.length, 36);
  assert.deepEqual(a, splitHeldOut(docs, { fraction: 0.1, seed: 3 }));
  const reversed = splitHeldOut([...docs].reverse(), { fraction: 0.1, seed: 3 });
  assert.deepEqual(new Set(reversed.heldOut.map((d) => d.name)), new Set(a.heldOut.map((d) => d.name)));
  assert.notDeepEqual(splitHeldOut(docs, { fraction: 0.1, seed: 4 }).heldOut, a.heldOut);
  // Input order is kept in both halves.
  assert.deepEqual(a.train, docs.filter((d) => !a.heldOut.includes(d)));
  // At least one held-out document when there are two or more; none with fraction 0.
  assert.equal(splitHeldOut(docs.slice(0, 2), { fraction: 0.01 }).heldOut.length, 1);
  assert.equal(splitHeldOut(docs, { fraction: 0 }).heldOut.length, 0);
  assert.throws(() => splitHeldOut(docs, { fraction: 1 }), CorpusError);
});

test('concatTokens joins documents with an optional separator', () => {
  assert.deepEqual([...concatTokens([[1, 2], [3]], 0)], [1, 2, 0, 3, 0]);
  assert.deepEqual([...concatTokens([[1, 2], Int32Array.of(3)])], [1, 2, 3]);
});

test('TokenBatcher yields [batch, ctx] windows with shifted targets, shuffled by seed and epoch', () => {
  const tokens = Int32Array.from({ length: 101 }, (_, i) => i); // 0..100: windows of 10 + 1
  const batcher = new TokenBatcher(tokens, { batch: 3, ctx: 10, seed: 5 });
  assert.equal(batcher.windows, 10);
  assert.equal(batcher.batchesPerEpoch, 3);
  const epoch0 = [...batcher.epoch(0)];
  assert.equal(epoch0.length, 3);
  const starts: number[] = [];
  for (const b of epoch0) {
    assert.equal(b.input.length, 30);
    assert.equal(b.target.length, 30);
    for (let row = 0; row < 3; row++) {
      const first = b.input[row * 10] as number;
      assert.equal(first % 10, 0);
      starts.push(first);
      for (let j = 0; j < 10; j++) {
        assert.equal(b.input[row * 10 + j], first + j);
        assert.equal(b.target[row * 10 + j], first + j + 1);
      }
    }
  }
  assert.equal(new Set(starts).size, 9); // distinct windows; one of ten dropped with the partial batch
  const again = [...new TokenBatcher(tokens, { batch: 3, ctx: 10, seed: 5 }).epoch(0)];
  assert.deepEqual(again, epoch0);
  const epoch1 = [...batcher.epoch(1)];
  assert.notDeepEqual(epoch1.map((b) => [...b.input]), epoch0.map((b) => [...b.input]));
  assert.throws(() => new TokenBatcher(tokens.subarray(0, 20), { batch: 3, ctx: 10 }), /too few tokens/);
  assert.throws(() => new TokenBatcher(tokens, { batch: 0, ctx: 10 }), CorpusError);
});
