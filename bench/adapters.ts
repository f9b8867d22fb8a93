// Per-user norm adapters served batched: aggregate decode throughput of 8 concurrent sequences, each with
// its own norm adapter (its own gains in the same batched steps), against 8 sequences on the base, in the
// same run, arms interleaved (base, adapters, adapters, base, ...). Target ratio >= 0.95. Every step holds
// all sequences of an arm, adapted or not (one graph; blocks.ts picks each row's gains with one get_rows
// from the part's GainBank, where each sequence's gains were uploaded once when it opened).
import { localForward } from '../src/model/batcher.ts';
import { loadModelPart } from '../src/model/load.ts';
import { Tokenizer } from '../src/model/tokenizer.ts';
import { mulberry32 } from '../src/util/random.ts';
import { fmt, log, median, table } from './stats.ts';

export interface AdaptersBenchOptions {
  threads: number;
  runs: number;
  /** Concurrent sequences per arm. */
  sequences?: number;
  /** Tokens each sequence decodes. */
  decodeTokens?: number;
  model?: string;
}

export interface AdaptersBenchResult {
  baseTokensPerSecond: number;
  adapterTokensPerSecond: number;
  ratio: number;
}

const PROMPTS = ['It is a truth universally acknowledged', 'Call me Ishmael.', 'The committee met on Tuesday', 'She walked into the room', 'In the beginning', 'The price of wheat', 'My dear sister,', 'The ship was'];

export async function benchAdapters(o: AdaptersBenchOptions): Promise<AdaptersBenchResult> {
  const n = o.sequences ?? 8;
  const decode = o.decodeTokens ?? 64;
  const path = o.model ?? 'models/sharedllm-tiny.gguf';
  const { part } = await loadModelPart(path, { gpu: 'off', threads: o.threads, nCtx: 256, nSeqMax: n });
  const tokenizer = await Tokenizer.load(path);
  try {
    // One adapter per sequence: the base gains times a seeded factor in [0.8, 1.2] per element.
    const adapters = Array.from({ length: n }, (_, s) => {
      const rng = mulberry32(1000 + s);
      return new Map([...part.norms].map(([name, g]) => [name, g.map((v) => v * (0.8 + 0.4 * rng()))]));
    });
    const prompts = Array.from({ length: n }, (_, i) => Int32Array.from(tokenizer.encode(PROMPTS[i % PROMPTS.length]!)));
    const fwd = localForward(part);
    // Every step holds all n sequences (as the Batcher merges them): a prefill, then `decode` greedy steps;
    // no early stop, so both arms do exactly the same work.
    const arm = async (which: 'base' | 'adapters'): Promise<number> => {
      const seqs: number[] = [];
      for (let i = 0; i < n; i++) seqs.push(await fwd.openSequence(which === 'adapters' ? { normOverrides: adapters[i]! } : undefined));
      try {
        const t0 = performance.now();
        let out = await fwd.step(seqs.map((seq, i) => ({ seq, tokens: prompts[i]! })));
        for (let t = 0; t < decode; t++) {
          out = await fwd.step(seqs.map((seq, i) => ({ seq, tokens: Int32Array.of(argmax(out.logits[i]![0]!)) })));
        }
        return (n * decode) / ((performance.now() - t0) / 1000);
      } finally {
        for (const seq of seqs) await fwd.closeSequence(seq);
      }
    };
    await arm('base'); // warm-up
    const rates: Record<'base' | 'adapters', number[]> = { base: [], adapters: [] };
    // Each run is a pair, back to back: the ratio is the median of the pairs' ratios, so that load from other
    // processes drifting between runs (a shared machine) weighs less than in a ratio of two medians.
    const pairRatios: number[] = [];
    for (let r = 0; r < o.runs; r++) {
      const order: ('base' | 'adapters')[] = r % 2 === 0 ? ['base', 'adapters'] : ['adapters', 'base'];
      for (const which of order) rates[which].push(await arm(which));
      pairRatios.push(rates.adapters[r]! / rates.base[r]!);
    }
    const base = median(rates.base);
    const withAdapters = median(rates.adapters);
    log(`\n## adapters: ${n} concurrent sequences, ${decode} tokens each, ${path.split('/').pop()}, ${o.threads} threads, ${o.runs} runs (medians)`);
    log(table([
      ['arm', 'decode tokens/s (all sequences)'],
      ['base (no adapter)', fmt(base, 1)],
      [`${n} users, own norm adapter each`, fmt(withAdapters, 1)],
    ]));
    const ratio = median(pairRatios);
    log(`ratio adapters / base: ${fmt(ratio, 3)} (median of ${o.runs} back-to-back pairs; ratio of the medians ${fmt(withAdapters / base, 3)}; target >= 0.95)`);
    return { baseTokensPerSecond: base, adapterTokensPerSecond: withAdapters, ratio };
  } finally {
    await tokenizer.dispose();
    part.dispose();
  }
}

function argmax(v: Float32Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i]! > v[best]!) best = i;
  return best;
}
