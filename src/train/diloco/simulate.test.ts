// The one-process DiLoCo simulation with real ggml trainers: a clean run learns, one sign-flipping
// participant of four wrecks the mean while every robust aggregator still learns, and a refused delta
// leaves the round to the others.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { getGgml } from '../../ggml/runtime.ts';
import { type ModelConfig, PRESETS, paramCount } from '../config.ts';
import { loadCorpus } from '../corpus.ts';
import { prepareData } from '../data.ts';
import { signFlip } from './attacks.testing.ts';
import { AGGREGATORS, type AggregatorName, defaultDilocoConfig } from './config.ts';
import { type Attack, type SimulationOptions, runSimulation } from './simulate.ts';

const ggml = getGgml({ gpu: 'off', threads: 1 });
const data = prepareData(loadCorpus('test/fixtures/prose'), { vocabSize: 320, heldOutFraction: 0.1, splitSeed: 1 });
const model: ModelConfig = { nVocab: data.tokenizer.vocabSize, nCtx: 32, nEmbd: 32, nLayer: 1, nHead: 2, nHeadKv: 2, nFf: 64, ropeBase: 10000, rmsEps: 1e-5 };
const base = (aggregator: AggregatorName): SimulationOptions => ({
  ggml, model, train: data.train, heldOut: data.heldOut, evalTokens: 1024,
  inner: { ...PRESETS.tiny.optim, batch: 4, lr: 3e-3, warmup: 2 },
  diloco: { ...defaultDilocoConfig(), aggregator, assumedByzantine: 1 },
  participants: 4, rounds: 6, innerSteps: 5, seed: 1,
});

test('a clean run: the held-out loss falls round after round', () => {
  const r = runSimulation(base('mean'));
  const losses = r.rounds.map((x) => x.heldOutLoss!);
  console.log(`clean mean: ${r.initialLoss.toFixed(3)} -> ${losses.map((l) => l.toFixed(3)).join(' ')}`);
  assert.ok(r.finalLoss < r.initialLoss - 0.5, `held-out loss ${r.initialLoss} -> ${r.finalLoss}`);
  assert.ok(losses[5]! < losses[2]!, 'still falling in the second half');
  assert.equal(r.rounds[0]!.bytesPerParticipant, 4 * paramCount(model), 'f32 deltas: 4 bytes a parameter');
});

test('one sign-flipper (4x) of four wrecks the mean; median, trimmed mean, centered clipping and Krum hold', () => {
  const clean = runSimulation(base('mean')).finalLoss;
  const got: Record<string, number> = {};
  for (const aggregator of AGGREGATORS) {
    got[aggregator] = runSimulation({ ...base(aggregator), attackers: { count: 1, attack: signFlip(4) } }).finalLoss;
  }
  console.log(`clean ${clean.toFixed(3)}; under one sign-flipper: ${Object.entries(got).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ')}`);
  for (const aggregator of AGGREGATORS) {
    if (aggregator === 'mean') assert.ok(got.mean! > clean + 0.3, `mean under attack ${got.mean} vs clean ${clean}`);
    else assert.ok(got[aggregator]! < clean + 0.15 && got[aggregator]! < got.mean! - 0.2, `${aggregator} ${got[aggregator]} vs clean ${clean}, mean ${got.mean}`);
  }
});

test('a participant whose delta is refused is left out and the round completes (int8 deltas)', () => {
  const nanAttack: Attack = { name: 'nan', trains: false, craft: (c) => new Map([...c.honest[0]!].map(([k, v]) => [k, new Float32Array(v.length).fill(Number.NaN)])) };
  const r = runSimulation({ ...base('mean'), rounds: 2, diloco: { ...defaultDilocoConfig(), compression: 'int8' }, attackers: { count: 1, attack: nanAttack } });
  for (const m of r.rounds) {
    assert.equal(m.refused.length, 1);
    assert.equal(m.refused[0]!.code, 'non-finite');
    assert.match(m.refused[0]!.reason, /p3/);
  }
  assert.ok(r.finalLoss < r.initialLoss, 'the others still trained the model');
  assert.ok(r.rounds[0]!.bytesPerParticipant < 0.3 * 4 * paramCount(model), 'int8 deltas are about a quarter of f32');
});

test('f16 and int8 deltas train as f32 does (within 0.01 nats here) at a half and about a quarter of the bytes', () => {
  const run = (compression: 'f32' | 'f16' | 'int8') => runSimulation({ ...base('mean'), rounds: 3, diloco: { ...defaultDilocoConfig(), compression } });
  const f32 = run('f32');
  for (const [compression, ratio] of [['f16', 0.5], ['int8', 0.27]] as const) {
    const r = run(compression);
    console.log(`${compression}: final loss ${r.finalLoss.toFixed(4)} (f32 ${f32.finalLoss.toFixed(4)}), ${r.rounds[0]!.bytesPerParticipant} bytes a participant a round (f32 ${f32.rounds[0]!.bytesPerParticipant})`);
    assert.ok(Math.abs(r.finalLoss - f32.finalLoss) < 0.01);
    assert.ok(r.rounds[0]!.bytesPerParticipant <= ratio * f32.rounds[0]!.bytesPerParticipant);
  }
});
