import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Candidates } from './sampler-candidates.ts';
import { Mt19937 } from './sampler-rng.ts';
import { applyPenalties, createSampler, SamplerError } from './sampler.ts';

/** Deterministic pseudo-random logits for tests. */
function randomLogits(n: number, seed: number): Float32Array {
  const rng = new Mt19937(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rng.nextDouble() - 0.5) * 20;
  return out;
}

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

const logitsOf = (probs: number[]): Float32Array => Float32Array.from(probs, Math.log);

/** Empirical frequency of each token over `draws` samples. */
function frequencies(options: Parameters<typeof createSampler>[0], logits: Float32Array, draws: number): number[] {
  const sampler = createSampler(options);
  const counts = new Array<number>(logits.length).fill(0);
  for (let i = 0; i < draws; i++) counts[sampler.sample(logits)]!++;
  return counts.map((c) => c / draws);
}

function assertClose(actual: number[], expected: number[], tolerance: number): void {
  const worst = Math.max(...actual.map((a, i) => Math.abs(a - (expected[i] ?? 0))));
  assert.ok(worst <= tolerance, `largest difference ${worst.toFixed(4)} > ${tolerance}: ${actual.map((a) => a.toFixed(3)).join(' ')}`);
}

describe('random numbers like llama.cpp', () => {
  test('Mt19937 equals std::mt19937 (10000th output of the default seed is 4123659995)', () => {
    const rng = new Mt19937(5489);
    for (let i = 0; i < 9999; i++) rng.nextUint32();
    assert.equal(rng.nextUint32(), 4123659995);
    const seeded = new Mt19937(42);
    assert.deepEqual([1, 2, 3, 4, 5].map(() => seeded.nextUint32()), [1608637542, 3421126067, 4083286876, 787846414, 3143890026]);
  });

  test('nextDouble equals libstdc++ uniform_real_distribution<double>(0, 1)', () => {
    // Printed by g++ 12: std::mt19937 r(42); std::uniform_real_distribution<double> d(0, 1); d(r) ...
    const rng = new Mt19937(42);
    const expected = [0.79654298428784598, 0.18343478789336848, 0.77969099761266125, 0.59685016158005655, 0.44583275754843343];
    for (const e of expected) assert.equal(rng.nextDouble(), e);
    const other = new Mt19937(1234567);
    for (const e of [0.465175062240341, 0.36261613806887727, 0.93125294941007863]) assert.equal(other.nextDouble(), e);
  });

  test("two equally likely tokens: the choices llama.cpp's dist makes with seed 42", () => {
    // dist picks the first token whose running probability reaches sum * draw: draw < 0.5 gives token 0.
    const sampler = createSampler({ seed: 42, temperature: 1, topK: 0, topP: 1, minP: 0 });
    const logits = new Float32Array([0, 0]);
    assert.deepEqual([1, 2, 3, 4, 5].map(() => sampler.sample(logits)), [1, 0, 1, 1, 0]);
  });
});

describe('greedy', () => {
  test('temperature 0 is argmax, first index on ties', () => {
    const sampler = createSampler({ temperature: 0 });
    for (let seed = 0; seed < 20; seed++) {
      const logits = randomLogits(1000, seed);
      assert.equal(sampler.sample(logits), argmax(logits));
    }
    assert.equal(sampler.sample(new Float32Array([1, 3, 3, 2])), 1);
    assert.equal(createSampler({ temperature: -1 }).sample(new Float32Array([0, -1, 5])), 2);
  });

  test('top-k = 1 equals greedy at any temperature', () => {
    for (const temperature of [0.5, 1, 2]) {
      const sampler = createSampler({ topK: 1, temperature, seed: 7 });
      for (let seed = 0; seed < 20; seed++) {
        const logits = randomLogits(5000, seed);
        assert.equal(sampler.sample(logits), argmax(logits));
      }
    }
  });

  test('sampling does not modify the logits', () => {
    const logits = randomLogits(100, 3);
    const copy = logits.slice();
    createSampler({ seed: 1, repeatPenalty: 1.3 }).sample(logits, [1, 2, 3]);
    assert.deepEqual(logits, copy);
  });
});

