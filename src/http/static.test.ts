// Static files: what is served (files under the root, index files, content types, ETag and 304) and what
// never is (anything outside the root however the path is spelled, dot files, symlinks out of the root).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { HttpError } from './errors.ts';
import { Router } from './router.ts';
import { contentTypeFor, safeSegments, staticFiles } from './static.ts';
import { problemOf, rawRequest, startTestListener } from './testing.ts';
import type { TestServer } from './testing.ts';

const SECRET = 'TOP-SECRET-6d1e';
let server: TestServer;
let base: string;

before(async () => {
  base = mkdtempSync(join(tmpdir(), 'sharedllm-static-'));
  const root = join(base, 'www');
  mkdirSync(join(root, 'sub', 'dir'), { recursive: true });
  mkdirSync(join(root, 'empty'));
  writeFileSync(join(root, 'index.html'), '<h1>home</h1>');
  writeFileSync(join(root, 'app.js'), 'console.log(1);');
  writeFileSync(join(root, 'data.bin'), Buffer.from([1, 2, 3]));
  writeFileSync(join(root, 'a b.css'), 'body{}');
  writeFileSync(join(root, 'sub', 'dir', 'index.html'), '<p>deep</p>');
  writeFileSync(join(root, '.env'), SECRET);
  writeFileSync(join(base, 'secret.txt'), SECRET);
  writeFileSync(join(base, 'www-evil.txt'), SECRET); // a sibling whose name starts with the root's
  symlinkSync(join(base, 'secret.txt'), join(root, 'link-out.txt'));
  symlinkSync(base, join(root, 'dir-out'));
  symlinkSync(join(root, 'app.js'), join(root, 'link-in.js'));
  const router = new Router().add('GET', '/web/*', staticFiles({ root })).add('GET', '/gone/*', staticFiles({ root: join(base, 'missing') }));
  server = await startTestListener(router);
});

after(async () => {
  await server.close();
  rmSync(base, { recursive: true, force: true });
});

test('serves files with their content type, length, ETag, Cache-Control and nosniff; a directory serves its index', async () => {
  const js = await rawRequest(server.url, 'GET', '/web/app.js');
  assert.equal(js.status, 200);
  assert.equal(js.text, 'console.log(1);');
  assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
  assert.equal(js.headers['content-length'], '15');
  assert.equal(js.headers['cache-control'], 'no-cache');
  assert.equal(js.headers['x-content-type-options'], 'nosniff');
  assert.match(js.headers.etag ?? '', /^W\/"[0-9a-f]+-[0-9a-f]+"$/);
  assert.ok(js.headers['last-modified']);
  for (const path of ['/web', '/web/', '/web/index.html']) assert.equal((await rawRequest(server.url, 'GET', path)).text, '<h1>home</h1>');
  assert.equal((await rawRequest(server.url, 'GET', '/web/sub/dir')).text, '<p>deep</p>');
  assert.equal((await rawRequest(server.url, 'GET', '/web/a%20b.css')).headers['content-type'], 'text/css; charset=utf-8');
  assert.equal((await rawRequest(server.url, 'GET', '/web/data.bin')).headers['content-type'], 'application/octet-stream');
  assert.equal((await rawRequest(server.url, 'GET', '/web/link-in.js')).text, 'console.log(1);', 'a symlink inside the root is fine');
  assert.equal(contentTypeFor('x/Y.SVG'), 'image/svg+xml');
});

test('If-None-Match with the current ETag gets a 304 without a body', async () => {
  const first = await rawRequest(server.url, 'GET', '/web/app.js');
  const etag = first.headers.etag!;
  const again = await rawRequest(server.url, 'GET', '/web/app.js', { headers: { 'if-none-match': etag } });
  assert.equal(again.status, 304);
  assert.equal(again.text, '');
  assert.equal(again.headers.etag, etag);
  assert.equal((await rawRequest(server.url, 'GET', '/web/app.js', { headers: { 'if-none-match': `"other", ${etag.slice(2)}` } })).status, 304, 'weak comparison');
  assert.equal((await rawRequest(server.url, 'GET', '/web/app.js', { headers: { 'if-none-match': '"other"' } })).status, 200);
});

test('missing files, directories without an index, dot files and a missing root are 404s in the service\'s shape', async () => {
  for (const path of ['/web/nope.js', '/web/empty', '/web/.env', '/web/sub/.hidden', '/gone/x']) {
    const answer = await rawRequest(server.url, 'GET', path);
    assert.equal(problemOf(answer, 404).code, 'not_found', path);
    assert.ok(!answer.text.includes(SECRET));
  }
});

test('path traversal, however spelled, never leaves the root', async () => {
  const attempts = [
    '/web/../secret.txt',
    '/web/../../etc/passwd',
    '/web/%2e%2e/secret.txt',
    '/web/%2E%2E/secret.txt',
    '/web/..%2fsecret.txt',
    '/web/%2e%2e%2fsecret.txt',
    '/web/sub/..%2f..%2fsecret.txt',
    '/web/..%5csecret.txt',
    '/web/..\\secret.txt',
    '/web/%2fetc%2fpasswd',
    '/web/secret.txt%00.js',
    '/web/%00',
    '/web/%E0%A4%A',
    '/web/..%252fsecret.txt',
    '/web/link-out.txt',
    '/web/dir-out/secret.txt',
    '/web/dir-out/www-evil.txt',
    '/web/./.env',
    '//web/../secret.txt',
  ];
  for (const path of attempts) {
    const answer = await rawRequest(server.url, 'GET', path);
    assert.ok([400, 404].includes(answer.status), `${path}: status ${answer.status}`);
    assert.ok(!answer.text.includes(SECRET), `${path} leaked the secret`);
    assert.match(answer.text, /"problem"/, `${path}: answered in the service's error shape`);
  }
});

test('safeSegments decodes each segment and refuses what could climb, hide a separator or NUL', () => {
  assert.deepEqual(safeSegments('a/b%20c/d.js'), ['a', 'b c', 'd.js']);
  assert.deepEqual(safeSegments(''), []);
  for (const bad of ['..', 'a/..', '%2e%2E', '..%2f', 'a%2Fb', 'a%5Cb', 'a%00', '%E0%A4%A', '.']) {
    assert.throws(() => safeSegments(bad), (error: unknown) => error instanceof HttpError && error.status === 400, bad);
  }
  assert.throws(() => safeSegments('.git/config'), (error: unknown) => error instanceof HttpError && error.status === 404);
});
