// The GainBank behind batched per-user norm adapters: gains uploaded once per sequence, slots reused and
// grown, every row bitwise what its sequence gets alone, and rms_norm kept next to its mul (ggml's CPU
// backend fuses the pair only when they are adjacent nodes).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Executor } from '../ggml/executor.ts';
import { Graph, T, readF32 } from '../ggml/graph.ts';
import type { Tensor } from '../ggml/tensor.ts';
import { tensorSrc } from '../ggml/tensor.ts';
import type { SeqInput } from './batch.ts';
import { GAIN_BANK, GainBank } from './gain-bank.ts';
import { type BuildContext, rmsNorm, ropeParams } from './graphs/blocks.ts';
import { SequenceCache } from './kv-cache.ts';
import { loadModelPart } from './load.ts';
import type { ModelPart } from './model-part.ts';

const MODEL = 'models/sharedllm-tiny.gguf';
let part: ModelPart;

before(async () => {
  ({ part } = await loadModelPart(MODEL, { gpu: 'off', threads: 1, nCtx: 32, nSeqMax: 4 }));
});
after(() => part?.dispose());

/** A stand-in adapter: the base gains times a factor that depends on the seed and the tensor. */
function gains(seed: number): Map<string, Float32Array> {
  return new Map([...part.norms].map(([name, g], i) => [name, g.map((v, j) => v * (1 + 0.05 * (((seed + i + j) % 7) - 3)))]));
}

/** Prefill `prompt` then two single-token steps for every sequence together; the logits of each step. */
function run(seqs: number[]): Float32Array[][] {
  const out: Float32Array[][] = [];
  const steps: Int32Array[] = [Int32Array.of(1, 5, 9), Int32Array.of(7), Int32Array.of(3)];
  for (const tokens of steps) {
    const r = part.step(seqs.map((seq): SeqInput => ({ seq, tokens })));
    out.push(r.logits.map((l) => l[0]!));
  }
  return out;
}

test('more adapted sequences than the bank first holds share steps; each row is bitwise its own run alone', () => {
  const n = GAIN_BANK.initialSlots + 2; // forces the bank to grow once while sequences hold slots
  const adapters = Array.from({ length: n }, (_, i) => (i === 3 ? undefined : gains(i)));
  const alone = adapters.map((a) => {
    const seq = part.openSequence();
    if (a) part.setNormOverrides(seq, a);
    const r = run([seq]).map((step) => step[0]!);
    part.closeSequence(seq);
    return r;
  });
  assert.notDeepEqual(alone[0]![2], alone[3]![2], 'an adapter changes the logits');
  const seqs = adapters.map((a) => {
    const seq = part.openSequence();
    if (a) part.setNormOverrides(seq, a);
    return seq;
  });
  const together = run(seqs);
  seqs.forEach((seq, i) => {
    for (let s = 0; s < together.length; s++) assert.deepEqual(together[s]![i], alone[i]![s], `sequence ${i}, step ${s}`);
    part.closeSequence(seq);
  });
  assert.deepEqual(part.openSequences, []);
});

test('a freed slot is reused, and clearing a sequence\'s overrides gives it the base gains again', () => {
  const base = part.openSequence();
  const ref = run([base]);
  part.closeSequence(base);
  const a = part.openSequence();
  part.setNormOverrides(a, gains(1));
  part.closeSequence(a);
  const b = part.openSequence();
  part.setNormOverrides(b, gains(2)); // takes the slot a left
  const c = part.openSequence();
  part.setNormOverrides(c, gains(3));
  part.setNormOverrides(c, undefined); // back to the base
  const r = run([b, c]);
  for (let s = 0; s < r.length; s++) {
    assert.deepEqual(r[s]![1], ref[s]![0], `cleared overrides give the base, step ${s}`);
    assert.notDeepEqual(r[s]![0], ref[s]![0]);
  }
  part.closeSequence(b);
  part.closeSequence(c);
});