describe('determinism', () => {
  test('same seed, same choices; reset() replays them; another seed differs', () => {
    const logits = randomLogits(32000, 11);
    const options = { seed: 1234, temperature: 1.5, topK: 0, topP: 1, minP: 0 };
    const a = createSampler(options);
    const b = createSampler(options);
    const runA = Array.from({ length: 50 }, () => a.sample(logits));
    const runB = Array.from({ length: 50 }, () => b.sample(logits));
    assert.deepEqual(runA, runB);
    a.reset();
    assert.deepEqual(Array.from({ length: 50 }, () => a.sample(logits)), runA);
    const c = createSampler({ ...options, seed: 4321 });
    assert.notDeepEqual(Array.from({ length: 50 }, () => c.sample(logits)), runA);
  });

  test('without a seed one is chosen and reported', () => {
    const sampler = createSampler();
    assert.ok(Number.isInteger(sampler.options.seed) && sampler.options.seed >= 0);
    assert.equal(sampler.options.topK, 40);
    assert.equal(sampler.options.penaltyLastN, 64);
  });
});

describe('distributions', () => {
  const probs = [0.05, 0.1, 0.15, 0.3, 0.4];
  const logits = logitsOf(probs);
  const draws = 20000;
  const tolerance = 0.02; // about 4 standard deviations for p = 0.4 at 20000 draws

  test('temperature 1 with every filter off follows the softmax', () => {
    assertClose(frequencies({ seed: 1, temperature: 1, topK: 0, topP: 1, minP: 0 }, logits, draws), probs, tolerance);
  });

  test('temperature 0.5 squares the probabilities (renormalised)', () => {
    const squared = probs.map((p) => p * p);
    const total = squared.reduce((s, p) => s + p, 0);
    const expected = squared.map((p) => p / total);
    assertClose(frequencies({ seed: 2, temperature: 0.5, topK: 0, topP: 1, minP: 0 }, logits, draws), expected, tolerance);
  });

  test('top-k = 2 keeps the two most likely tokens', () => {
    assertClose(frequencies({ seed: 3, temperature: 1, topK: 2, topP: 1, minP: 0 }, logits, draws), [0, 0, 0, 3 / 7, 4 / 7], tolerance);
  });

  test('top-p = 0.65 keeps the smallest set reaching 65% (0.4 + 0.3)', () => {
    assertClose(frequencies({ seed: 4, temperature: 1, topK: 0, topP: 0.65, minP: 0 }, logits, draws), [0, 0, 0, 3 / 7, 4 / 7], tolerance);
  });

  test('min-p = 0.2 drops tokens below 0.2 * 0.4 = 0.08 (only the 0.05 one)', () => {
    const expected = [0, 0.1 / 0.95, 0.15 / 0.95, 0.3 / 0.95, 0.4 / 0.95];
    assertClose(frequencies({ seed: 5, temperature: 1, topK: 0, topP: 1, minP: 0.2 }, logits, draws), expected, tolerance);
  });

  test('top-p sees the logits before temperature, as in llama.cpp', () => {
    // At temperature 1 the top two hold 70% >= 0.65, so the third is cut even though temperature 3 flattens them.
    const freq = frequencies({ seed: 6, temperature: 3, topK: 0, topP: 0.65, minP: 0 }, logits, 5000);
    assert.deepEqual(freq.slice(0, 3), [0, 0, 0]);
  });

  test('a 128k vocabulary with the default chain picks only from the top 40', () => {
    const big = randomLogits(128256, 99);
    const top40 = new Set(Array.from(big.keys()).sort((a, b) => big[b]! - big[a]!).slice(0, 40));
    const sampler = createSampler({ seed: 9, topP: 1, minP: 0, temperature: 5 });
    for (let i = 0; i < 200; i++) assert.ok(top40.has(sampler.sample(big)));
  });

  test('top-p without top-k looks past the first 256 candidates when it must', () => {
    const flat = new Float32Array(8192); // all equal: top-p 0.5 keeps 4096 of them, the lowest ids on ties
    const sampler = createSampler({ seed: 10, topK: 0, topP: 0.5, minP: 0, temperature: 1 });
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) seen.add(sampler.sample(flat));
    assert.ok(seen.size > 150, `expected many distinct tokens, got ${seen.size}`);
    assert.ok(Math.max(...seen) < 4096 && Math.max(...seen) > 256);
  });
});

