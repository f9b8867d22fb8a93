// One conformance suite, run against every ByteSource implementation.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { FileSource, MemorySource, SourceRangeError, type ByteSource } from './source.ts';
import { patternBytes } from './testing/sample.ts';

const dir = mkdtempSync(join(tmpdir(), 'gguf-source-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const bytes = patternBytes(10_000);

const implementations: Array<[string, () => ByteSource]> = [
  ['MemorySource', () => new MemorySource(bytes)],
  [
    'FileSource',
    () => {
      const path = join(dir, 'bytes.bin');
      writeFileSync(path, bytes);
      return new FileSource(path);
    },
  ],
];

for (const [name, make] of implementations) {
  describe(name, () => {
    test('size and positional reads', () => {
      const s = make();
      assert.equal(s.size, bytes.length);
      assert.deepEqual([...s.read(0, 4)], [...bytes.subarray(0, 4)]);
      assert.deepEqual([...s.read(9_990, 10)], [...bytes.subarray(9_990)]);
      assert.equal(s.read(123, 0).length, 0);
      assert.equal(s.read(10_000, 0).length, 0);
      // Reads do not depend on each other's order.
      assert.deepEqual([...s.read(5_000, 3)], [...bytes.subarray(5_000, 5_003)]);
      assert.deepEqual([...s.read(1, 3)], [...bytes.subarray(1, 4)]);
      s.close();
    });

    test('reads outside the bytes throw SourceRangeError', () => {
      const s = make();
      assert.throws(() => s.read(9_999, 2), SourceRangeError);
      assert.throws(() => s.read(-1, 1), SourceRangeError);
      assert.throws(() => s.read(0, -1), SourceRangeError);
      assert.throws(() => s.read(0.5, 1), SourceRangeError);
      assert.throws(() => s.read(2 ** 60, 1), SourceRangeError);
      s.close();
    });

    test('read after close throws; close twice is fine', () => {
      const s = make();
      s.close();
      s.close();
      assert.throws(() => s.read(0, 1), SourceRangeError);
    });
  });
}
