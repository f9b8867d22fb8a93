// A small DiLoCo job on disk for tests, the bench and Bet 66: a llama GGUF of random weights
// (32 wide, 1 layer, a 320-token BPE tokenizer trained on the prose fixture), the fixture's documents dealt
// into one folder per participant (its shard), and a held-out folder the server scores.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelConfig } from '../config.ts';
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
  /** The documents (default: the prose fixture's 16 files); the last `heldOutDocs` are held out. */
  documents?: { name: string; text: string }[];
  heldOutDocs?: number;
  vocabSize?: number;
  /** Model width and depth (default 32 x 1) and context (default 32). */
  nEmbd?: number;
  nLayer?: number;
  nCtx?: number;
  seed?: number;
}

export function makeTinyJob(dir: string, o: TinyJobOptions): TinyJob {
  mkdirSync(dir, { recursive: true });
  const docs = o.documents ?? readdirSync(PROSE_FIXTURE).filter((f) => f.endsWith('.txt')).sort().map((f) => ({ name: f.replace(/\.txt$/, ''), text: readFileSync(join(PROSE_FIXTURE, f), 'utf8') }));
  const cut = docs.length - (o.heldOutDocs ?? 2);
  const heldOutDocs = docs.slice(cut);
  const trainDocs = docs.slice(0, cut);
  const data = prepareData(trainDocs, { vocabSize: o.vocabSize ?? 320, heldOutFraction: 0, splitSeed: 1 });
  const nEmbd = o.nEmbd ?? 32;
  const model: ModelConfig = { nVocab: data.tokenizer.vocabSize, nCtx: o.nCtx ?? 32, nEmbd, nLayer: o.nLayer ?? 1, nHead: Math.max(2, nEmbd / 32), nHeadKv: Math.max(2, nEmbd / 32), nFf: 2 * nEmbd, ropeBase: 10000, rmsEps: 1e-5 };
  const init = join(dir, 'base.gguf');
  exportGguf(init, { model, params: initialParams(model, o.seed ?? 1), tokenizer: tokenizerGgufMetadata(data.tokenizer), type: 'F32', name: 'diloco-tiny' });
  const shards: string[] = [];
  for (let p = 0; p < o.participants; p++) {
    const d = join(dir, `shard-${p}`);
    mkdirSync(d, { recursive: true });
    trainDocs.forEach((doc, i) => {
      if (i % o.participants === p) writeFileSync(join(d, `${doc.name}.txt`), doc.text);
    });
    shards.push(d);
  }
  const heldOut = join(dir, 'held-out');
  mkdirSync(heldOut, { recursive: true });
  for (const doc of heldOutDocs) writeFileSync(join(heldOut, `${doc.name}.txt`), doc.text);
  return { init, shards, heldOut, model };
}
