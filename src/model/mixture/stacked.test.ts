import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { getGgml } from '../../ggml/runtime.ts';
import { StackedModel } from '../stacked-model.ts';
import { MixtureGenerator, type MixtureResult } from './generator.ts';
import type { Specialist } from './specialist.ts';
import { StackedGroup } from './stacked.ts';
import { type TestSpecialists, loadTestSpecialists } from './testing.ts';

const ggml = getGgml({ gpu: 'off' });
let t: TestSpecialists;
let stack: StackedModel;
let group: StackedGroup;
before(async () => {
  t = await loadTestSpecialists(3);
  stack = await StackedModel.load(t.paths, { gpu: 'off', nCtx: 256 });
  group = new StackedGroup(stack, ggml, 'sha256:gpt2-test');
});
after(async () => {
  stack.dispose();
  await t.dispose();
});

/** Counts calls of a method from now on; returns the count so far. */
function count(o: StackedModel, method: 'decode' | 'step'): () => number {
  let n = 0;
  const f = o[method].bind(o) as (...a: never[]) => unknown;
  Object.assign(o, { [method]: (...a: never[]) => (n++, f(...a)) });
  return () => n;
}

const members = () => [0, 1, 2].map((i) => group.member(i, `spec-${i + 1}`));

async function run(specialists: Specialist[], opts: ConstructorParameters<typeof MixtureGenerator>[3] = {}, maxTokens = 8, text = 'The weather today is'): Promise<MixtureResult> {
  const it = new MixtureGenerator(specialists, t.tokenizer, ggml, { minWeight: 0, ...opts }).stream(t.tokenizer.encode(text), { maxTokens, temperature: 0 });
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}

function sameTrail(a: MixtureResult, b: MixtureResult): void {
  assert.deepEqual(a.tokens, b.tokens);
  a.trail.tokens.forEach((tok, i) => {
    tok.attribution.forEach((s, k) => {
      const other = b.trail.tokens[i]!.attribution[k]!;
      assert.equal(s.model, other.model);
      assert.ok(Math.abs(s.share - other.share) < 1e-3, `token ${i} ${s.model}: ${s.share} vs ${other.share}`);
    });
  });
}

test('a mixture of stacked specialists answers as the same specialists loaded apart (tokens and shares)', async () => {
  const fusedSteps = count(stack, 'decode');
  const fused = await run(members());
  const steps = fusedSteps();
  const apart = await run(t.specialists);
  assert.equal(fused.tokens.length, 8);
  assert.equal(steps, 7, 'one fused graph a token after the first');
  sameTrail(fused, apart);
  assert.deepEqual(stack.k, 3);
});

test('the router drops a stacked member and the others still step in one graph', async () => {
  const fused = await run(members(), { k: 2 });
  const apart = await run(t.specialists, { k: 2 });
  assert.equal(fused.trail.routed.length, 2);
  assert.deepEqual(fused.trail.routed.map((r) => r.model), apart.trail.routed.map((r) => r.model));
  sameTrail(fused, apart);
});

test('stacked members mix with a specialist outside the stack; a member also works alone (lending)', async () => {
  const [a, b] = members();
  const mixed = await run([a!, b!, t.specialists[2]!]);
  const apart = await run(t.specialists);
  sameTrail(mixed, apart);
  const seq = await a!.start(t.tokenizer.encode('Hello'));
  const alone = await t.specialists[0]!.start(t.tokenizer.encode('Hello'));
  assert.ok(Math.abs(seq.promptLogLikelihood - alone.promptLogLikelihood) < 1e-2);
  const x = await seq.next(13);
  const y = await alone.next(13);
  assert.ok(Math.abs(x[5]! - y[5]!) < 1e-2);
  await seq.close();
  await alone.close();
});

test('concurrent mixtures over one stack share its decode steps, and each answers as it would alone', async () => {
  const texts = ['The weather today is', 'Once upon a time'];
  const answer = async (text: string) => (await run(members(), {}, 6, text)).tokens;
  const alone: number[][] = [];
  for (const text of texts) alone.push(await answer(text)); // one after the other
  const decodes = count(stack, 'decode');
  const both = await Promise.all(texts.map(answer)); // at once
  assert.deepEqual(both, alone);
  assert.ok(decodes() <= 6, `${decodes()} decode steps for two answers of 6 tokens: they were not batched`);
});
