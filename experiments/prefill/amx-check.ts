// Prefill on AMX and other CPUs (issue 9, docs/notes/prefill-amx.md): what runs in our prefill graph.
//
//   npx tsx experiments/prefill/amx-check.ts [--model F.gguf] [--tokens 128] [--threads 2] [--runs 5]
//
// 1. Audit: every MUL_MAT of one prefill step, with the buffer type of its weight and whether it meets the
//    conditions of ggml's AMX supports_op (ggml/src/ggml-cpu/amx/amx.cpp, extra_buffer_type::supports_op),
//    and how many rows go through the output matrix (1 when only the last token's logits are computed).
// 2. Op profile: the same step computed one node at a time (1 thread, ggml's eval callback), time per op.
// 3. Single-matmul graphs of the model's shapes, weight in each buffer type this CPU offers (CPU, CPU_REPACK,
//    AMX where present), median ms of several runs, interleaved, so the ratios are within one run.
// 0. (--llama) llama.cpp through node-llama-cpp on the same file in the same process: which buffer types its
//    weights went to (its own load log: "<buft> model buffer size", "amx repack tensor", "repack tensor") next
//    to ours, and prefill tok/s of both, alternated, medians.
// Timings on a shared machine are noisy: read ratios within one run, not absolute figures.
import { Executor } from '../../src/ggml/executor.ts';
import { Graph, T } from '../../src/ggml/graph.ts';
import type { Ptr } from '../../src/ggml/lib.ts';
import { type Ggml, getGgml } from '../../src/ggml/runtime.ts';
import { type Tensor, setTensorBuffer, tensorBuffer, tensorName, tensorShape, tensorSrc, tensorType } from '../../src/ggml/tensor.ts';
import { loadModelPart } from '../../src/model/load.ts';
import { cachedModel } from '../../src/model/testing/cached-model.ts';

const GGML_TYPE = { F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q8_0: 8, Q4_K: 12, Q5_K: 13, Q6_K: 14, IQ4_XS: 23 } as const;
const TYPE_NAME = new Map<number, string>(Object.entries(GGML_TYPE).map(([k, v]) => [v, k]));

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : def;
}

