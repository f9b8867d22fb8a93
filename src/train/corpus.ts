// Training text: loading a corpus of plain UTF-8 documents, a deterministic held-out split by document,
// and a batcher that cuts token streams into (input, target) windows for next-token training.
//
// A document is one .txt file. Splitting by document (never inside one) keeps held-out text unseen:
// a chapter is either all train or all held-out.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { mulberry32 } from '../util/random.ts';

export interface CorpusDocument {
  /** Path relative to the corpus root (or the path as given, for file lists), '/'-separated. */
  name: string;
  text: string;
}

export class CorpusError extends Error {
  constructor(
    message: string,
    readonly path: string,
    readonly expected: string,
    readonly actual: string,
    readonly hint: string,
  ) {
    super(`${message} (${path}): expected ${expected}, found ${actual}. ${hint}`);
    this.name = 'CorpusError';
  }
}

export interface LoadCorpusOptions {
  /** File name endings to load from directories. Default ['.txt']. */
  extensions?: readonly string[];
  /** Reject a file when more than this fraction of its bytes are invalid UTF-8. Default 0.001. */
  maxInvalidUtf8Ratio?: number;
  /** Turn CRLF and lone CR into LF. Default true. */
  normalizeNewlines?: boolean;
}

/**
 * Loads documents from a directory (recursively; files with one of `extensions`) or from a list of
 * files and directories. Files are read in sorted path order, so the result is the same on every machine.
 * Throws CorpusError for a missing path, an empty corpus or file, or binary / non-UTF-8 content.
 */
export function loadCorpus(source: string | readonly string[], options: LoadCorpusOptions = {}): CorpusDocument[] {
  const extensions = options.extensions ?? ['.txt'];
  const docs: CorpusDocument[] = [];
  for (const entry of typeof source === 'string' ? [source] : source) {
    let stat;
    try {
      stat = statSync(entry);
    } catch {
      throw new CorpusError('corpus path not found', entry, 'a file or directory', 'nothing',
        'Run `node --import tsx scripts/fetch-corpora.ts` to install the corpora, or check the path.');
    }
    if (stat.isDirectory()) {
      const root = resolve(entry);
      for (const file of listFiles(root, extensions)) {
        docs.push({ name: relative(root, file).split('\\').join('/'), text: readText(file, options) });
      }
    } else {
      docs.push({ name: entry.split('\\').join('/'), text: readText(entry, options) });
    }
  }
  if (docs.length === 0) {
    throw new CorpusError('empty corpus', String(source), `at least one ${extensions.join('/')} file`, 'none',
      'Point at a directory holding text files.');
  }
  return docs;
}

function listFiles(dir: string, extensions: readonly string[]): string[] {
  const out: string[] = [];
  const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(path, extensions));
    else if (entry.isFile() && extensions.some((ext) => entry.name.endsWith(ext))) out.push(path);
  }
  return out;
}

function readText(path: string, options: LoadCorpusOptions): string {
  return decodeText(readFileSync(path), path, options);
}

/**
 * Checks and decodes one document's bytes: no NUL bytes (binary), at most `maxInvalidUtf8Ratio` invalid
 * UTF-8, some non-whitespace text. Strips a leading BOM and, by default, normalises newlines to LF.
 */
export function decodeText(bytes: Uint8Array, path: string, options: LoadCorpusOptions = {}): string {
  const nul = bytes.indexOf(0);
  if (nul >= 0) {
    throw new CorpusError('binary file in corpus', path, 'text without NUL bytes', `a NUL byte at offset ${nul}`,
      'Remove the file or convert it to plain text.');
  }
  let text = new TextDecoder('utf-8').decode(bytes);
  const invalid = countChar(text, '\uFFFD') - countReplacementBytes(bytes);
  const maxRatio = options.maxInvalidUtf8Ratio ?? 0.001;
  if (invalid > maxRatio * bytes.length) {
    throw new CorpusError('file is not UTF-8', path, `at most ${maxRatio * 100}% invalid UTF-8`,
      `${invalid} invalid sequences in ${bytes.length} bytes`,
      'Convert it to UTF-8 (e.g. `iconv -f latin1 -t utf-8`).');
  }
  if (text.startsWith('\uFEFF')) text = text.slice(1);
  if (options.normalizeNewlines ?? true) text = text.replace(/\r\n?/g, '\n');
  if (text.trim().length === 0) {
    throw new CorpusError('empty document', path, 'some text', `${bytes.length} bytes of whitespace`,
      'Remove the empty file from the corpus.');
  }
  return text;
}

function countChar(text: string, ch: string): number {
  let n = 0;
  for (let i = text.indexOf(ch); i >= 0; i = text.indexOf(ch, i + 1)) n++;
  return n;
}

