// Mixture benchmark (issue 13): decode time per token of a mixture of 3 local specialists against one model of
// the same size (the bundled base and its three specialists, fully fine-tuned: every weight differs), same
// threads, runs alternated, medians and the ratio (target <= 1.3x): the specialists loaded apart (a graph each
// and a combiner graph a token), stacked (one graph a token steps and mixes all three), and stacked specialists
// that share the base's trunk (grafted files: the base's embeddings and layers, each specialist's own last
// layer and head: the shape of specialists fine-tuned on their top layer; and with only that layer their own,
// the head the base's; their timing, not their text, is the point: decode reads every weight once a token, so
// what a mixture costs follows the bytes its specialists do not share). Then the throughput of 8 streams at
// once (one model, the specialists apart, stacked). Also the combiner's own cost per token (one ggml graph)
// against the same mix as a JS loop, and the remote path: the 3 specialists lent by a MixtureService over
// loopback TCP (one round trip per step, overlapped across them).
import { getGgml } from '../src/ggml/runtime.ts';
import { Batcher, localForward } from '../src/model/batcher.ts';
import { Generator, type TextGenerator } from '../src/model/generator.ts';
import { loadModelPart } from '../src/model/load.ts';
import { Combiner } from '../src/model/mixture/combine.ts';
import { MixtureGenerator } from '../src/model/mixture/generator.ts';
import { LocalSpecialist } from '../src/model/mixture/specialist.ts';
import { StackedGroup } from '../src/model/mixture/stacked.ts';
import { StackedModel } from '../src/model/stacked-model.ts';
import { graftModel } from '../src/model/testing/graft.ts';
import { mkdirSync } from 'node:fs';
import { Tokenizer } from '../src/model/tokenizer.ts';
import { defineMethods } from '../src/federation/dataplane.ts';
import { RemoteMixturePeer } from '../src/federation/mixture/remote.ts';
import { MixtureService } from '../src/federation/mixture/serve.ts';
import { Bans } from '../src/federation/node/bans.ts';
import { localTestDataPlane } from '../src/federation/node/dataplane-config.ts';
import { connect, listen } from '../src/federation/transport/rpc.ts';
import { silentLogger } from '../src/util/log.ts';
import { fmt, log, median, table } from './stats.ts';

export interface MixtureBenchOptions {
  runs: number;
  threads: number;
  /** The base model and 3 specialists of its size. Default: the bundled ones (models/, models/specialists/). */
  base?: string;
  specialists?: readonly string[];
  decodeTokens?: number;
}

/** Milliseconds per generated token, from the first piece to the last (the prefill left out). */
async function msPerToken(gen: TextGenerator, prompt: number[], n: number): Promise<number> {
  const it = gen.stream(prompt, { maxTokens: n, temperature: 0 });
  let first = 0;
  let count = 0;
  for (;;) {
    const r = await it.next();
    if (r.done) break;
    if (count++ === 0) first = performance.now();
  }
  return count > 1 ? (performance.now() - first) / (count - 1) : Number.NaN;
}

/** Streams generating at once. */
const CONCURRENT = 8;

/** Tokens per second of `streams` generations at once (n tokens each, their own prompts). */
async function tokensPerSecond(gen: TextGenerator, tokenizer: Tokenizer, streams: number, n: number): Promise<number> {
  const t0 = performance.now();
  let count = 0;
  await Promise.all(Array.from({ length: streams }, async (_, i) => {
    const it = gen.stream(tokenizer.encode(`Story ${i + 1}: once upon a time`, { addBos: tokenizer.addBosDefault }), { maxTokens: n, temperature: 0 });
    for (let r = await it.next(); !r.done; r = await it.next()) count++;
  }));
  return count / ((performance.now() - t0) / 1000);
}

/** The same mix as the combiner, in JS: softmax of each row, weighted sum, log (for the comparison only). */
function mixInJs(rows: readonly Float32Array[], w: Float64Array): Float32Array {
  const V = rows[0]!.length;
  const out = new Float64Array(V);
  rows.forEach((row, k) => {
    let max = -Infinity;
    for (let i = 0; i < V; i++) if (row[i]! > max) max = row[i]!;
    let sum = 0;
    for (let i = 0; i < V; i++) sum += Math.exp(row[i]! - max);
    for (let i = 0; i < V; i++) out[i]! += (w[k]! * Math.exp(row[i]! - max)) / sum;
  });
  return Float32Array.from(out, Math.log);
}

