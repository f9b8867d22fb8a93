// The training ops through the FFI: ggml's backward of a small expression, and one AdamW step against the
// formula written out.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Executor } from './executor.ts';
import { Graph, T, readF32 } from './graph.ts';
import { adamwParams, adamwStep, buildBackward, gradOf, setLoss, setParam } from './opt.ts';
import { getGgml } from './runtime.ts';
import { WeightSet } from './weights.ts';

const ggml = getGgml({ gpu: 'off', threads: 1 });

function f32(a: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(a).buffer);
}

test('backward of loss = sum((w * x)^2) is 2 w x^2; AdamW updates w as the formula says', () => {
  const w0 = [0.5, -1, 2];
  const x = [1, 2, -3];
  const ws = new WeightSet(ggml, [
    { name: 'w', type: T.F32, ne: [3], matmul: false },
    { name: 'm', type: T.F32, ne: [3], matmul: false },
    { name: 'v', type: T.F32, ne: [3], matmul: false },
    { name: 'one', type: T.F32, ne: [1], matmul: false },
  ]);
  const g = new Graph(ggml, 256, true);
  const ex = new Executor(ggml, 256);
  try {
    ws.upload('w', f32(w0));
    ws.upload('m', f32([0, 0, 0]));
    ws.upload('v', f32([0, 0, 0]));
    ws.upload('one', f32([1]));
    const w = ws.get('w');
    setParam(ggml, w);
    const xt = g.input(T.F32, [3], new Float32Array(x));
    const loss = g.sum(g.sqr(g.mul(w, xt)));
    setLoss(ggml, loss);
    g.expand(loss);
    buildBackward(g, loss, ws.get('one'));
    const grad = gradOf(g, w)!;
    g.output(grad);
    g.expand(grad);
    const h = { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };
    g.expand(adamwStep(g, w, grad, ws.get('m'), ws.get('v'), g.input(T.F32, [7], adamwParams(h, 1))));
    ex.run(g);

    const want = w0.map((wi, i) => 2 * wi * x[i]! ** 2);
    assert.deepEqual(Array.from(readF32(ggml, grad, 3)), want);
    assert.equal(readF32(ggml, loss, 1)[0], w0.reduce((s, wi, i) => s + (wi * x[i]!) ** 2, 0));
    // step 1: m = (1-b1) g, v = (1-b2) g^2, mh = g, vh = g^2: w <- w (1 - lr wd) - lr g / (|g| + eps)
    const after = readF32(ggml, w, 3);
    w0.forEach((wi, i) => {
      const gi = want[i]!;
      const expect = wi * (1 - h.lr * h.weightDecay) - (h.lr * gi) / (Math.abs(gi) + h.eps);
      assert.ok(Math.abs(after[i]! - expect) < 1e-6, `w[${i}] = ${after[i]}, expected ${expect}`);
    });
  } finally {
    ex.dispose();
    g.dispose();
    ws.dispose();
  }
});
