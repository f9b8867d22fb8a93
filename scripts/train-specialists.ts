// Trains SharedLLM's specialists from the bundled base and measures them: for each domain, a deterministic
// sample of its corpus (scripts/fetch-corpora.ts --all), `sharedllm train --init models/sharedllm-tiny.gguf`
// (1 thread, fixed seed, a held-out split by document), then the perplexity of the base and of every
// specialist on every domain's held-out text (`sharedllm eval`), and a check that all share the base's
// tokenizer (the RFC-0006 tokenizer hash). models/specialists/RECIPE.md holds the command and the results.
//
// Usage: node --import tsx scripts/train-specialists.ts [--corpora data/corpora] [--work data/specialists]
//          [--only go,spanish-bible] [--steps 200] [--skip-train] [--eval-bytes 65536]
//   --corpora     where fetch-corpora wrote the domain corpora
//   --work        sampled corpora, checkpoints, held-out text, trained GGUFs and results.json (not committed)
//   --skip-train  only evaluate the GGUFs already in --work (with the training records train-<domain>.json)
//   --skip-eval   only train (domains may then train in parallel processes; a --skip-train run evaluates)
//   --install DIR copy each <id>.gguf to DIR and sign its RFC-0006 manifest DIR/<id>.manifest.json with
//                 `sharedllm specialist manifest` (publisher key: --key F, else the CLI's default)
//   --key F       the publisher key file (kept outside the repository; see models/specialists/RECIPE.md)
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { modelFacts } from '../src/federation/directory/model-facts.ts';

const ROOT = resolve(new URL('..', import.meta.url).pathname);
const BASE = join(ROOT, 'models/sharedllm-tiny.gguf');

/** One specialist: its model id, the corpus it learns and how much of it is sampled. */
interface Domain {
  id: string;
  corpus: string;
  tags: string[];
  description: string;
}
const DOMAINS: readonly Domain[] = [
  { id: 'sharedllm-tiny-go', corpus: 'go', tags: ['code', 'go'], description: 'Go 1.19 standard library source (fine-tuned SharedLLM-tiny)' },
  { id: 'sharedllm-tiny-es', corpus: 'spanish-bible', tags: ['language', 'es'], description: 'Spanish: Reina-Valera 1909 Bible (fine-tuned SharedLLM-tiny)' },
  { id: 'sharedllm-tiny-kernel', corpus: 'kernel-docs', tags: ['technical', 'en', 'linux'], description: 'Linux 6.1 kernel documentation, reStructuredText (fine-tuned SharedLLM-tiny)' },
];

/** The run's settings; each is what RECIPE.md reports. */
const CONFIG = {
  /** Bytes of each domain's corpus sampled (whole documents, seeded order): ~4x the text 200 steps read. */
  sampleBytes: 3_000_000,
  /** Optimiser steps of batch x ctx tokens; 200 x 4 x 256 = 204,800 tokens, about 10 min at 1 thread. */
  steps: 200,
  batch: 4,
  ctx: 256,
  /** Fine-tuning rate: half the base's peak (2e-3), warmup 50 and cosine as the preset has. */
  lr: 1e-3,
  seed: 1,
  threads: 1,
  /** Fraction of the sampled documents held out (by seeded hash, as `sharedllm train` splits). */
  heldOut: 0.05,
  /** Each domain's held-out text is cut to this many bytes for the cross evaluation (whole lines). */
  evalBytes: 65_536,
} as const;

interface Args {
  corpora: string;
  work: string;
  only: Domain[];
  steps: number;
  skipTrain: boolean;
  skipEval: boolean;
  evalBytes: number;
  install?: string;
  key?: string;
}

