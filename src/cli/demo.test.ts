// `sharedllm demo` as a newcomer runs it: three real processes, the bundled model, text back, all stopped.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';

const bin = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../../bin/sharedllm.js');

function sharedllmProcesses(): string[] {
  const ps = spawnSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' }).stdout;
  return ps.split('\n').filter((l) => l.includes('sharedllm.js') && / (coordinator|node --role) /.test(l) && l.includes('sharedllm-demo-'));
}

test('demo starts a coordinator, a worker and a primary, continues a prompt with SharedLLM-tiny, and stops them all', () => {
  const before = sharedllmProcesses().length;
  const r = spawnSync(process.execPath, [bin, 'demo', '--prompt', 'It was a dark and stormy night, and', '-n', '12', '--temp', '0'], { encoding: 'utf8', timeout: 180_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /coordinator\s+http:\/\/127\.0\.0\.1:\d+/);
  assert.match(r.stderr, /worker\s+127\.0\.0\.1:\d+, holds layers \[3, 6\)/);
  assert.match(r.stderr, /OpenAI API\s+http:\/\/127\.0\.0\.1:\d+\/v1/);
  assert.ok(r.stdout.startsWith('It was a dark and stormy night, and'));
  assert.ok(r.stdout.trim().length > 'It was a dark and stormy night, and'.length + 5, `continued: ${r.stdout}`);
  assert.equal(sharedllmProcesses().length, before, 'every process the demo started has stopped');
});
