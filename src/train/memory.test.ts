// The memory estimate that guards a run is an upper bound of what ggml allocates, and not a wild one.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { getGgml } from '../ggml/runtime.ts';
import { PRESETS, presetConfig } from './config.ts';
import { TrainMemoryError } from './errors.ts';
import { checkTrainingMemory, estimateTrainingMemory } from './memory.ts';
import { initialParams } from './params.ts';
import { Trainer } from './trainer.ts';

const ggml = getGgml({ gpu: 'off', threads: 1 });

test('estimate >= measured parameters + AdamW state + compute buffers, within 2x', () => {
  for (const [name, batch, nCtx] of [['tiny', 2, 64], ['small', 1, 64]] as const) {
    const model = { ...presetConfig(name, PRESETS[name].vocabSize), nCtx };
    const t = new Trainer(ggml, model, { ...PRESETS[name].optim, batch, steps: 2, seed: 1 }, initialParams(model, 1));
    try {
      const ids = new Int32Array(batch * nCtx).fill(5);
      t.trainStep(ids, ids);
      const measured = t.computeBytes() + t.params.bytes;
      const est = estimateTrainingMemory(model, batch).total;
      console.log(`${name} batch ${batch} ctx ${nCtx}: measured ${(measured / 2 ** 20).toFixed(1)} MiB, estimated ${(est / 2 ** 20).toFixed(1)} MiB`);
      assert.ok(est >= measured, `${name}: estimate ${est} below measured ${measured}`);
      assert.ok(est < 2 * measured, `${name}: estimate ${est} over twice measured ${measured}`);
    } finally {
      t.dispose();
    }
  }
});

test('a preset that does not fit is refused before allocation', () => {
  const model = presetConfig('30m', 8192);
  assert.throws(() => checkTrainingMemory(model, 8, 256 * 2 ** 20, 'the 30m preset'), (e: unknown) => e instanceof TrainMemoryError && /does not fit in memory/.test(e.message));
  assert.doesNotThrow(() => checkTrainingMemory(model, 8, 64 * 2 ** 30, 'the 30m preset'));
});