/** ggml amx.cpp supports_op, in JS (the weight's buffer is checked separately). */
function amxWouldTake(L: Ggml['lib'], op: Tensor): string | undefined {
  const w = tensorSrc(op, 0)!;
  const x = tensorSrc(op, 1)!;
  if (!L.ggml_is_contiguous(w) || !L.ggml_is_contiguous(x)) return 'src0 or src1 not contiguous';
  if (tensorShape(op)[0] % 32) return `ne0 ${tensorShape(op)[0]} not a multiple of 32`;
  const t = tensorType(w);
  const align = [GGML_TYPE.Q4_0, GGML_TYPE.Q4_1, GGML_TYPE.Q8_0].includes(t as 2) ? 32 : [GGML_TYPE.Q4_K, GGML_TYPE.Q5_K, GGML_TYPE.Q6_K, GGML_TYPE.IQ4_XS].includes(t as 12) ? 256 : t === GGML_TYPE.F16 ? 16 : 0;
  if (!align) return `weight type ${t} has no AMX kernel`;
  if (tensorShape(w)[0] % align) return `K ${tensorShape(w)[0]} not a multiple of ${align}`;
  if (tensorType(x) !== GGML_TYPE.F32) return `src1 type ${tensorType(x)} is not F32`;
  return undefined;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function auditAndProfile(path: string, nTokens: number, threads: number): Promise<void> {
  const { part, h } = await loadModelPart(path, { gpu: 'off', threads, nCtx: nTokens + 8 });
  const ggml = part.ggml;
  const L = ggml.lib;
  console.log(`CPU backend: ${ggml.cpu.description}; extra buffer types: ${ggml.cpuExtraBufts.map((b) => L.ggml_backend_buft_name(b)).join(', ') || 'none'}`);
  const placement = new Map<string, number>();
  for (const [name, buft] of part.weights.placement) placement.set(`${buft}`, (placement.get(`${buft}`) ?? 0) + (name ? 1 : 0));
  console.log(`weights per buffer type: ${[...placement].map(([k, v]) => `${k} ${v}`).join(', ')}`);
  const prompt = Int32Array.from({ length: nTokens }, (_, i) => 100 + ((i * 7919) % 30000));

  // whole-graph time first (no callback), then the per-node pass
  const origRun = Executor.prototype.run;
  let mode: 'plain' | 'profile' = 'plain';
  const perOp = new Map<string, { n: number; ms: number }>();
  const issues: string[] = [];
  let mulMats = 0;
  let headRows = -1;
  let nodes = 0;
  Executor.prototype.run = function (this: Executor, g: Graph) {
    nodes = g.nNodes;
    if (mode === 'profile') {
      let t0 = 0;
      this.setEvalCallback((node, ask) => {
        if (ask) {
          const desc = L.ggml_op_desc(node) as string;
          if (desc === 'MUL_MAT') {
            mulMats++;
            const w = tensorSrc(node, 0)!;
            const wName = tensorName(w);
            const buf = tensorBuffer(w) ? (L.ggml_backend_buffer_name(tensorBuffer(w)) as string) : 'unallocated';
            const why = amxWouldTake(L, node);
            if (why) issues.push(`${wName} (${buf}): ${why}`);
            if (wName === 'output.weight') headRows = tensorShape(node)[1];
          }
          t0 = performance.now();
          return true;
        }
        const dt = performance.now() - t0;
        const desc = L.ggml_op_desc(node) as string;
        const key = desc === 'MUL_MAT' ? `MUL_MAT ${tensorName(tensorSrc(node, 0)!).replace(/^blk\.\d+\./, '')}` : desc;
        const e = perOp.get(key) ?? { n: 0, ms: 0 };
        e.n++;
        e.ms += dt;
        perOp.set(key, e);
        return true;
      });
    }
    try {
      origRun.call(this, g);
    } finally {
      if (mode === 'profile') this.setEvalCallback(undefined);
    }
  };
  const whole: number[] = [];
  for (let r = 0; r < 3; r++) {
    const seq = part.openSequence();
    const t0 = performance.now();
    part.step([{ seq, tokens: prompt }]);
    whole.push(performance.now() - t0);
    part.closeSequence(seq);
  }
  mode = 'profile';
  const seq = part.openSequence();
  const t0 = performance.now();
  part.step([{ seq, tokens: prompt }]);
  const profiled = performance.now() - t0;
  part.closeSequence(seq);
  Executor.prototype.run = origRun;

  console.log(`\n## audit: ${path.split('/').pop()}, ${h.nLayer} layers, ${nTokens} prompt tokens`);
  console.log(`graph nodes: ${nodes}; MUL_MAT nodes: ${mulMats}; rows through output.weight: ${headRows} (1 = only the last token's logits)`);
  console.log(issues.length ? `would NOT meet AMX supports_op:\n  ${issues.join('\n  ')}` : 'every MUL_MAT meets the conditions of AMX supports_op (contiguous F32 src1, ne0 % 32, K % block)');
  const total = [...perOp.values()].reduce((s, e) => s + e.ms, 0);
  console.log(`\n## op profile (${threads} thread(s), node by node): step ${profiled.toFixed(0)} ms; sum of nodes ${total.toFixed(0)} ms; whole graph without callback, median of 3: ${median(whole).toFixed(0)} ms`);
  const rows = [...perOp].sort((a, b) => b[1].ms - a[1].ms);
  for (const [k, e] of rows) if (e.ms / total > 0.002) console.log(`${k.padEnd(32)} ${String(e.n).padStart(5)}  ${e.ms.toFixed(1).padStart(9)} ms  ${((100 * e.ms) / total).toFixed(1).padStart(5)}%`);
  const mm = rows.filter(([k]) => k.startsWith('MUL_MAT')).reduce((s, [, e]) => s + e.ms, 0);
  console.log(`MUL_MAT share: ${((100 * mm) / total).toFixed(1)}%; everything else: ${((100 * (total - mm)) / total).toFixed(1)}%`);
  part.dispose();
}

async function compareWithLlamaCpp(path: string, nTokens: number, threads: number, runs: number): Promise<void> {
  const { getLlama } = await import('node-llama-cpp');
  const lines: string[] = [];
  const llama = await getLlama({ gpu: false, build: 'never', progressLogs: false, logLevel: 'debug' as never, logger: (_l, m) => lines.push(m) });
  const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
  await new Promise((r) => setTimeout(r, 250)); // its log lines arrive through the event loop, some after loadModel resolves
  console.log(`\n## llama.cpp (node-llama-cpp) weight placement, from its load log`);
  for (const l of lines) if (/model buffer size/.test(l)) console.log(`  ${l.trim()}`);
  const amx = lines.filter((l) => /amx repack tensor/.test(l)).length;
  const rep = lines.filter((l) => /repack tensor .* with/.test(l)).length;
  console.log(`  tensors repacked by the AMX buffer: ${amx}; by CPU_REPACK: ${rep}`);
  const { part } = await loadModelPart(path, { gpu: 'off', threads, nCtx: nTokens + 8 });
  const bytes = new Map<string, number>();
  for (const [name, buft] of part.weights.placement) bytes.set(buft, (bytes.get(buft) ?? 0) + Number(part.ggml.lib.ggml_nbytes(part.weights.get(name))));
  console.log(`ours: ${[...bytes].map(([k, v]) => `${k} ${(v / 2 ** 20).toFixed(2)} MiB`).join(', ')}`);
  const prompt = Array.from({ length: nTokens }, (_, i) => 100 + ((i * 7919) % 30000));
  const ours: number[] = [];
  const ref: number[] = [];
  for (let r = 0; r < runs; r++) {
    for (const who of r % 2 ? ['ref', 'ours'] : ['ours', 'ref']) {
      if (who === 'ours') {
        const seq = part.openSequence();
        const t0 = performance.now();
        part.step([{ seq, tokens: Int32Array.from(prompt) }]);
        ours.push(nTokens / ((performance.now() - t0) / 1000));
        part.closeSequence(seq);
      } else {
        const ctx = await model.createContext({ contextSize: nTokens + 8, flashAttention: true, threads, batchSize: nTokens });
        const t0 = performance.now();
        await ctx.getSequence().evaluateWithoutGeneratingNewTokens(prompt as never);
        ref.push(nTokens / ((performance.now() - t0) / 1000));
        await ctx.dispose();
      }
    }
  }
  for (const l of lines) if (/graph.*nodes =/.test(l)) console.log(`llama.cpp ${l.trim()}`);
  console.log(`prefill ${nTokens} tokens, ${threads} thread(s), median of ${runs}: ours ${median(ours).toFixed(1)} tok/s, llama.cpp ${median(ref).toFixed(1)} tok/s, ratio ${(median(ours) / median(ref)).toFixed(3)}`);
  part.dispose();
  await model.dispose();
}

function weightIn(ggml: Ggml, buft: Ptr, type: number, K: number, N: number): { t: Tensor; free: () => void } {
  const L = ggml.lib;
  const ctx = L.ggml_init({ mem_size: L.ggml_tensor_overhead() * 2, mem_buffer: null, no_alloc: true }) as Ptr;
  const t = L.ggml_new_tensor_2d(ctx, type, K, N) as Tensor;
  L.ggml_set_name(t, 'w');
  const buf = L.ggml_backend_alloc_ctx_tensors_from_buft(ctx, buft) as Ptr;
  L.ggml_backend_buffer_set_usage(buf, 1);
  const f = new Float32Array(K * N);
  let s = 12345;
  for (let i = 0; i < f.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    f[i] = (s / 2 ** 32 - 0.5) * 0.1;
  }
  const bytes = new Uint8Array(Number(L.ggml_row_size(type, K)) * N);
  L.ggml_quantize_chunk(type, f, bytes, 0, N, K, null);
  L.ggml_backend_tensor_set(t, bytes, 0, bytes.byteLength);
  return { t, free: () => { L.ggml_backend_buffer_free(buf); L.ggml_free(ctx); } };
}

function supports(ggml: Ggml, buft: Ptr, type: number, K: number, N: number, M: number): boolean {
  const L = ggml.lib;
  const ctx = L.ggml_init({ mem_size: L.ggml_tensor_overhead() * 4, mem_buffer: null, no_alloc: true }) as Ptr;
  const dummy = L.ggml_backend_buft_alloc_buffer(buft, 0) as Ptr;
  try {
    const w = L.ggml_new_tensor_2d(ctx, type, K, N) as Tensor;
    const x = L.ggml_new_tensor_2d(ctx, T.F32, K, M) as Tensor;
    const op = L.ggml_mul_mat(ctx, w, x) as Tensor;
    // same trick as weights.ts extraSupports: point the weight at a dummy buffer of that type
    setTensorBuffer(w, dummy);
    const ok = Boolean(L.ggml_backend_dev_supports_op(ggml.cpu.dev, op));
    setTensorBuffer(w, null);
    return ok;
  } finally {
    L.ggml_backend_buffer_free(dummy);
    L.ggml_free(ctx);
  }
}

function microbench(threads: number, M: number, runs: number): void {
  const ggml = getGgml({ gpu: 'off', threads });
  const L = ggml.lib;
  const bufts = [ggml.cpuBuft, ...ggml.cpuExtraBufts];
  const shapes: [string, number, number][] = [['attn_q/o', 2048, 2048], ['attn_k/v', 2048, 256], ['ffn_gate/up', 2048, 5632], ['ffn_down', 5632, 2048]];
  console.log(`\n## single MUL_MAT graphs, M = ${M} tokens, ${threads} thread(s), median of ${runs} (interleaved) — ms and GFLOP/s`);
  for (const type of [GGML_TYPE.Q8_0, GGML_TYPE.Q4_0]) {
    for (const [label, K, N] of shapes) {
      const usable = bufts.filter((b) => b === ggml.cpuBuft || supports(ggml, b, type, K, N, M));
      const ws = usable.map((b) => ({ name: L.ggml_backend_buft_name(b) as string, ...weightIn(ggml, b, type, K, N) }));
      const ex = new Executor(ggml, 64);
      const x = new Float32Array(K * M).map((_, i) => Math.sin(i) * 0.5);
      const times = ws.map(() => [] as number[]);
      for (let r = 0; r < runs + 1; r++) {
        ws.forEach((w, i) => {
          const g = new Graph(ggml, 64);
          const out = g.mulMat(w.t, g.input(T.F32, [K, M], x));
          g.output(out);
          g.expand(out);
          const t0 = performance.now();
          ex.run(g);
          if (r > 0) times[i]!.push(performance.now() - t0); // first run warms up
          g.dispose();
        });
      }
      const base = median(times[0]!);
      const cells = ws.map((w, i) => {
        const ms = median(times[i]!);
        return `${w.name} ${ms.toFixed(1)} ms ${((2 * M * N * K) / ms / 1e6).toFixed(0)} GF/s (${(base / ms).toFixed(2)}x)`;
      });
      console.log(`${TYPE_NAME.get(type)} ${label.padEnd(12)} K=${K} N=${N}: ${cells.join(' | ')}`);
      ex.dispose();
      ws.forEach((w) => w.free());
    }
  }
}

const nTokens = Number(arg('tokens', '128'));
const threads = Number(arg('threads', '2'));
const runs = Number(arg('runs', '5'));
const model = arg('model', '') || cachedModel({ shape: 'tinyllama', nLayer: 2, type: 'Q8_0', seed: 3 });
if (process.argv.includes('--llama')) await compareWithLlamaCpp(model, nTokens, threads, runs);
if (!process.argv.includes('--no-profile')) await auditAndProfile(model, nTokens, Number(arg('profile-threads', '1')));
if (!process.argv.includes('--no-matmul')) microbench(threads, nTokens, runs);