describe('penalties', () => {
  const base = { repeatPenalty: 1, frequencyPenalty: 0, presencePenalty: 0, penaltyLastN: 64 };

  test('repeat penalty divides positive logits and multiplies negative ones, only for seen tokens', () => {
    const logits = new Float32Array([2, -1, 3, 4]);
    applyPenalties(logits, [0, 1, 0], { ...base, repeatPenalty: 2 });
    assert.deepEqual(Array.from(logits), [1, -2, 3, 4]);
  });

  test('frequency counts occurrences, presence counts once', () => {
    const logits = new Float32Array([1, 1, 1]);
    applyPenalties(logits, [0, 0, 0, 1], { ...base, frequencyPenalty: 0.5, presencePenalty: 0.25 });
    assert.deepEqual(Array.from(logits), [1 - 1.5 - 0.25, 1 - 0.5 - 0.25, 1]);
  });

  test('only the last penaltyLastN tokens count; -1 means all', () => {
    const window = new Float32Array([1, 1]);
    applyPenalties(window, [0, 1, 1], { ...base, presencePenalty: 1, penaltyLastN: 2 });
    assert.deepEqual(Array.from(window), [1, 0]);
    const all = new Float32Array([1, 1]);
    applyPenalties(all, [0, 1, 1], { ...base, presencePenalty: 1, penaltyLastN: -1 });
    assert.deepEqual(Array.from(all), [0, 0]);
  });

  test('the sampler applies them before choosing', () => {
    const logits = new Float32Array([2, 1.9]);
    assert.equal(createSampler({ temperature: 0 }).sample(logits, [0]), 0);
    assert.equal(createSampler({ temperature: 0, repeatPenalty: 1.1 }).sample(logits, [0]), 1);
    assert.equal(createSampler({ temperature: 0, repeatPenalty: 1.1, penaltyLastN: 0 }).sample(logits, [0]), 0);
    assert.equal(createSampler({ temperature: 0, frequencyPenalty: 0.06 }).sample(logits, [0, 0]), 1);
    assert.equal(createSampler({ temperature: 0, frequencyPenalty: 0.06 }).sample(logits, [0]), 0);
  });
});

describe('partial selection', () => {
  test('sortTop(m) puts the m best first in descending order and keeps every candidate', () => {
    const logits = randomLogits(10000, 5);
    const cur = new Candidates();
    cur.fill(logits);
    cur.sortTop(50);
    const best = Array.from(logits).sort((a, b) => b - a).slice(0, 50);
    assert.deepEqual(Array.from(cur.logits.subarray(0, 50)), best);
    for (let i = 0; i < 50; i++) assert.equal(logits[cur.ids[i]!], cur.logits[i]);
    assert.deepEqual(Array.from(cur.ids).sort((a, b) => a - b), Array.from(logits.keys()));
    assert.equal(cur.sorted, false);
    cur.sortTop(cur.size);
    assert.equal(cur.sorted, true);
    assert.deepEqual(Array.from(cur.logits), Array.from(logits).sort((a, b) => b - a));
  });

  test('a large sortTop sorts everything natively: descending, lower id first on ties, values intact', () => {
    const logits = new Float32Array(5000);
    for (let i = 0; i < logits.length; i++) logits[i] = [-0, 0, 1.5, -3.25, -Infinity, 1e-30, -1e30][i % 7]!;
    logits[4321] = 7;
    const cur = new Candidates();
    cur.fill(logits);
    cur.sortTop(4000);
    assert.equal(cur.sorted, true);
    assert.equal(cur.ids[0], 4321);
    const order = Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]! || a - b);
    // -0 and 0 compare equal as numbers but differ in bits; the native sort puts 0 before -0.
    const actualLogits = Array.from(cur.logits);
    assert.deepEqual(actualLogits.map((l) => (l === 0 ? 0 : l)), order.map((i) => (logits[i] === 0 ? 0 : logits[i])));
    for (let i = 0; i < cur.size; i++) assert.ok(Object.is(logits[cur.ids[i]!], cur.logits[i]));
    for (let i = 1; i < cur.size; i++) {
      if (cur.logits[i] === cur.logits[i - 1] && Object.is(cur.logits[i], cur.logits[i - 1])) assert.ok(cur.ids[i]! > cur.ids[i - 1]!);
    }
  });
});

describe('errors', () => {
  test('bad options and empty logits are SamplerErrors', () => {
    assert.throws(() => createSampler({ repeatPenalty: 0 }), SamplerError);
    assert.throws(() => createSampler({ topK: 1.5 }), SamplerError);
    assert.throws(() => createSampler({ temperature: Number.NaN }), SamplerError);
    assert.throws(() => createSampler({ seed: -1 }), SamplerError);
    assert.throws(() => createSampler({ penaltyLastN: -2 }), SamplerError);
    assert.throws(() => createSampler().sample(new Float32Array(0)), SamplerError);
  });
});
