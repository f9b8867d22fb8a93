// --mixture flags are checked before any work; colour only on a terminal without NO_COLOR.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from './args.ts';
import { checkMixtureFlags, useColour } from './generate-mixture.ts';
import { cachedModel } from '../model/testing/cached-model.ts';
import { SPECIALIST_SHAPE } from '../model/mixture/testing.ts';

test('colour on a TTY unless NO_COLOR is set and not empty', () => {
  assert.equal(useColour({ isTTY: true }, {}), true);
  assert.equal(useColour({ isTTY: true }, { NO_COLOR: '1' }), false);
  assert.equal(useColour({ isTTY: true }, { NO_COLOR: '' }), true);
  assert.equal(useColour({ isTTY: false }, {}), false);
  assert.equal(useColour({}, {}), false);
});

test('--mixture: files must exist, once each, with one tokenizer; --show-attribution needs it', async () => {
  const a = cachedModel({ shape: SPECIALIST_SHAPE, nLayer: 2, type: 'Q8_0', seed: 1 });
  const b = cachedModel({ shape: SPECIALIST_SHAPE, nLayer: 2, type: 'Q8_0', seed: 2 });
  const other = cachedModel({ shape: { ...SPECIALIST_SHAPE, vocab: 'llama-spm' }, nLayer: 1, type: 'Q8_0', seed: 1 });
  assert.deepEqual(await checkMixtureFlags('generate', { mixture: `${a},${b}` }), [a, b]);
  assert.equal(await checkMixtureFlags('generate', {}), undefined);
  const refuses = async (flags: Record<string, unknown>, re: RegExp) =>
    assert.rejects(checkMixtureFlags('generate', flags as never), (e: unknown) => e instanceof UsageError && re.test(e.message));
  await refuses({ 'show-attribution': true }, /needs --mixture/);
  await refuses({ mixture: `${a},/nope.gguf` }, /not found: \/nope\.gguf/);
  await refuses({ mixture: `${a},${a}` }, /twice/);
  await refuses({ mixture: `${a},${other}` }, /another tokenizer/);
  await refuses({ mixture: a, model: b }, /not both/);
});
