// Aggregators on hand-made deltas: each rule's defining property, and that one wild participant moves the
// mean but not the robust rules.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mulberry32 } from '../../util/random.ts';
import { gaussian } from '../random.ts';
import { aggregate, centeredClip, krum, mean, median, trimmedMean } from './aggregate.ts';
import { AGGREGATORS } from './config.ts';
import { type Delta, l2Norm, squaredDistance } from './delta.ts';
import { NesterovOuter } from './outer.ts';

const d = (a: number[], b: number[] = [0]): Delta => new Map([['a', Float32Array.from(a)], ['b', Float32Array.from(b)]]);
const arr = (x: Delta, k = 'a') => Array.from(x.get(k)!);
const close = (a: number[], b: number[], tol = 1e-5) => assert.ok(a.every((v, i) => Math.abs(v - b[i]!) <= tol), `${a} vs ${b}`);

test('mean, median and trimmed mean per coordinate', () => {
  const xs = [d([1, 10]), d([2, 20]), d([3, 30]), d([4, 40]), d([100, -1000])];
  close(arr(mean(xs)), [22, -180]);
  close(arr(median(xs)), [3, 20]);
  close(arr(median(xs.slice(0, 4))), [2.5, 25]);
  // f = 1 drops the largest and smallest of each coordinate.
  close(arr(trimmedMean(xs, 1)), [3, 20]);
  // f larger than the participants allow is clamped to (n - 1) / 2: the median.
  close(arr(trimmedMean(xs, 9)), arr(median(xs)));
});

test('Krum picks a delta from the honest cluster; Multi-Krum averages the m best', () => {
  const xs = [d([1, 1]), d([1.1, 0.9]), d([0.9, 1.05]), d([1.05, 1.0]), d([50, -50])];
  const k = krum(xs, 1);
  assert.equal(k.selected!.length, 1);
  assert.ok(k.selected![0]! < 4, `selected ${k.selected}`);
  const m = krum(xs, 1, 3);
  assert.equal(m.selected!.length, 3);
  assert.ok(!m.selected!.includes(4));
});

test('centered clipping: honest deltas within the radius are averaged; an outlier moves it at most tau / n', () => {
  const honest = [d([1, 0]), d([0, 1]), d([1, 1])];
  const center = d([0.5, 0.5]);
  close(arr(centeredClip(honest, { center, clipRadius: 10, clipIterations: 1 })), arr(mean(honest)));
  const wild = [...honest, d([1e6, 1e6])];
  const v = centeredClip(wild, { center, clipRadius: 1, clipIterations: 1 });
  const shift = Math.sqrt(squaredDistance(v, center));
  assert.ok(shift <= 1 + 1e-6, `moved ${shift}`);
});

test('one wild participant of five moves the mean far and the robust rules little', () => {
  const g = gaussian(mulberry32(3));
  const honest = Array.from({ length: 4 }, () => d(Array.from({ length: 200 }, () => 1 + 0.1 * g()), [1]));
  const truth = mean(honest);
  const attack = d(Array.from({ length: 200 }, () => -100), [-100]);
  for (const kind of AGGREGATORS) {
    const out = aggregate(kind, [...honest, attack], { f: 1 }).delta;
    const err = Math.sqrt(squaredDistance(out, truth)) / l2Norm(truth);
    if (kind === 'mean') assert.ok(err > 10, `mean error ${err}`);
    else assert.ok(err < 0.2, `${kind} error ${err}`);
  }
});

test('Nesterov outer step matches the formula; lr 1, momentum 0 replaces the weights by the average model', () => {
  const p = new Map([['a', Float32Array.from([1, 2])]]);
  const o = new NesterovOuter({ lr: 0.5, momentum: 0.9 });
  const g = new Map([['a', Float32Array.from([1, -1])]]);
  o.step(p, g); // buf = g; theta -= 0.5 * (g + 0.9 g)
  close(Array.from(p.get('a')!), [1 - 0.95, 2 + 0.95]);
  o.step(p, g); // buf = 0.9 g + g = 1.9 g; theta -= 0.5 * (g + 1.71 g)
  close(Array.from(p.get('a')!), [0.05 - 1.355, 2.95 + 1.355]);
  const q = new Map([['a', Float32Array.from([3, 3])]]);
  // Two participants ended at 1 and 2: their pseudo-gradients 2 and 1 average to 1.5 -> theta = 1.5.
  new NesterovOuter({ lr: 1, momentum: 0 }).step(q, new Map([['a', Float32Array.from([1.5, 1.5])]]));
  close(Array.from(q.get('a')!), [1.5, 1.5]);
  assert.throws(() => new NesterovOuter({ lr: 0, momentum: 0.9 }));
});
