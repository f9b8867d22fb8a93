// From a corpus to token streams: the held-out split (by document), the BPE tokenizer trained on the
// training documents only, the encoded streams (EOS after each document), a fingerprint that tells a
// resumed run it sees the same text, and a cursor over the training batches that can start anywhere.
import { createHash } from 'node:crypto';
import { BpeTokenizer, trainBpe } from './bpe.ts';
import { type CorpusDocument, type TokenBatch, TokenBatcher, concatTokens, splitHeldOut } from './corpus.ts';
import { TrainError } from './errors.ts';

export interface PreparedData {
  tokenizer: BpeTokenizer;
  train: Int32Array;
  heldOut: Int32Array;
  /** Names of the held-out documents (empty when the held-out text is the tail of a single stream). */
  heldOutNames: string[];
  heldOutText: string;
  trainDocs: number;
  /** sha256 over document names and texts, in order. */
  fingerprint: string;
}

export interface PrepareOptions {
  vocabSize: number;
  /** Fraction of documents held out (default 0.05). */
  heldOutFraction?: number;
  splitSeed?: number;
  /** Use this tokenizer instead of training one (resume, fine-tuning). */
  tokenizer?: BpeTokenizer;
  onPhase?: (phase: string) => void;
}

export function corpusFingerprint(docs: readonly CorpusDocument[]): string {
  const h = createHash('sha256');
  for (const d of docs) h.update(d.name).update('\0').update(d.text).update('\0');
  return h.digest('hex');
}

export function prepareData(docs: readonly CorpusDocument[], o: PrepareOptions): PreparedData {
  const fraction = o.heldOutFraction ?? 0.05;
  const split = splitHeldOut(docs, { fraction, seed: o.splitSeed ?? 0 });
  o.onPhase?.(o.tokenizer ? 'encoding' : `training a ${o.vocabSize}-token BPE tokenizer`);
  const tokenizer = o.tokenizer ?? trainBpe(split.train.map((d) => d.text), { vocabSize: o.vocabSize });
  o.onPhase?.('encoding');
  const encode = (list: readonly CorpusDocument[]) => concatTokens(list.map((d) => tokenizer.encode(d.text)), tokenizer.eosId);
  let train = encode(split.train);
  let heldOut = encode(split.heldOut);
  let heldOutText = split.heldOut.map((d) => d.text).join('\n\n');
  if (split.heldOut.length === 0 && fraction > 0) {
    // One document: hold out the tail of its stream instead.
    const cut = Math.floor(train.length * (1 - fraction));
    heldOut = train.slice(cut);
    train = train.slice(0, cut);
    heldOutText = tokenizer.decode(Array.from(heldOut));
  }
  return {
    tokenizer,
    train,
    heldOut,
    heldOutNames: split.heldOut.map((d) => d.name),
    heldOutText,
    trainDocs: split.train.length,
    fingerprint: corpusFingerprint(docs),
  };
}

/**
 * The training batches in order, from any position: batch k is batch (k mod E) of epoch floor(k / E),
 * E = batches per epoch, each epoch in its own seeded shuffle. The position is all a checkpoint needs.
 */
export class BatchCursor {
  readonly batcher: TokenBatcher;
  private epochIter: Generator<TokenBatch> | undefined;
  private iterPosition = -1;
  position: number;

  constructor(tokens: Int32Array, batch: number, ctx: number, seed: number, position = 0) {
    this.batcher = new TokenBatcher(tokens, { batch, ctx, seed });
    this.position = position;
  }

  next(): TokenBatch {
    const perEpoch = this.batcher.batchesPerEpoch;
    const epoch = Math.floor(this.position / perEpoch);
    const index = this.position % perEpoch;
    if (!this.epochIter || this.iterPosition !== this.position || index === 0) {
      this.epochIter = this.batcher.epoch(epoch);
      for (let i = 0; i < index; i++) this.epochIter.next();
    }
    const r = this.epochIter.next();
    if (r.done) throw new TrainError('batch cursor ran past its epoch', `batch ${index} of ${perEpoch}`, 'end of epoch', 'this is a bug');
    this.position++;
    this.iterPosition = this.position;
    return r.value;
  }
}

/**
 * Unigram baseline: perplexity of the held-out stream under token frequencies of the training stream,
 * add-one smoothed over the vocabulary. A trained model should beat it by a wide margin.
 */
export function unigramPerplexity(train: Int32Array, heldOut: Int32Array, vocabSize: number): number {
  const counts = new Float64Array(vocabSize);
  for (const t of train) counts[t]! += 1;
  const total = train.length + vocabSize;
  let nll = 0;
  for (const t of heldOut) nll -= Math.log((counts[t]! + 1) / total);
  return Math.exp(nll / Math.max(1, heldOut.length));
}

/** Rows of nCtx (input, target) pairs covering a stream once, for evaluation: every target counted once. */
export function* evalRows(tokens: Int32Array, nCtx: number, rowsPerBatch: number): Generator<{ input: Int32Array; target: Int32Array }> {
  const n = tokens.length - 1;
  const rowTokens = nCtx * rowsPerBatch;
  for (let start = 0; start < n; start += rowTokens) {
    const len = Math.min(rowTokens, n - start);
    // Rows are laid out one after another; a short last batch is padded by the trainer.
    yield { input: tokens.subarray(start, start + len), target: tokens.subarray(start + 1, start + 1 + len) };
  }
}
