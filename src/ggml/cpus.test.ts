// Pinned compute threads (a persistent threadpool, one thread per listed core) compute exactly what ggml's
// default per-graph threads compute; bad core lists are refused with a hint.
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { test } from 'node:test';
import { loadModelPart } from '../model/load.ts';
import { cachedModel } from '../model/testing/cached-model.ts';
import { SHAPES } from '../model/testing/make-model.ts';
import { getThreadAffinity } from './affinity.ts';
import { getGgml } from './runtime.ts';

test('logits are identical with threads pinned and unpinned; bad lists refused', async () => {
  const threads = Math.min(2, availableParallelism());
  const cores = Array.from({ length: threads }, (_, i) => i);
  const model = cachedModel({ shape: { ...SHAPES.smollm2, tiedEmbeddings: false }, nLayer: 4, type: 'Q8_0', seed: 1 });
  const { part } = await loadModelPart(model, { gpu: 'off', threads, nCtx: 64 });
  const ggml = getGgml({ threads });
  const run = () => {
    const seq = part.openSequence();
    const out = part.step([{ seq, tokens: Int32Array.of(1, 200, 300, 400, 500) }]).logits[0]![0]!;
    part.closeSequence(seq);
    return out;
  };
  try {
    const free = run();
    const mask = getThreadAffinity();
    ggml.setCpus(cores);
    assert.deepEqual(ggml.cpus, cores);
    const pinned = run();
    const again = run();
    ggml.setCpus(undefined);
    // ggml pinned this thread when it made the pool; unpinning must give it all its cores back, or the
    // per-graph threads made afterwards would inherit one core (a 30x slower decode, seen before the fix).
    assert.deepEqual(getThreadAffinity(), mask);
    const back = run();
    assert.deepEqual(pinned, free);
    assert.deepEqual(again, free);
    assert.deepEqual(back, free);
    if (threads > 1) assert.throws(() => ggml.setCpus([0, 0]), /fewer cores than threads/);
    assert.throws(() => ggml.setCpus([-1, 0]), /bad core number/);
    assert.equal(ggml.cpus, undefined, 'a refused list leaves the default in place');
  } finally {
    ggml.setCpus(undefined);
    part.dispose();
  }
});