export async function benchMixture(o: MixtureBenchOptions): Promise<Record<string, number>> {
  const base = o.base ?? 'models/sharedllm-tiny.gguf';
  const files = o.specialists ?? ['go', 'es', 'kernel'].map((d) => `models/specialists/sharedllm-tiny-${d}.gguf`);
  const n = o.decodeTokens ?? 64;
  const ggml = getGgml({ gpu: 'off', threads: o.threads });
  log(`\n## mixture: 3 local specialists (${files.join(', ')}) vs one model (${base}), ${n} tokens, ${o.threads} threads`);
  const load = { gpu: 'off' as const, threads: o.threads, nCtx: 512 };
  const basePart = (await loadModelPart(base, load)).part;
  const parts = await Promise.all(files.map(async (f) => (await loadModelPart(f, load)).part));
  const stack = await StackedModel.load(files, load);
  // The same specialists' top layer and head on the base's trunk (written once under .cache/bench-models).
  mkdirSync('.cache/bench-models', { recursive: true });
  const nLayer = basePart.h.nLayer;
  const grafts = files.map((f, i) => graftModel(base, f, nLayer - 1, `.cache/bench-models/graft-${i}-L${nLayer - 1}-${f.split('/').pop()}`));
  const trunkStack = await StackedModel.load(grafts, load);
  // And only the last layer their own (the head the base's, as when a fine-tune freezes it).
  const last = `blk.${nLayer - 1}.`;
  const layerOnly = files.map((f, i) => graftModel(base, f, 0, `.cache/bench-models/graft-${i}-only-L${nLayer - 1}-${f.split('/').pop()}`, (name) => name.startsWith(last)));
  const layerStack = await StackedModel.load(layerOnly, load);
  const tokenizer = await Tokenizer.load(base);
  try {
    const one = new Generator(new Batcher(localForward(basePart)), tokenizer);
    const batchers = parts.map((p) => new Batcher(localForward(p)));
    const locals = batchers.map((b, i) => new LocalSpecialist(`s${i}`, b, ggml, 'same'));
    const opts = { k: 3, minWeight: 0 };
    const apart = new MixtureGenerator(locals, tokenizer, ggml, opts);
    const group = new StackedGroup(stack, ggml, 'same');
    const stacked = new MixtureGenerator([0, 1, 2].map((i) => group.member(i, `s${i}`)), tokenizer, ggml, opts);
    const trunkGroup = new StackedGroup(trunkStack, ggml, 'same');
    const trunk = new MixtureGenerator([0, 1, 2].map((i) => trunkGroup.member(i, `s${i}`)), tokenizer, ggml, opts);
    const layerGroup = new StackedGroup(layerStack, ggml, 'same');
    const layer = new MixtureGenerator([0, 1, 2].map((i) => layerGroup.member(i, `s${i}`)), tokenizer, ggml, opts);
    const prompt = tokenizer.encode('Once upon a time, in a small town by the sea,', { addBos: tokenizer.addBosDefault });
    // The same specialists lent over loopback TCP (no auth: a benchmark, not a federation).
    const service = new MixtureService({ specialists: () => locals, logger: silentLogger });
    const server = await listen({ host: '127.0.0.1', port: 0, session: 'lender', methods: defineMethods(service.methods()) });
    const peer = await connect(`127.0.0.1:${server.port}`, { session: 'mixer' });
    const remotePeer = new RemoteMixturePeer(peer, 'lender', new Bans(localTestDataPlane(), silentLogger), silentLogger);
    const remote = new MixtureGenerator(await remotePeer.specialists(), tokenizer, ggml, opts);
    const gens = { one, apart, stacked, trunk, layer, remote } as const;
    const m: Record<keyof typeof gens, number[]> = { one: [], apart: [], stacked: [], trunk: [], layer: [], remote: [] };
    const order = Object.keys(gens) as (keyof typeof gens)[];
    for (let r = 0; r < o.runs; r++) {
      for (const who of r % 2 === 0 ? order : [...order].reverse()) m[who].push(await msPerToken(gens[who], prompt, n));
      log(`run ${r + 1}/${o.runs}: ${order.map((k) => `${k} ${fmt(m[k].at(-1)!)}`).join(' | ')} ms/token`);
    }
    // Throughput with CONCURRENT streams at once (each its own prompt): the Batchers batch the apart
    // specialists' sequences, the StackedBatcher the stack's.
    const conc = { one: [] as number[], apart: [] as number[], stacked: [] as number[] };
    for (let r = 0; r < o.runs; r++) {
      for (const who of ['one', 'apart', 'stacked'] as const) conc[who].push(await tokensPerSecond(gens[who], tokenizer, CONCURRENT, n));
    }
    peer.close();
    await service.close();
    await server.close();
    // The combiner alone, on this vocabulary: ggml graph vs the JS loop.
    const V = basePart.h.nVocab;
    const rows = [0, 1, 2].map((k) => Float32Array.from({ length: V }, (_, i) => Math.sin(i * (k + 1)) * 8));
    const w = Float64Array.of(0.5, 0.3, 0.2);
    const combiner = new Combiner(ggml, V);
    const time = (f: () => void, reps = 200) => {
      f();
      const t0 = performance.now();
      for (let i = 0; i < reps; i++) f();
      return (performance.now() - t0) / reps;
    };
    const ggmlMs = time(() => combiner.mix(rows, w).likelihoods(7));
    const jsMs = time(() => mixInJs(rows, w));
    combiner.dispose();
    const med = Object.fromEntries(order.map((k) => [k, median(m[k])])) as Record<keyof typeof gens, number>;
    const ratio = (k: keyof typeof gens) => med[k] / med.one;
    log(table([
      ['median ms/token', 'value', 'ratio to one model', 'target'],
      ['one model', fmt(med.one, 3), '1.000', ''],
      ['mixture of 3 local, apart (a graph each + combiner)', fmt(med.apart, 3), fmt(ratio('apart'), 3), ''],
      ['mixture of 3 local, stacked (one graph a token)', fmt(med.stacked, 3), fmt(ratio('stacked'), 3), '<= 1.30'],
      [`  same, trunk shared (own layer ${nLayer - 1} + head)`, fmt(med.trunk, 3), fmt(ratio('trunk'), 3), '<= 1.30'],
      [`  same, only layer ${nLayer - 1} their own`, fmt(med.layer, 3), fmt(ratio('layer'), 3), '<= 1.30'],
      ['mixture of 3 remote (loopback)', fmt(med.remote, 3), fmt(ratio('remote'), 3), ''],
      [`combiner, ggml (V=${V}, K=3)`, fmt(ggmlMs, 4), fmt(ggmlMs / med.one, 4), ''],
      [`same mix, JS loop (V=${V}, K=3)`, fmt(jsMs, 4), fmt(jsMs / med.one, 4), ''],
    ]));
    log(table([
      [`${CONCURRENT} streams at once, median tokens/s`, 'value', 'ratio to one model'],
      ...(['one', 'apart', 'stacked'] as const).map((k) => [k === 'one' ? 'one model' : `mixture of 3 local, ${k}`, fmt(median(conc[k]), 1), fmt(median(conc[k]) / median(conc.one), 3)]),
    ]));
    log(`weights read per token: one model ${mib(basePart.weights.bytes)}, stacked ${mib(stack.weightBytes)}, trunk shared ${mib(trunkStack.weightBytes)}, only layer ${nLayer - 1} own ${mib(layerStack.weightBytes)}`);
    return {
      'mixture3.apart.ratio': ratio('apart'), 'mixture3.ratio': ratio('stacked'), 'mixture3.trunk.ratio': ratio('trunk'), 'mixture3.layer.ratio': ratio('layer'), 'mixture3.remote.ratio': ratio('remote'),
      'combiner.ggml.ms': ggmlMs, 'combiner.js.ms': jsMs,
      'mixture3.concurrent.apart.tps': median(conc.apart), 'mixture3.concurrent.stacked.tps': median(conc.stacked), 'one.concurrent.tps': median(conc.one),
    };
  } finally {
    await tokenizer.dispose();
    stack.dispose();
    trunkStack.dispose();
    layerStack.dispose();
    basePart.dispose();
    for (const p of parts) p.dispose();
  }
}

const mib = (b: number) => `${(b / (1 << 20)).toFixed(1)} MiB`;