/** Occurrences of U+FFFD written correctly in the source (EF BF BD): those are text, not errors. */
function countReplacementBytes(bytes: Uint8Array): number {
  let n = 0;
  for (let i = bytes.indexOf(0xef); i >= 0 && i + 2 < bytes.length; i = bytes.indexOf(0xef, i + 1)) {
    if (bytes[i + 1] === 0xbf && bytes[i + 2] === 0xbd) n++;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------------------
// Seeded randomness: small, fast, and the same in every JS engine.

/** 32-bit FNV-1a hash of a string (UTF-16 code units). */
export function hashString(text: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** A seeded PRNG returning floats in [0, 1) (mulberry32). */
export const seededRandom = mulberry32;

/** Fisher-Yates shuffle in place, driven by `random`. */
export function shuffleInPlace<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

// ---------------------------------------------------------------------------------------------------------
// Held-out split.

export interface HeldOutSplit<T> {
  train: T[];
  heldOut: T[];
}

/**
 * Splits documents into train and held-out by document. Each document's place depends only on its name
 * and the seed (documents are ranked by hash(seed, name) and the first round(fraction * n) are held out,
 * at least one when n >= 2), so the split does not depend on input order. Both halves keep input order.
 */
export function splitHeldOut<T extends { name: string }>(
  docs: readonly T[],
  options: { fraction: number; seed?: number },
): HeldOutSplit<T> {
  const { fraction } = options;
  if (!(fraction >= 0 && fraction < 1)) {
    throw new CorpusError('bad held-out fraction', '(split)', 'a number in [0, 1)', String(fraction), 'Use e.g. 0.05.');
  }
  const seed = options.seed ?? 0;
  let count = Math.round(fraction * docs.length);
  if (fraction > 0 && docs.length >= 2) count = Math.min(Math.max(count, 1), docs.length - 1);
  const ranked = docs
    .map((doc, index) => ({ index, key: hashString(`${seed}:${doc.name}`), name: doc.name }))
    .sort((a, b) => a.key - b.key || (a.name < b.name ? -1 : a.name > b.name ? 1 : a.index - b.index));
  const held = new Set(ranked.slice(0, count).map((r) => r.index));
  const train: T[] = [];
  const heldOut: T[] = [];
  docs.forEach((doc, i) => (held.has(i) ? heldOut : train).push(doc));
  return { train, heldOut };
}

// ---------------------------------------------------------------------------------------------------------
// Batching.

/** Joins per-document token arrays into one stream, with `separator` (e.g. EOS) after each document. */
export function concatTokens(docs: readonly ArrayLike<number>[], separator?: number): Int32Array {
  let length = 0;
  for (const doc of docs) length += doc.length + (separator === undefined ? 0 : 1);
  const out = new Int32Array(length);
  let at = 0;
  for (const doc of docs) {
    out.set(doc, at);
    at += doc.length;
    if (separator !== undefined) out[at++] = separator;
  }
  return out;
}

/** One training batch: row-major [batch, ctx] token ids; target is input shifted left by one. */
export interface TokenBatch {
  batch: number;
  ctx: number;
  input: Int32Array;
  target: Int32Array;
}

export interface TokenBatcherOptions {
  /** Rows per batch. */
  batch: number;
  /** Tokens per row (context length). */
  ctx: number;
  /** Shuffle seed; epoch e shuffles with seed + e. Default 0. */
  seed?: number;
}

/**
 * Cuts a token stream into non-overlapping windows of ctx + 1 tokens (window k starts at k * ctx, so
 * every token is a target exactly once per epoch) and serves them in a seeded random order, `batch`
 * windows at a time. The last partial batch of an epoch is dropped.
 */
export class TokenBatcher {
  readonly batch: number;
  readonly ctx: number;
  readonly windows: number;
  private readonly tokens: Int32Array;
  private readonly seed: number;

  constructor(tokens: ArrayLike<number>, options: TokenBatcherOptions) {
    const { batch, ctx } = options;
    if (!Number.isInteger(batch) || batch < 1 || !Number.isInteger(ctx) || ctx < 1) {
      throw new CorpusError('bad batch shape', '(batcher)', 'positive integers batch and ctx', `batch=${batch} ctx=${ctx}`,
        'Pass e.g. { batch: 8, ctx: 256 }.');
    }
    this.tokens = tokens instanceof Int32Array ? tokens : Int32Array.from(tokens);
    this.batch = batch;
    this.ctx = ctx;
    this.seed = options.seed ?? 0;
    this.windows = Math.max(0, Math.floor((this.tokens.length - 1) / ctx));
    if (this.windows < batch) {
      throw new CorpusError('too few tokens for one batch', '(batcher)', `at least ${batch * ctx + 1} tokens`,
        `${this.tokens.length} tokens`, 'Use more text, a smaller batch or a shorter context.');
    }
  }

  /** Full batches per epoch. */
  get batchesPerEpoch(): number {
    return Math.floor(this.windows / this.batch);
  }

  /** The batches of epoch `epoch` (0-based), in that epoch's shuffled order. */
  *epoch(epoch = 0): Generator<TokenBatch> {
    const order = shuffleInPlace(Array.from({ length: this.windows }, (_, k) => k), seededRandom(this.seed + epoch));
    const { batch, ctx } = this;
    for (let b = 0; b + batch <= order.length; b += batch) {
      const input = new Int32Array(batch * ctx);
      const target = new Int32Array(batch * ctx);
      for (let row = 0; row < batch; row++) {
        const start = (order[b + row] as number) * ctx;
        input.set(this.tokens.subarray(start, start + ctx), row * ctx);
        target.set(this.tokens.subarray(start + 1, start + ctx + 1), row * ctx);
      }
      yield { batch, ctx, input, target };
    }
  }
}
