// Per-request norm adapters: concurrent requests with different gains (and the base) run in the same
// batched step, and each gets exactly the tokens it gets alone.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { SeqInput } from './batch.ts';
import { Batcher, type Forward, localForward } from './batcher.ts';
import { Generator } from './generator.ts';
import { loadModelPart } from './load.ts';
import type { ModelPart } from './model-part.ts';
import { Tokenizer } from './tokenizer.ts';

const MODEL = 'models/sharedllm-tiny.gguf';
let part: ModelPart;
let tokenizer: Tokenizer;

before(async () => {
  ({ part } = await loadModelPart(MODEL, { gpu: 'off', threads: 1, nCtx: 128, nSeqMax: 4 }));
  tokenizer = await Tokenizer.load(MODEL);
});
after(async () => {
  part?.dispose();
  await tokenizer?.dispose();
});

/** The base's norm gains times a factor per tensor (a stand-in adapter). */
function scaledGains(factor: number): Map<string, Float32Array> {
  return new Map([...part.norms].map(([name, g], i) => [name, g.map((v) => v * (1 + factor * ((i % 3) - 1)))]));
}

/** A Forward that records how many sequences each step held. */
function counting(fwd: Forward, sizes: number[]): Forward {
  return { ...fwd, openSequence: fwd.openSequence.bind(fwd), closeSequence: fwd.closeSequence.bind(fwd), step: (inputs: readonly SeqInput[]) => {
    sizes.push(inputs.length);
    return fwd.step(inputs);
  } };
}

test('requests with different norm adapters share steps and each gets its own greedy text', async () => {
  const prompt = tokenizer.encode('It is a truth universally acknowledged');
  const adapters = [undefined, scaledGains(0.3), scaledGains(-0.3)];
  const greedy = { temperature: 0, maxTokens: 12 };
  const alone: string[] = [];
  for (const a of adapters) {
    const gen = new Generator(new Batcher(localForward(part)), tokenizer);
    alone.push((await gen.complete(prompt, { ...greedy, ...(a ? { normOverrides: a } : {}) })).text);
  }
  assert.notEqual(alone[1], alone[0], 'an adapter changes the text');
  assert.notEqual(alone[2], alone[1]);
  const sizes: number[] = [];
  const gen = new Generator(new Batcher(counting(localForward(part), sizes)), tokenizer);
  const together = await Promise.all(adapters.map((a) => gen.complete(prompt, { ...greedy, ...(a ? { normOverrides: a } : {}) })));
  assert.deepEqual(together.map((r) => r.text), alone);
  assert.ok(sizes.filter((n) => n === 3).length >= 10, `most steps hold all three sequences: ${sizes.join(',')}`);
  assert.deepEqual(part.openSequences, [], 'every sequence closed');
});

test('gains of the wrong size are refused when the sequence opens', () => {
  const fwd = localForward(part);
  assert.throws(() => fwd.openSequence({ normOverrides: new Map([['output_norm.weight', new Float32Array(3)]]) }), /wrong size/);
  assert.deepEqual(part.openSequences, []);
});
