// stderr of a logging command is one format from its first line to its last, errors included.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { logFormatFromArgv } from './logging.ts';

const bin = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../../bin/sharedllm.js');
const BAD = ['node', '--role', 'boss', '--coordinator-url', 'http://127.0.0.1:1'];

test('--log-format json (the default on a pipe): the error is a JSON line too', () => {
  for (const extra of [[], ['--log-format', 'json']]) {
    const r = spawnSync(process.execPath, [bin, ...BAD, ...extra], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 2);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    const rec = JSON.parse(lines[0]!) as { level: string; event: string; message: string };
    assert.equal(rec.level, 'error');
    assert.equal(rec.event, 'command_failed');
    assert.match(rec.message, /--role must be one of primary, worker/);
  }
});

test('--log-format text: one readable line', () => {
  const r = spawnSync(process.execPath, [bin, ...BAD, '--log-format=text'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^sharedllm node: --role must be one of primary, worker.*\n$/);
});

test('logFormatFromArgv reads both spellings and falls back to the default', () => {
  assert.equal(logFormatFromArgv(['--log-format', 'text']), 'text');
  assert.equal(logFormatFromArgv(['--log-format=json']), 'json');
  assert.equal(logFormatFromArgv(['--log-format', 'xml']), process.stderr.isTTY ? 'text' : 'json');
});
