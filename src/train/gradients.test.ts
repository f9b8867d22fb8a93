// ggml's automatic backward pass through our training graph, checked against central finite differences
// of the loss, for multi-head and grouped-query attention.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Executor } from '../ggml/executor.ts';
import { Graph, readF32 } from '../ggml/graph.ts';
import { buildBackward, gradOf, setLoss } from '../ggml/opt.ts';
import { getGgml } from '../ggml/runtime.ts';
import type { ModelConfig } from './config.ts';
import { BatchInputs, buildForward, forwardInputs } from './forward.ts';
import { ParamStore, type TensorMap, elements, initialParams } from './params.ts';
import { gaussian, seededRandom } from './random.ts';

const ggml = getGgml({ gpu: 'off', threads: 1 });

function micro(nHeadKv: number): ModelConfig {
  return { nVocab: 48, nCtx: 8, nEmbd: 32, nLayer: 2, nHead: 4, nHeadKv, nFf: 64, ropeBase: 10000, rmsEps: 1e-5 };
}

/** Loss and gradients of every parameter at `params`, for one batch. */
function lossAndGrads(m: ModelConfig, params: TensorMap, input: Int32Array, target: Int32Array, B: number): { loss: number; grads: TensorMap } {
  const P = new ParamStore(ggml, m);
  const g = new Graph(ggml, 1 << 13, true);
  const ex = new Executor(ggml, 1 << 13);
  try {
    P.setParams(params);
    const io = new BatchInputs(B, m.nCtx, m.nVocab);
    io.fill(input, target);
    const out = buildForward(g, m, (n) => P.param(n), forwardInputs(g, m, io), B, m.nCtx);
    setLoss(ggml, out.loss);
    g.expand(out.loss);
    buildBackward(g, out.loss, P.lossGrad);
    const gradT = P.specs.map((s) => {
      const t = gradOf(g, P.param(s.name))!;
      g.output(t);
      g.expand(t);
      return t;
    });
    ex.run(g);
    const grads: TensorMap = new Map(P.specs.map((s, i) => [s.name, readF32(ggml, gradT[i]!, elements(s.ne))]));
    return { loss: readF32(ggml, out.loss, 1)[0]!, grads };
  } finally {
    ex.dispose();
    g.dispose();
    P.dispose();
  }
}

for (const nHeadKv of [4, 2]) {
  test(`backward matches finite differences (nHead 4, nHeadKv ${nHeadKv})`, () => {
    const m = micro(nHeadKv);
    const B = 2;
    const params = initialParams(m, 3);
    // Larger weights than the 0.02 init, so every path (attention included) carries signal.
    const noise = gaussian(seededRandom(9));
    for (const [name, a] of params) if (!name.includes('norm')) for (let i = 0; i < a.length; i++) a[i] = noise() * 0.3;
    const rnd = seededRandom(5);
    const input = Int32Array.from({ length: B * m.nCtx }, () => Math.floor(rnd() * m.nVocab));
    const target = Int32Array.from({ length: B * m.nCtx }, () => Math.floor(rnd() * m.nVocab));
    const { grads } = lossAndGrads(m, params, input, target, B);

    const h = 1e-2;
    let worst = 0;
    const checked = ['token_embd.weight', 'blk.0.attn_q.weight', 'blk.0.attn_k.weight', 'blk.0.attn_v.weight', 'blk.1.attn_output.weight', 'blk.0.ffn_gate.weight', 'blk.1.ffn_down.weight', 'blk.0.attn_norm.weight', 'output_norm.weight', 'output.weight'];
    for (const name of checked) {
      const a = params.get(name)!;
      // the element with the largest gradient, and one at random
      const gr = grads.get(name)!;
      let big = 0;
      for (let i = 0; i < gr.length; i++) if (Math.abs(gr[i]!) > Math.abs(gr[big]!)) big = i;
      for (const i of [big, Math.floor(rnd() * a.length)]) {
        const keep = a[i]!;
        a[i] = keep + h;
        const up = lossAndGrads(m, params, input, target, B).loss;
        a[i] = keep - h;
        const down = lossAndGrads(m, params, input, target, B).loss;
        a[i] = keep;
        const fd = (up - down) / (2 * h);
        const err = Math.abs(fd - gr[i]!) / (Math.abs(fd) + 1e-3);
        worst = Math.max(worst, err);
        assert.ok(err < 0.05, `${name}[${i}]: backward ${gr[i]} vs finite difference ${fd}`);
      }
    }
    console.log(`largest relative gradient error (nHeadKv ${nHeadKv}): ${worst.toExponential(2)}`);
  });
}
