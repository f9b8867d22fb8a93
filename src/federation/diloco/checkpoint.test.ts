// The serve checkpoint: an exact round trip (weights, momentum, previous aggregate, round, job), written through
// a temp file; a damaged one (a flipped byte, cut short, another file) is refused with a line saying what and
// what to do, never half-loaded.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadServerCheckpoint, saveServerCheckpoint } from './checkpoint.ts';

const dir = mkdtempSync(join(tmpdir(), 'diloco-ckpt-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const path = join(dir, 'state.ckpt');
const jobId = '0123456789abcdef';
const state = {
  round: 7,
  params: new Map([['a', Float32Array.from([1, 2, 3])], ['b', Float32Array.from([-0.5])]]),
  momentum: new Map([['a', Float32Array.from([0.1, 0.2, 0.3])], ['b', Float32Array.from([4])]]),
  previous: undefined,
};

test('a checkpoint round-trips exactly and leaves no temp file', () => {
  saveServerCheckpoint(path, { jobId, state });
  const back = loadServerCheckpoint(path);
  assert.equal(back.jobId, jobId);
  assert.equal(back.state.round, 7);
  assert.deepEqual([...back.state.params.get('a')!], [1, 2, 3]);
  assert.deepEqual([...back.state.momentum!.get('b')!], [4]);
  assert.equal(back.state.previous, undefined);
  assert.deepEqual(readdirSync(dir), ['state.ckpt']);
});

test('a damaged checkpoint is refused with what was wrong and what to do', () => {
  saveServerCheckpoint(path, { jobId, state });
  const good = readFileSync(path);
  const flipped = Buffer.from(good);
  flipped[flipped.length - 2]! ^= 0x40;
  const cases: [Buffer, RegExp][] = [
    [flipped, /hash mismatch/],
    [good.subarray(0, good.length - 4), /wrong length/],
    [good.subarray(0, 20), /cut short|unreadable header/],
    [Buffer.from('GGUF\x03\x00\x00\x00not a checkpoint'), /not a diloco serve checkpoint/],
  ];
  for (const [bytes, re] of cases) {
    writeFileSync(path, bytes);
    assert.throws(() => loadServerCheckpoint(path), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'bad_checkpoint');
      assert.match(e.message, re);
      assert.match(e.message, /move it away to start the job again/);
      return true;
    });
  }
});
