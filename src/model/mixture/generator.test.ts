import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { getGgml } from '../../ggml/runtime.ts';
import { Generator } from '../generator.ts';
import { MixtureGenerator, type MixtureResult } from './generator.ts';
import { MixtureUnavailableError, type Specialist, TokenizerMismatchError } from './specialist.ts';
import { type TestSpecialists, failingSpecialist, loadTestSpecialists } from './testing.ts';

const ggml = getGgml({ gpu: 'off' });
let t: TestSpecialists;
before(async () => {
  t = await loadTestSpecialists(3);
});
after(async () => {
  await t.dispose();
});

async function run(gen: MixtureGenerator, maxTokens = 8): Promise<{ pieces: { token: number; shares: number[] }[]; result: MixtureResult }> {
  const prompt = t.tokenizer.encode('The weather today is');
  const it = gen.stream(prompt, { maxTokens, temperature: 0 });
  const pieces: { token: number; shares: number[] }[] = [];
  for (;;) {
    const r = await it.next();
    if (r.done) return { pieces, result: r.value };
    if (r.value.attribution) pieces.push({ token: r.value.token, shares: r.value.attribution.map((a) => a.share) });
  }
}

test('every token carries shares summing to 1; the trail has one entry per token', async () => {
  const { pieces, result } = await run(new MixtureGenerator(t.specialists, t.tokenizer, ggml));
  assert.equal(pieces.length, result.tokens.length);
  assert.ok(pieces.length > 0);
  for (const p of pieces) assert.ok(Math.abs(p.shares.reduce((a, b) => a + b, 0) - 1) < 1e-5, `${p.shares}`);
  assert.equal(result.trail.tokens.length, result.tokens.length);
  assert.equal(result.trail.routed.length + result.trail.notRouted.length, 3);
  for (const tok of result.trail.tokens) assert.ok(Math.abs(tok.weights.reduce((a, w) => a + w.weight, 0) - 1) < 1e-5);
});

test('a mixture of one specialist generates what that model does alone (greedy)', async () => {
  const prompt = t.tokenizer.encode('Once upon a time');
  const alone = await new Generator(t.specialists[0]!.batcher, t.tokenizer).complete(prompt, { maxTokens: 10, temperature: 0 });
  const it = new MixtureGenerator([t.specialists[0]!], t.tokenizer, ggml).stream(prompt, { maxTokens: 10, temperature: 0 });
  let r = await it.next();
  while (!r.done) r = await it.next();
  assert.deepEqual(r.value.tokens, alone.tokens);
});

test('the router keeps the top k', async () => {
  const { result } = await run(new MixtureGenerator(t.specialists, t.tokenizer, ggml, { k: 2, minWeight: 0 }), 2);
  assert.equal(result.trail.routed.length, 2);
  assert.equal(result.trail.notRouted.length, 1);
  const [a, b] = result.trail.routed;
  assert.ok(a!.weight >= b!.weight);
});

test('top1 puts every share on one specialist; uniform mixes with equal weights', async () => {
  const top1 = await run(new MixtureGenerator(t.specialists, t.tokenizer, ggml, { mode: 'top1' }), 4);
  for (const p of top1.pieces) assert.equal(Math.max(...p.shares), 1);
  const uniform = await run(new MixtureGenerator(t.specialists, t.tokenizer, ggml, { mode: 'uniform' }), 4);
  for (const p of uniform.pieces) assert.ok(Math.abs(p.shares.reduce((a, b) => a + b, 0) - 1) < 1e-5);
});

test('a specialist failing mid-answer drops out; the answer finishes from the rest', async () => {
  const logged: string[] = [];
  const specialists: Specialist[] = [t.specialists[0]!, failingSpecialist(t.specialists[1]!, 2), t.specialists[2]!];
  const { pieces, result } = await run(new MixtureGenerator(specialists, t.tokenizer, ggml, { log: (m) => logged.push(m), minWeight: 0 }), 8);
  assert.equal(result.tokens.length, 8);
  assert.equal(result.trail.dropped.length, 1);
  assert.equal(result.trail.dropped[0]!.model, 'spec-2-failing');
  assert.equal(result.trail.dropped[0]!.atToken, 3);
  assert.equal(pieces.at(-1)!.shares.length, 2);
  for (const p of pieces) assert.ok(Math.abs(p.shares.reduce((a, b) => a + b, 0) - 1) < 1e-5);
  assert.match(logged.join('\n'), /spec-2-failing dropped out after 3 tokens/);
});

test('every specialist failing is a MixtureUnavailableError naming them', async () => {
  const all = [failingSpecialist(t.specialists[0]!, 'prefill'), failingSpecialist(t.specialists[1]!, 1)];
  await assert.rejects(run(new MixtureGenerator(all, t.tokenizer, ggml)), (e: unknown) => e instanceof MixtureUnavailableError && /spec-1-failing.*spec-2-failing/s.test(e.message));
});

test('specialists with different tokenizers are refused, naming the odd one', () => {
  const odd: Specialist = { ...failingSpecialist(t.specialists[1]!, 0, 'odd'), tokenizerHash: 'sha256:other' };
  assert.throws(() => new MixtureGenerator([t.specialists[0]!, odd], t.tokenizer, ggml), (e: unknown) => e instanceof TokenizerMismatchError && /odd/.test(e.message));
});