test('with adapters, rms_norm stays the node right before its mul (fusable); both gather modes agree', () => {
  const name = [...part.norms.keys()][1]!;
  const rowsOut: Float32Array[] = [];
  let baseOut: Float32Array | undefined;
  // gatherAllBytes: everything in one get_rows (decode), or each norm its own (0: long prefills, big models)
  for (const gatherAll of [GAIN_BANK.gatherAllBytes, 0]) {
    const bank = new GainBank(part.ggml, part.norms, gatherAll);
    const caches = [0, 1, 2].map((i) => new SequenceCache(part.ggml, 100 + i, 0, 0, 1, 4));
    const ex = new Executor(part.ggml, 256);
    try {
      for (const adapted of [false, true]) {
        caches[1]!.gainSlot = adapted ? bank.set(0, gains(5)) : 0;
        caches[2]!.gainSlot = adapted ? bank.set(0, gains(6)) : 0;
        const g = new Graph(part.ggml, 256);
        try {
          const c: BuildContext = {
            g, h: part.h, w: part.weights, nTokens: 3, pos: g.input(T.I32, [3], Int32Array.of(0, 0, 0)), rope: ropeParams(part.h), ropeFreqs: null,
            masks: [], gains: bank, gainRows: new Map(),
            groups: caches.map((cache, i) => ({ cache, offset: i, n: 1, pos0: 0, logits: 'last' as const })),
          };
          const x = g.input(T.F32, [part.h.nEmbd, 3], Float32Array.from({ length: part.h.nEmbd * 3 }, (_, i) => Math.sin(i))); // (n_embd, 3)
          const rg = Int32Array.of(2, 0, 1);
          rmsNorm(c, x, [...part.norms.keys()][0]!, rg); // another norm first: shares the step's gathered gains
          const out = rmsNorm(c, x, name, rg);
          g.output(out);
          g.expand(out);
          const node = (i: number) => part.ggml.lib.ggml_graph_node(g.graph, i) as Tensor;
          assert.equal(node(g.nNodes - 1), out);
          assert.equal(node(g.nNodes - 2), adapted ? tensorSrc(out, 1) : tensorSrc(out, 0), `rms_norm right before the mul, adapted: ${adapted}`);
          ex.run(g);
          const y = readF32(part.ggml, out, part.h.nEmbd * 3);
          if (adapted) rowsOut.push(y);
          else baseOut = y;
        } finally {
          g.dispose();
        }
      }
    } finally {
      ex.dispose();
      for (const c of caches) c.dispose();
      bank.dispose();
    }
  }
  assert.deepEqual(rowsOut[0], rowsOut[1], 'one gather for all norms = one per norm');
  // row 1 is group 0's (the base gains): as without adapters; rows 0 and 2 (adapted) differ from it
  const e = part.h.nEmbd;
  assert.deepEqual(rowsOut[0]!.subarray(e, 2 * e), baseOut!.subarray(e, 2 * e));
  assert.notDeepEqual(rowsOut[0]!.subarray(0, e), baseOut!.subarray(0, e));
  assert.notDeepEqual(rowsOut[0]!.subarray(2 * e), baseOut!.subarray(2 * e));
});

test('a released slot holds the base gains again (an adapter\'s values do not outlive its sequence)', () => {
  const bank = new GainBank(part.ggml, part.norms);
  try {
    const name = [...part.norms.keys()][2]!;
    const { off, len } = bank.slice(name)!;
    const a = gains(4);
    const s = bank.set(0, a);
    const row = () => readF32(part.ggml, bank.tensor()!, len, s * bank.slotFloats + off);
    assert.deepEqual(row(), a.get(name));
    bank.release(s);
    assert.deepEqual(row(), part.norms.get(name));
    assert.equal(bank.set(0, gains(7)), s, 'the freed slot is taken first');
  } finally {
    bank.dispose();
  }
});
