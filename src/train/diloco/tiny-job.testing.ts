// A tiny DiLoCo job on disk for tests, the bench and Bet 66's smoke mode: a llama GGUF of random weights
// (32 wide, 1 layer, a 320-token BPE tokenizer trained on the prose fixture), the fixture's documents dealt
// into one folder per participant (its shard), and a held-out folder the server scores.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelConfig } from '../config.ts';
import { loadCorpus } from '../corpus.ts';
import { prepareData } from '../data.ts';
import { exportGguf } from '../export.ts';
import { initialParams } from '../params.ts';
import { tokenizerGgufMetadata } from '../tokenizer-gguf.ts';

export const PROSE_FIXTURE = 'test/fixtures/prose';

export interface TinyJob {
  init: string;
  shards: string[];
  heldOut: string;
  model: ModelConfig;
}

export interface TinyJobOptions {
  participants: number;
  /** Model width and depth (default 32 x 1) and context (default 32). */
  nEmbd?: number;
  nLayer?: number;
  nCtx?: number;
  seed?: number;
}

export function makeTinyJob(dir: string, o: TinyJobOptions): TinyJob {
  mkdirSync(dir, { recursive: true });
  const files = readdirSync(PROSE_FIXTURE).filter((f) => f.endsWith('.txt')).sort();
  const heldOutFiles = files.slice(-2);
  const trainFiles = files.slice(0, -2);
  const data = prepareData(loadCorpus(trainFiles.map((f) => join(PROSE_FIXTURE, f))), { vocabSize: 320, heldOutFraction: 0, splitSeed: 1 });
  const nEmbd = o.nEmbd ?? 32;
  const model: ModelConfig = { nVocab: data.tokenizer.vocabSize, nCtx: o.nCtx ?? 32, nEmbd, nLayer: o.nLayer ?? 1, nHead: 2, nHeadKv: 2, nFf: 2 * nEmbd, ropeBase: 10000, rmsEps: 1e-5 };
  const init = join(dir, 'base.gguf');
  exportGguf(init, { model, params: initialParams(model, o.seed ?? 1), tokenizer: tokenizerGgufMetadata(data.tokenizer), type: 'F32', name: 'diloco-tiny' });
  const shards: string[] = [];
  for (let p = 0; p < o.participants; p++) {
    const d = join(dir, `shard-${p}`);
    mkdirSync(d, { recursive: true });
    trainFiles.forEach((f, i) => {
      if (i % o.participants === p) writeFileSync(join(d, f), readFileSync(join(PROSE_FIXTURE, f)));
    });
    shards.push(d);
  }
  const heldOut = join(dir, 'held-out');
  mkdirSync(heldOut, { recursive: true });
  for (const f of heldOutFiles) writeFileSync(join(heldOut, f), readFileSync(join(PROSE_FIXTURE, f)));
  return { init, shards, heldOut, model };
}
