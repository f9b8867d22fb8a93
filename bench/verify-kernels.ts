// Honest differences between ggml CPU kernels, for the verification tolerance (src/federation/node/verify.ts).
// A worker decodes a span token by token on its CPU; the primary re-runs the same inputs as a batched prefill
// on its own CPU. This measures both effects on the same inputs (token embeddings, exact on every CPU):
//
//   npx tsx bench/verify-kernels.ts dump /tmp/k-default      decode and prefill outputs of each model's span
//   (run the same from a copy whose node_modules offers only libggml-cpu-haswell.so: AVX2)
//   npx tsx bench/verify-kernels.ts compare /tmp/k-default /tmp/k-avx2
//
// Differences are the largest per-token |a - b| / RMS(b) over all coordinates (the verifier's full comparison
// of a chain output; a fingerprint error is at most about this).
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fingerprintError, fingerprintRows, hiddenError } from '../src/federation/node/fingerprint.ts';
import { getGgml } from '../src/ggml/runtime.ts';
import { loadModelPart } from '../src/model/load.ts';
import { cachedModel } from '../src/model/testing/cached-model.ts';
import { type MakeModelOptions, SHAPES } from '../src/model/testing/make-model.ts';
import { mulberry32 } from '../src/util/random.ts';

const MODELS: { name: string; model: MakeModelOptions | string; layers: number }[] = [
  // The one trained model (realistic activations; the others are random weights, more chaotic).
  { name: 'sharedllm-tiny-256-Q8_0', model: 'models/sharedllm-tiny.gguf', layers: 6 },
  { name: 'smollm2-960-Q8_0', model: { shape: { ...SHAPES.smollm2, tiedEmbeddings: false }, nLayer: 4, type: 'Q8_0', seed: 1 }, layers: 4 },
  { name: 'qwen2-896-Q4_0', model: { shape: 'qwen2', nLayer: 4, type: 'Q4_0', seed: 2 }, layers: 4 },
  { name: 'smollm2-960-F16', model: { shape: { ...SHAPES.smollm2, tiedEmbeddings: false }, nLayer: 3, type: 'F16', seed: 3 }, layers: 3 },
  { name: 'tinyllama-2048-Q4_0', model: { shape: 'tinyllama', nLayer: 3, type: 'Q4_0', seed: 4 }, layers: 3 },
  { name: 'tinyllama-2048-Q4_K', model: { shape: 'tinyllama', nLayer: 2, type: 'Q4_K', seed: 5 }, layers: 2 },
  { name: 'smollm2-960-F32', model: { shape: { ...SHAPES.smollm2, tiedEmbeddings: false }, nLayer: 2, type: 'F32', seed: 6 }, layers: 2 },
];
const N_TOKENS = 64;
const CHUNK = 32;

async function dump(out: string): Promise<void> {
  getGgml({ gpu: 'off', threads: 1 });
  const variant = readFileSync('/proc/self/maps', 'utf8').match(/libggml-cpu-[a-z0-9_]+\.so/)?.[0] ?? 'unknown';
  console.log(`# ${cpus()[0]?.model}, ggml CPU variant: ${variant}`);
  console.log('model | decode vs one prefill | decode vs prefill in chunks of 32 (x RMS)');
  for (const m of MODELS) {
    const path = typeof m.model === 'string' ? m.model : cachedModel(m.model);
    const load = (layout: { embeddings: boolean; first: number; last: number; head: boolean }) => loadModelPart(path, { gpu: 'off', threads: 1, nCtx: 128, nSeqMax: 3, layout }).then((x) => x.part);
    const emb = await load({ embeddings: true, first: 0, last: 0, head: false });
    const span = await load({ embeddings: false, first: 0, last: m.layers, head: false });
    const rnd = mulberry32(3);
    const tokens = Int32Array.from({ length: N_TOKENS }, () => 1 + Math.floor(rnd() * 800));
    const s0 = emb.openSequence();
    const input = emb.step([{ seq: s0, tokens }]).hidden!;
    const n = emb.h.nEmbd;
    const decode = new Float32Array(input.length);
    const d = span.openSequence();
    for (let t = 0; t < N_TOKENS; t++) decode.set(span.step([{ seq: d, hidden: input.subarray(t * n, (t + 1) * n) }]).hidden!, t * n);
    const p = span.openSequence();
    const prefill = span.step([{ seq: p, hidden: input }]).hidden!;
    const c = span.openSequence();
    const chunked = new Float32Array(input.length);
    for (let t = 0; t < N_TOKENS; t += CHUNK) chunked.set(span.step([{ seq: c, hidden: input.subarray(t * n, (t + CHUNK) * n) }]).hidden!, t * n);
    console.log(`${m.name} | ${hiddenError(decode, prefill, n).toExponential(2)} | ${hiddenError(decode, chunked, n).toExponential(2)}`);
    const all = new Float32Array(input.length * 2);
    all.set(decode);
    all.set(chunked, input.length);
    writeFileSync(`${out}.${m.name}.bin`, all);
    emb.dispose();
    span.dispose();
  }
}

function compare(a: string, b: string): void {
  console.log(`model | decode(A) vs decode(B) | decode(A) vs chunked prefill(B) | decode(B) vs chunked prefill(A) | fingerprint, decode(A) vs prefill(B) (x RMS)`);
  for (const m of MODELS) {
    const shape = typeof m.model === 'string' ? undefined : m.model.shape;
    const n = shape === undefined ? 256 : shape === 'tinyllama' ? SHAPES.tinyllama.nEmbd : shape === 'qwen2' ? SHAPES.qwen2.nEmbd : SHAPES.smollm2.nEmbd;
    const read = (f: string) => {
      const buf = readFileSync(`${f}.${m.name}.bin`);
      const all = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
      return { decode: all.subarray(0, all.length / 2), prefill: all.subarray(all.length / 2) };
    };
    const A = read(a);
    const B = read(b);
    const groups = [N_TOKENS];
    const fp = fingerprintError(fingerprintRows(A.decode, n, groups, 42, 1), fingerprintRows(B.prefill, n, groups, 42, 1), n);
    console.log(`${m.name} | ${hiddenError(A.decode, B.decode, n).toExponential(2)} | ${hiddenError(A.decode, B.prefill, n).toExponential(2)} | ${hiddenError(B.decode, A.prefill, n).toExponential(2)} | ${fp.toExponential(2)}`);
  }
}

const [mode, x, y] = process.argv.slice(2);
if (mode === 'dump' && x) await dump(x);
else if (mode === 'compare' && x && y) compare(x, y);
else console.error('usage: verify-kernels.ts dump OUT | compare A B');
