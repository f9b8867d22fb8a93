// The server side of a round: refusals leave the round to the others, too few deltas leave the weights
// alone, and a server restarted from its state continues bit-identically.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mulberry32 } from '../../util/random.ts';
import { gaussian } from '../random.ts';
import { defaultDilocoConfig } from './config.ts';
import { type Delta } from './delta.ts';
import { DilocoServer } from './round.ts';
import { encodeDelta } from './wire.ts';

const shapes = [{ name: 'w', ne: [64, 2] }, { name: 'g', ne: [64] }];
const rand = gaussian(mulberry32(9));
const random = (): Delta => new Map(shapes.map((s) => [s.name, Float32Array.from({ length: s.ne.reduce((a, b) => a * b, 1) }, () => rand() * 1e-2)]));
const init = random();

test('a refused delta is left out, a duplicate is refused, and too few deltas leave the weights alone', () => {
  const server = new DilocoServer({ ...defaultDilocoConfig(), aggregator: 'median' }, shapes, init);
  const ok = (p: string) => encodeDelta(random(), shapes, 'f16', 0, p);
  const late = encodeDelta(random(), shapes, 'f16', 7, 'p9');
  const out = server.completeRound([ok('p0'), ok('p1'), ok('p1'), late, ok('p2')], 3);
  assert.deepEqual(out.accepted, ['p0', 'p1', 'p2']);
  assert.deepEqual(out.refused.map((r) => [r.participant, r.code]), [['p1', 'duplicate'], ['p9', 'round']]);
  assert.ok(out.stepped);
  const before = server.getState().params;
  const thin = server.completeRound([encodeDelta(random(), shapes, 'f32', 1, 'p0')], 2);
  assert.equal(thin.stepped, false);
  assert.equal(server.round, 2, 'the round is over either way');
  assert.deepEqual(server.getState().params, before);
});

test('a server restarted from its state continues bit-identically', () => {
  const cfg = { ...defaultDilocoConfig(), aggregator: 'centered-clip' as const };
  const rounds = Array.from({ length: 4 }, (_, r) => [0, 1, 2].map((p) => encodeDelta(random(), shapes, 'int8', r, `p${p}`)));
  const straight = new DilocoServer(cfg, shapes, init);
  for (const r of rounds) straight.completeRound(r);
  const first = new DilocoServer(cfg, shapes, init);
  for (const r of rounds.slice(0, 2)) first.completeRound(r);
  const restarted = new DilocoServer(cfg, shapes, random());
  restarted.setState(first.getState());
  for (const r of rounds.slice(2)) restarted.completeRound(r);
  assert.equal(restarted.round, 4);
  assert.deepEqual(restarted.getState(), straight.getState());
});
