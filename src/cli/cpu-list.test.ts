import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCpuList } from './node.ts';

test('--cpus lists: ranges and single cores; nonsense refused', () => {
  assert.deepEqual(parseCpuList('0-3,6'), [0, 1, 2, 3, 6]);
  assert.deepEqual(parseCpuList(' 2 '), [2]);
  for (const bad of ['', 'a', '3-1', '1-', '0-9999']) assert.throws(() => parseCpuList(bad), /--cpus/, bad);
});
