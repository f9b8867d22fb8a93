/**
 * A self-signed TLS certificate for a coordinator on a LAN (`sharedllm certs --host <name-or-ip>`).
 * Node's crypto cannot issue X.509 certificates, so the key is made here (EC P-256, what browsers and
 * Node accept) and the certificate is signed by the `openssl` command (OpenSSL or LibreSSL), found on
 * PATH. Clients trust the certificate file itself (CoordinatorClient `caFile`); browsers show a warning
 * the user accepts once.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SelfSignedOptions {
  /** Host names and/or IP addresses clients will use; they all go into subjectAltName, the first is CN. */
  hosts: string[];
  /** Directory to write `<name>.crt` and `<name>.key` into (created when missing). */
  outDir: string;
  /** File base name (default 'coordinator'). */
  name?: string;
  /** Validity in days (default 825, the longest that Apple platforms accept). */
  days?: number;
  /** Also valid for localhost, 127.0.0.1 and ::1 (default true). */
  includeLoopback?: boolean;
  /** Replace existing files (default false: refuse). */
  overwrite?: boolean;
  /** The openssl executable (default 'openssl' on PATH). */
  openssl?: string;
}

export interface SelfSignedCert {
  certPath: string;
  keyPath: string;
  /** e.g. ['DNS:coord.lan', 'IP:192.168.1.10', 'DNS:localhost', ...] */
  subjectAltNames: string[];
  /** SHA-256 fingerprint, to compare out of band. */
  fingerprint256: string;
  validTo: string;
}

export class CertError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(`${message}. ${hint}`);
    this.name = 'CertError';
  }
}

const DNS_NAME = /^(?!-)[A-Za-z0-9-]{1,63}(\.(?!-)[A-Za-z0-9-]{1,63})*\.?$/;

export async function createSelfSignedCert(options: SelfSignedOptions): Promise<SelfSignedCert> {
  const name = options.name ?? 'coordinator';
  const days = options.days ?? 825;
  const openssl = options.openssl ?? 'openssl';
  if (!Number.isInteger(days) || days < 1) throw new CertError(`days must be a positive integer, got ${days}`, 'pass --days 365 for example');
  const altNames = subjectAltNames(options.hosts, options.includeLoopback ?? true);
  const commonName = options.hosts[0]!; // subjectAltNames() checked there is one

  mkdirSync(options.outDir, { recursive: true });
  const certPath = join(options.outDir, `${name}.crt`);
  const keyPath = join(options.outDir, `${name}.key`);
  if (options.overwrite !== true) {
    for (const path of [certPath, keyPath]) {
      if (existsSync(path)) throw new CertError(`${path} already exists`, 'pass --force to replace it, or choose another --out directory');
    }
  }

  const work = mkdtempSync(join(tmpdir(), 'sharedllm-certs-'));
  try {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const workKey = join(work, 'key.pem');
    writeFileSync(workKey, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    const configPath = join(work, 'openssl.cnf');
    writeFileSync(configPath, opensslConfig(commonName, altNames));
    const workCert = join(work, 'cert.pem');
    await runOpenssl(openssl, ['req', '-x509', '-config', configPath, '-key', workKey, '-out', workCert, '-days', String(days), '-sha256']);

    const certPem = readFileSync(workCert);
    writeFileSync(keyPath, readFileSync(workKey), { mode: 0o600 });
    chmodSync(keyPath, 0o600);
    writeFileSync(certPath, certPem, { mode: 0o644 });
    const x509 = new X509Certificate(certPem);
    return { certPath, keyPath, subjectAltNames: altNames, fingerprint256: x509.fingerprint256, validTo: x509.validTo };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** 'DNS:name' / 'IP:addr' entries, checked (they are written into an openssl config file). */
function subjectAltNames(hosts: string[], includeLoopback: boolean): string[] {
  if (hosts.length === 0) throw new CertError('no host given', 'pass --host <name-or-ip> (the address nodes use to reach the coordinator)');
  const all = includeLoopback ? [...hosts, 'localhost', '127.0.0.1', '::1'] : hosts;
  const entries: string[] = [];
  for (const raw of all) {
    const host = raw.startsWith('[') && raw.endsWith(']') ? raw.slice(1, -1) : raw;
    let entry: string;
    if (isIP(host) !== 0) entry = `IP:${host}`;
    else if (DNS_NAME.test(host)) entry = `DNS:${host.replace(/\.$/, '')}`;
    else throw new CertError(`'${raw}' is neither a host name nor an IP address`, 'pass --host coord.lan or --host 192.168.1.10');
    if (!entries.includes(entry)) entries.push(entry);
  }
  return entries;
}

function opensslConfig(commonName: string, altNames: string[]): string {
  const cn = commonName.replace(/^\[|\]$/g, '');
  return [
    '[req]',
    'distinguished_name = dn',
    'x509_extensions = v3',
    'prompt = no',
    '[dn]',
    `CN = ${cn}`,
    '[v3]',
    // CA:FALSE: a leaf certificate. Node trusts it when given as `ca`; browsers refuse CA certs as leaves.
    'basicConstraints = critical,CA:FALSE',
    'keyUsage = critical,digitalSignature',
    'extendedKeyUsage = serverAuth',
    `subjectAltName = ${altNames.join(',')}`,
    'subjectKeyIdentifier = hash',
    '',
  ].join('\n');
}

function runOpenssl(openssl: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(openssl, args, { timeout: 30_000 }, (error, _stdout, stderr) => {
      if (error === null) return resolve();
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        return reject(
          new CertError(
            `the '${openssl}' command was not found`,
            'install OpenSSL (Debian/Ubuntu: apt install openssl; Fedora: dnf install openssl; macOS ships LibreSSL), or make the certificate elsewhere and pass --tls-cert/--tls-key',
          ),
        );
      }
      reject(new CertError(`openssl failed: ${stderr.trim() || error.message}`, 'check the --host values; run with a newer OpenSSL if this persists'));
    });
  });
}