function parseArgs(argv: readonly string[]): Args {
  const a: Args = { corpora: join(ROOT, 'data/corpora'), work: join(ROOT, 'data/specialists'), only: [...DOMAINS], steps: CONFIG.steps, skipTrain: false, skipEval: false, evalBytes: CONFIG.evalBytes };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value (see the header of scripts/train-specialists.ts)`);
      return v;
    };
    if (arg === '--corpora') a.corpora = resolve(next());
    else if (arg === '--work') a.work = resolve(next());
    else if (arg === '--steps') a.steps = Number(next());
    else if (arg === '--eval-bytes') a.evalBytes = Number(next());
    else if (arg === '--skip-train') a.skipTrain = true;
    else if (arg === '--skip-eval') a.skipEval = true;
    else if (arg === '--install') a.install = resolve(next());
    else if (arg === '--key') a.key = resolve(next());
    else if (arg === '--only') {
      const names = next().split(',');
      a.only = DOMAINS.filter((d) => names.includes(d.corpus) || names.includes(d.id));
      if (a.only.length !== names.length) throw new Error(`--only: unknown domain in ${names.join(',')}; domains: ${DOMAINS.map((d) => d.corpus).join(', ')}`);
    } else throw new Error(`unknown argument ${arg} (see the header of scripts/train-specialists.ts)`);
  }
  if (!(Number.isInteger(a.steps) && a.steps > 0)) throw new Error(`--steps must be a positive integer, got ${a.steps}`);
  return a;
}

function log(message: string): void {
  process.stderr.write(`[train-specialists ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

function cli(args: readonly string[]): string {
  return execFileSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], {
    cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20,
  });
}

/**
 * Copies a deterministic sample of `source`'s documents into `target`: files ordered by sha256(seed, name),
 * taken while the total stays under `budget` bytes. Returns the names taken and their bytes.
 */
