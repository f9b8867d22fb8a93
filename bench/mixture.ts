// Mixture benchmark (issue 13): decode time per token of a mixture of 3 local specialists against one model of
// the same size, same threads, runs alternated, medians and the ratio (target <= 1.3x). Also the combiner's own
// cost per token (one ggml graph: softmax, weighted sum, log) against the same mix as a plain JS loop over the
// vocabulary, and against a model step: what the combiner adds to a token. And the remote path: the same 3
// specialists lent by a MixtureService over loopback TCP (one round trip per step, overlapped across them).
import { getGgml } from '../src/ggml/runtime.ts';
import { Batcher, localForward } from '../src/model/batcher.ts';
import { Generator, type TextGenerator } from '../src/model/generator.ts';
import { loadModelPart } from '../src/model/load.ts';
import { Combiner } from '../src/model/mixture/combine.ts';
import { MixtureGenerator } from '../src/model/mixture/generator.ts';
import { LocalSpecialist } from '../src/model/mixture/specialist.ts';
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
  /** The specialists' file (loaded 3 times: 3 models of the same size). Default models/sharedllm-tiny.gguf. */
  model?: string;
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
  const path = o.model ?? 'models/sharedllm-tiny.gguf';
  const n = o.decodeTokens ?? 64;
  const ggml = getGgml({ gpu: 'off', threads: o.threads });
  log(`\n## mixture: 3 local specialists (${path} x3) vs one, ${n} tokens, ${o.threads} threads`);
  const parts = await Promise.all([0, 1, 2].map(async () => (await loadModelPart(path, { gpu: 'off', threads: o.threads, nCtx: 512 })).part));
  const tokenizer = await Tokenizer.load(path);
  try {
    const batchers = parts.map((p) => new Batcher(localForward(p)));
    const one = new Generator(batchers[0]!, tokenizer);
    const mixture = new MixtureGenerator(batchers.map((b, i) => new LocalSpecialist(`s${i}`, b, ggml, 'same')), tokenizer, ggml, { k: 3, minWeight: 0 });
    const prompt = tokenizer.encode('Once upon a time, in a small town by the sea,', { addBos: tokenizer.addBosDefault });
    // The same specialists lent over loopback TCP (no auth: a benchmark, not a federation).
    const locals = batchers.map((b, i) => new LocalSpecialist(`s${i}`, b, ggml, 'same'));
    const service = new MixtureService({ specialists: () => locals, logger: silentLogger });
    const server = await listen({ host: '127.0.0.1', port: 0, session: 'lender', methods: defineMethods(service.methods()) });
    const peer = await connect(`127.0.0.1:${server.port}`, { session: 'mixer' });
    const remotePeer = new RemoteMixturePeer(peer, 'lender', new Bans(localTestDataPlane(), silentLogger), silentLogger);
    const remote = new MixtureGenerator(await remotePeer.specialists(), tokenizer, ggml, { k: 3, minWeight: 0 });
    const m = { one: [] as number[], mix: [] as number[], remote: [] as number[] };
    for (let r = 0; r < o.runs; r++) {
      const order = ['one', 'mix', 'remote'];
      for (const who of r % 2 === 0 ? order : order.reverse()) {
        if (who === 'one') m.one.push(await msPerToken(one, prompt, n));
        else if (who === 'mix') m.mix.push(await msPerToken(mixture, prompt, n));
        else m.remote.push(await msPerToken(remote, prompt, n));
      }
      log(`run ${r + 1}/${o.runs}: one model ${fmt(m.one.at(-1)!)} | mixture of 3 local ${fmt(m.mix.at(-1)!)} | of 3 remote ${fmt(m.remote.at(-1)!)} ms/token`);
    }
    peer.close();
    await service.close();
    await server.close();
    // The combiner alone, on this vocabulary: ggml graph vs the JS loop.
    const V = parts[0]!.h.nVocab;
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
    const [one1, mix3, remote3] = [median(m.one), median(m.mix), median(m.remote)];
    log(table([
      ['median ms/token', 'value', 'ratio to one model', 'target'],
      ['one model', fmt(one1, 3), '1.000', ''],
      ['mixture of 3 local', fmt(mix3, 3), fmt(mix3 / one1, 3), '<= 1.30'],
      ['mixture of 3 remote (loopback)', fmt(remote3, 3), fmt(remote3 / one1, 3), ''],
      [`combiner, ggml (V=${V}, K=3)`, fmt(ggmlMs, 4), fmt(ggmlMs / one1, 4), ''],
      [`same mix, JS loop (V=${V}, K=3)`, fmt(jsMs, 4), fmt(jsMs / one1, 4), ''],
    ]));
    return { 'mixture3.ratio': mix3 / one1, 'mixture3.remote.ratio': remote3 / one1, 'combiner.ggml.ms': ggmlMs, 'combiner.js.ms': jsMs };
  } finally {
    await tokenizer.dispose();
    for (const p of parts) p.dispose();
  }
}
