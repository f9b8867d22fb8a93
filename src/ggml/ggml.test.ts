import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Executor } from './executor.ts';
import { Graph, T, readF32 } from './graph.ts';
import { getGgml } from './runtime.ts';
import { GGML_TENSOR_SIZE, tensorName, tensorShape, tensorSrc, tensorStrides, tensorType } from './tensor.ts';
import { WeightSet } from './weights.ts';

const ggml = getGgml({ gpu: 'off', threads: 2 });

test('the native tensor struct has the layout tensor.ts reads', () => {
  // ggml_tensor_overhead() = GGML_OBJECT_SIZE (32 on 64-bit) + GGML_TENSOR_SIZE
  assert.equal(Number(ggml.lib.ggml_tensor_overhead()) - 32, GGML_TENSOR_SIZE);
  const g = new Graph(ggml, 16);
  const t = g.newTensor(T.F16, [7, 3, 2], 'probe');
  assert.deepEqual(tensorShape(t), [7, 3, 2, 1]);
  assert.deepEqual(tensorStrides(t), [2, 14, 42, 84]);
  assert.equal(tensorType(t), T.F16);
  assert.equal(tensorName(t), 'probe');
  g.dispose();
});

test('a matmul through the scheduler gives the exact product', () => {
  // W (ne0=3, ne1=2): two rows of three; x (3, 1). y = W x, shape (2, 1).
  const w = new WeightSet(ggml, [{ name: 'w', type: T.F32, ne: [3, 2], matmul: true }]);
  w.upload('w', new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6]).buffer));
  const g = new Graph(ggml, 16);
  const x = g.input(T.F32, [3, 1], new Float32Array([1, 0, -1]));
  const y = g.mulMat(w.get('w'), x);
  g.expand(y);
  const ex = new Executor(ggml, 64);
  ex.run(g);
  assert.deepEqual(Array.from(readF32(ggml, y, 2)), [-2, -2]);
  ex.dispose();
  g.dispose();
  w.dispose();
});

// ggml's CPU backend lists its extra buffer types best first, and which ones exist depends on the variant
// loaded for this CPU: AMX (Sapphire Rapids and later: AMX-INT8 with AVX512-VNNI; it takes Q4_0 first),
// CPU_KLEIDIAI (Arm builds) and CPU_REPACK (every variant: AVX2, AVX-512, NEON interleaved blocks). So the
// test asks the loaded backend for the names instead of assuming one: a Q4_0 matrix must land in one of
// them, never in the plain CPU buffer, on every CPU the project supports.
test('Q4_0 matmul weights go to a repacked CPU layout (CPU_REPACK, or AMX where the CPU has it)', () => {
  const extras = ggml.cpuExtraBufts.map((buft) => ggml.lib.ggml_backend_buft_name(buft) as string);
  const w = new WeightSet(ggml, [
    { name: 'q', type: 2 /* Q4_0 */, ne: [256, 64], matmul: true },
    { name: 'n', type: T.F32, ne: [256], matmul: false },
  ]);
  assert.equal(w.placement.get('n'), 'CPU', 'a vector is no matmul weight: plain CPU buffer');
  if (extras.length > 0) {
    const placed = w.placement.get('q');
    assert.notEqual(placed, 'CPU', `Q4_0 stayed in the plain CPU buffer although the backend offers ${extras.join(', ')}`);
    assert.ok(placed !== undefined && extras.includes(placed), `Q4_0 went to ${placed}; the backend's extra buffer types are ${extras.join(', ')}`);
  }
  w.dispose();
});

test('the eval callback sees each node with its sources, and node-by-node compute gives the same result', () => {
  const L = ggml.lib;
  const w = new WeightSet(ggml, [{ name: 'w', type: T.F32, ne: [4, 3], matmul: true }, { name: 'gain', type: T.F32, ne: [4], matmul: false }]);
  w.upload('w', new Uint8Array(Float32Array.from({ length: 12 }, (_, i) => (i % 5) - 2).buffer));
  w.upload('gain', new Uint8Array(new Float32Array([1, 0.5, 2, -1]).buffer));
  const build = () => {
    const g = new Graph(ggml, 32);
    const x = g.input(T.F32, [4, 2], new Float32Array([1, 2, 3, 4, -1, 0, 1, 0.5]));
    const y = g.mulMat(w.get('w'), g.mul(g.rmsNorm(x, 1e-6), w.get('gain'))); // (3, 2)
    g.output(y);
    g.expand(y);
    return { g, y };
  };
  const ex = new Executor(ggml, 64);
  const a = build();
  ex.run(a.g);
  const plain = readF32(ggml, a.y, 6);
  a.g.dispose();

  const seen: string[] = [];
  let weightOfMatmul = '';
  ex.setEvalCallback((node, ask) => {
    const desc = L.ggml_op_desc(node) as string;
    if (ask) seen.push(desc);
    if (ask && desc === 'MUL_MAT') weightOfMatmul = tensorName(tensorSrc(node, 0)!);
    return true;
  });
  const b = build();
  ex.run(b.g);
  const stepped = readF32(ggml, b.y, 6);
  b.g.dispose();
  ex.setEvalCallback(undefined);
  assert.deepEqual(seen, ['RMS_NORM', 'MUL', 'MUL_MAT']);
  assert.equal(weightOfMatmul, 'w');
  plain.forEach((v, i) => assert.ok(Math.abs(v - stepped[i]!) <= 1e-5 * Math.max(1, Math.abs(v)), `row ${i}: ${v} vs ${stepped[i]}`));
  ex.dispose();
  w.dispose();
});