function sampleCorpus(source: string, target: string, budget: number, seed: number): { files: number; bytes: number; fingerprint: string } {
  if (!existsSync(source)) throw new Error(`no corpus at ${source}: run node --import tsx scripts/fetch-corpora.ts --all`);
  const order = readdirSync(source).filter((f) => f.endsWith('.txt'))
    .map((f) => ({ f, key: createHash('sha256').update(`${seed}\0${f}`).digest('hex') }))
    .sort((x, y) => (x.key < y.key ? -1 : 1));
  rmSync(target, { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
  const fingerprint = createHash('sha256');
  let bytes = 0;
  let files = 0;
  for (const { f } of order) {
    const size = statSync(join(source, f)).size;
    if (bytes + size > budget) continue;
    const text = readFileSync(join(source, f));
    writeFileSync(join(target, f), text);
    fingerprint.update(f).update('\0').update(text).update('\0');
    bytes += size;
    files++;
  }
  return { files, bytes, fingerprint: fingerprint.digest('hex') };
}

/** The first `max` bytes of a text file, cut at a line end. */
function headText(path: string, max: number): string {
  const text = readFileSync(path, 'utf8');
  if (Buffer.byteLength(text) <= max) return text;
  const cut = Buffer.from(text).subarray(0, max).toString('utf8');
  return cut.slice(0, Math.max(cut.lastIndexOf('\n'), 1)) + '\n';
}

function perplexity(model: string, text: string): { perplexity: number; tokens: number } {
  const out = cli(['eval', '--model', model, '--text', text, '--threads', String(CONFIG.threads)]);
  const m = /perplexity ([\d.]+) over (\d+) tokens/.exec(out);
  if (!m) throw new Error(`sharedllm eval printed no perplexity: ${out}`);
  return { perplexity: Number(m[1]), tokens: Number(m[2]) };
}

function main(): void {
  const a = parseArgs(process.argv.slice(2));
  mkdirSync(a.work, { recursive: true });
  const results: Record<string, unknown> = { config: { ...CONFIG, steps: a.steps, evalBytes: a.evalBytes }, base: BASE, domains: {} };
  const domains = results.domains as Record<string, unknown>;
  for (const d of a.only) {
    const corpus = join(a.work, 'corpus', d.corpus);
    const out = join(a.work, `${d.id}.gguf`);
    const heldOut = join(a.work, `heldout-${d.corpus}.txt`);
    if (!a.skipTrain) {
      const sample = sampleCorpus(join(a.corpora, d.corpus), corpus, CONFIG.sampleBytes, CONFIG.seed);
      log(`${d.id}: sampled ${sample.files} documents, ${sample.bytes} bytes of ${d.corpus}`);
      const args = ['train', '--init', BASE, '--corpus', corpus, '--out', out, '--steps', String(a.steps), '--batch', String(CONFIG.batch),
        '--ctx', String(CONFIG.ctx), '--lr', String(CONFIG.lr), '--seed', String(CONFIG.seed), '--threads', String(CONFIG.threads),
        '--held-out', String(CONFIG.heldOut), '--held-out-text', heldOut, '--eval-every', '0', '--type', 'Q8_0',
        '--checkpoint', join(a.work, `${d.id}.ckpt`), '--force', '--log-every', '25'];
      log(`sharedllm ${args.join(' ')}`);
      const started = Date.now();
      const printed = cli(args);
      const wallS = (Date.now() - started) / 1000;
      log(`${d.id}: trained in ${wallS.toFixed(0)} s\n${printed.trim()}`);
      domains[d.corpus] = { ...d, sample, command: `sharedllm ${args.join(' ')}`, trainWallS: wallS, trainOutput: printed.trim() };
      writeFileSync(join(a.work, `train-${d.corpus}.json`), JSON.stringify(domains[d.corpus], null, 2) + '\n');
    } else {
      const record = join(a.work, `train-${d.corpus}.json`);
      domains[d.corpus] = existsSync(record) ? JSON.parse(readFileSync(record, 'utf8')) as unknown : { ...d };
    }
    const cut = join(a.work, `eval-${d.corpus}.txt`);
    writeFileSync(cut, headText(heldOut, a.evalBytes));
  }

  if (a.skipEval) return;

  // Shared tokenizer: every specialist's tokenizer hash is the base's.
  const baseFacts = modelFacts(BASE);
  const models = [{ id: 'base (sharedllm-tiny)', path: BASE }, ...a.only.map((d) => ({ id: d.id, path: join(a.work, `${d.id}.gguf`) }))];
  const facts = models.map((m) => ({ ...m, ...modelFacts(m.path) }));
  for (const f of facts) {
    if (f.tokenizerHash !== baseFacts.tokenizerHash) throw new Error(`${f.id}: tokenizer ${f.tokenizerHash} differs from the base's ${baseFacts.tokenizerHash}`);
  }
  log(`all ${facts.length} models share tokenizer ${baseFacts.tokenizerHash}`);
  results.models = facts.map((f) => ({ id: f.id, path: f.path, contentHash: f.contentHash, tokenizerHash: f.tokenizerHash, fileBytes: f.fileBytes, quant: f.quant }));

  // Perplexity of every model on every domain's held-out text.
  const table: Record<string, Record<string, { perplexity: number; tokens: number }>> = {};
  for (const m of models) {
    table[m.id] = {};
    for (const d of a.only) {
      const r = perplexity(m.path, join(a.work, `eval-${d.corpus}.txt`));
      table[m.id]![d.corpus] = r;
      log(`${m.id} on ${d.corpus}: perplexity ${r.perplexity} over ${r.tokens} tokens`);
    }
  }
  results.perplexity = table;
  writeFileSync(join(a.work, 'results.json'), JSON.stringify(results, null, 2) + '\n');

  const header = `| model | ${a.only.map((d) => `${d.corpus} held-out`).join(' | ')} |`;
  const rule = `| --- | ${a.only.map(() => '---:').join(' | ')} |`;
  const rows = models.map((m) => `| ${m.id} | ${a.only.map((d) => table[m.id]![d.corpus]!.perplexity.toFixed(2)).join(' | ')} |`);
  const tokens = `| (tokens scored) | ${a.only.map((d) => String(table[models[0]!.id]![d.corpus]!.tokens)).join(' | ')} |`;
  process.stdout.write([header, rule, ...rows, tokens].join('\n') + '\n');
  log(`wrote ${join(a.work, 'results.json')}`);
  if (a.install) install(a, a.install);
}

/** Copies each specialist's GGUF to `dir` and signs its manifest there. */
function install(a: Args, dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const d of a.only) {
    const model = join(dir, `${d.id}.gguf`);
    copyFileSync(join(a.work, `${d.id}.gguf`), model);
    const printed = cli(['specialist', 'manifest', '--model', model, '--id', d.id, '--domain', d.tags.join(','), '--description', d.description,
      ...(a.key ? ['--key', a.key] : []), '--out', join(dir, `${d.id}.manifest.json`)]);
    log(printed.trim());
  }
}

try {
  main();
} catch (error) {
  process.stderr.write(`[train-specialists] error: ${(error as Error).message}\n`);
  process.exit(1);
}
