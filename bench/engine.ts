// Engine benchmark: decode tokens/s (128 tokens) and prefill tokens/s (512-token prompt) of our engine and of
// llama.cpp (node-llama-cpp) on the same full-size TinyLlama-shape file, same threads, runs alternated,
// medians and ratios. Targets: decode >= 0.95x, prefill >= 0.9x.
import { type Llama, type LlamaModel, LlamaLogLevel } from 'node-llama-cpp';
import { loadModelPart } from '../src/model/load.ts';
import type { ModelPart } from '../src/model/model-part.ts';
import { cachedModel } from '../src/model/testing/cached-model.ts';
import { argmax } from '../src/model/testing/compare.ts';
import { referenceLlama } from '../src/model/testing/reference.ts';
import { fmt, log, median, table } from './stats.ts';

export interface EngineBenchOptions {
  types: readonly ('Q8_0' | 'Q4_0')[];
  runs: number;
  threads: number;
  decodeTokens: number;
  promptTokens: number;
}

function promptIds(n: number): number[] {
  return Array.from({ length: n }, (_, i) => 100 + ((i * 7919) % 30000));
}

function ours(part: ModelPart, prompt: number[], nDecode: number): { prefill: number; decode: number } {
  const seq = part.openSequence();
  let t0 = performance.now();
  let logits = part.step([{ seq, tokens: Int32Array.from(prompt) }]).logits[0]![0]!;
  const prefill = prompt.length / ((performance.now() - t0) / 1000);
  t0 = performance.now();
  for (let i = 0; i < nDecode; i++) logits = part.step([{ seq, tokens: Int32Array.of(argmax(logits)) }]).logits[0]![0]!;
  const decode = nDecode / ((performance.now() - t0) / 1000);
  part.closeSequence(seq);
  return { prefill, decode };
}

/** llama.cpp's log lines reach node-llama-cpp's logger through the event loop, some after loadModel resolves. */
const LOG_SETTLE_MS = 250;

/** Our weights per buffer type (CPU, CPU_REPACK, AMX...), MiB. */
function ourPlacement(part: ModelPart): string {
  const bytes = new Map<string, number>();
  for (const [name, buft] of part.weights.placement) bytes.set(buft, (bytes.get(buft) ?? 0) + Number(part.ggml.lib.ggml_nbytes(part.weights.get(name))));
  return [...bytes].map(([k, v]) => `${k} ${(v / 2 ** 20).toFixed(1)} MiB`).join(', ');
}

/**
 * Load the reference model while listening to llama.cpp's own load log, for where its weights went: its
 * "<buffer type> model buffer size" lines (ggml's own debug lines, e.g. "amx repack tensor", do not reach this
 * logger once our runtime has installed its ggml log callback: both engines share one libggml).
 * (On an AMX Xeon, prefill was 0.61-0.67x of llama.cpp's: docs/notes/prefill-amx.md. These lines say whether
 * both engines put the same weights in the same layouts.)
 */
async function loadReferenceLogged(llama: Llama, path: string): Promise<{ model: LlamaModel; placement: string }> {
  const [level, logger] = [llama.logLevel, llama.logger];
  const lines: string[] = [];
  llama.logLevel = LlamaLogLevel.debug;
  llama.logger = (_l, m) => lines.push(m);
  try {
    const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
    await new Promise((r) => setTimeout(r, LOG_SETTLE_MS));
    const sizes = lines.filter((l) => /model buffer size/.test(l)).map((l) => l.replace(/^.*?:\s*/, '').replace(/\s+/g, ' ').trim());
    return { model, placement: sizes.join('; ') };
  } finally {
    llama.logLevel = level;
    llama.logger = logger;
  }
}

export async function benchEngine(o: EngineBenchOptions): Promise<Record<string, number>> {
  const results: Record<string, number> = {};
  const llama = await referenceLlama();
  for (const type of o.types) {
    log(`\n## engine: TinyLlama-1.1B shape (22 layers), ${type}, ${o.threads} threads`);
    const path = cachedModel({ shape: 'tinyllama', nLayer: 22, type, seed: 1 });
    const { part } = await loadModelPart(path, { gpu: 'off', threads: o.threads, nCtx: o.promptTokens + o.decodeTokens + 8 });
    const { model: ref, placement } = await loadReferenceLogged(llama, path);
    log(`ggml CPU backend: ${part.ggml.cpu.description}; llama.cpp ${llama.buildType} ${llama.llamaCppRelease.release}: ${llama.systemInfo.trim()}`);
    log(`weights, ours: ${ourPlacement(part)}`);
    log(`weights, llama.cpp: ${placement}`);
    const prompt = promptIds(o.promptTokens);
    const decodePrompt = prompt.slice(0, 8);
    const m = { oursPre: [] as number[], oursDec: [] as number[], refPre: [] as number[], refDec: [] as number[] };
    for (let r = 0; r < o.runs; r++) {
      // alternate who goes first so warm-up and thermal effects fall on both
      const order = r % 2 === 0 ? ['ours', 'ref'] : ['ref', 'ours'];
      for (const who of order) {
        if (who === 'ours') {
          m.oursPre.push(ours(part, prompt, 0).prefill);
          m.oursDec.push(ours(part, decodePrompt, o.decodeTokens).decode);
        } else {
          const ctxSize = o.promptTokens + o.decodeTokens + 8;
          let ctx = await ref.createContext({ contextSize: ctxSize, flashAttention: true, threads: o.threads, batchSize: o.promptTokens });
          let t0 = performance.now();
          await ctx.getSequence().evaluateWithoutGeneratingNewTokens(prompt as never);
          m.refPre.push(o.promptTokens / ((performance.now() - t0) / 1000));
          await ctx.dispose();
          ctx = await ref.createContext({ contextSize: ctxSize, flashAttention: true, threads: o.threads, batchSize: o.promptTokens });
          const seq = ctx.getSequence();
          await seq.evaluateWithoutGeneratingNewTokens(decodePrompt.slice(0, -1) as never);
          t0 = performance.now();
          let n = 0;
          for await (const _ of seq.evaluate([decodePrompt.at(-1)!] as never, { temperature: 0 })) if (++n >= o.decodeTokens) break;
          m.refDec.push(o.decodeTokens / ((performance.now() - t0) / 1000));
          await ctx.dispose();
        }
      }
      log(`run ${r + 1}/${o.runs}: ours prefill ${fmt(m.oursPre.at(-1)!)} decode ${fmt(m.oursDec.at(-1)!)} | llama.cpp prefill ${fmt(m.refPre.at(-1)!)} decode ${fmt(m.refDec.at(-1)!)} tok/s`);
    }
    const [op, od, rp, rd] = [median(m.oursPre), median(m.oursDec), median(m.refPre), median(m.refDec)];
    log(table([
      ['median tok/s', 'ours', 'llama.cpp', 'ratio', 'target'],
      [`prefill (${o.promptTokens} tokens)`, fmt(op), fmt(rp), fmt(op / rp, 3), '>= 0.90'],
      [`decode (${o.decodeTokens} tokens)`, fmt(od), fmt(rd), fmt(od / rd, 3), '>= 0.95'],
    ]));
    results[`${type}.prefill.ratio`] = op / rp;
    results[`${type}.decode.ratio`] = od / rd;
    part.dispose();
    await ref.dispose();
  }
  return results;
}
