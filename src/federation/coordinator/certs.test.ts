import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { test } from 'node:test';
import { CertError, createSelfSignedCert } from './certs.ts';
import { tempDir } from './testing.ts';

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const skip = hasOpenssl() ? false : 'openssl is not installed';

test('makes a P-256 cert for the given hosts (+ loopback) and a 0600 key', { skip }, async () => {
  const dir = tempDir();
  try {
    const made = await createSelfSignedCert({ hosts: ['coord.lan', '192.168.1.10'], outDir: dir.path, days: 30 });
    assert.deepEqual(made.subjectAltNames, ['DNS:coord.lan', 'IP:192.168.1.10', 'DNS:localhost', 'IP:127.0.0.1', 'IP:::1']);
    const cert = new X509Certificate(readFileSync(made.certPath));
    assert.match(cert.subject, /CN=coord\.lan/);
    assert.equal(cert.ca, false);
    assert.equal(cert.checkHost('coord.lan'), 'coord.lan');
    assert.equal(cert.checkIP('192.168.1.10'), '192.168.1.10');
    assert.equal(cert.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(cert.checkHost('other.lan'), undefined);
    assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.equal(made.fingerprint256, cert.fingerprint256);
    if (process.platform !== 'win32') assert.equal(statSync(made.keyPath).mode & 0o777, 0o600);
    assert.equal(cert.checkPrivateKey((await import('node:crypto')).createPrivateKey(readFileSync(made.keyPath))), true);
  } finally {
    dir.cleanup();
  }
});

test('refuses to overwrite unless asked; rejects hosts that are neither names nor IPs', { skip }, async () => {
  const dir = tempDir();
  try {
    await createSelfSignedCert({ hosts: ['10.0.0.1'], outDir: dir.path, includeLoopback: false });
    await assert.rejects(createSelfSignedCert({ hosts: ['10.0.0.1'], outDir: dir.path }), /already exists/);
    const again = await createSelfSignedCert({ hosts: ['10.0.0.2'], outDir: dir.path, overwrite: true, includeLoopback: false });
    assert.deepEqual(again.subjectAltNames, ['IP:10.0.0.2']);
    await assert.rejects(createSelfSignedCert({ hosts: ['bad host,DNS:evil'], outDir: dir.path, name: 'x' }), CertError);
    await assert.rejects(createSelfSignedCert({ hosts: [], outDir: dir.path, name: 'y' }), /no host/);
  } finally {
    dir.cleanup();
  }
});

test('a missing openssl is a CertError with an install hint', async () => {
  const dir = tempDir();
  try {
    await assert.rejects(createSelfSignedCert({ hosts: ['coord.lan'], outDir: dir.path, openssl: '/nonexistent/openssl' }), (error: unknown) => {
      assert.ok(error instanceof CertError);
      assert.match(error.hint, /install OpenSSL/);
      return true;
    });
  } finally {
    dir.cleanup();
  }
});
