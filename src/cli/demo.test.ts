// `sharedllm demo` as a newcomer runs it: three real processes, the bundled model, text back, all stopped.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { HAS_PTY, startInteractive } from './interactive.testing.ts';

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
  // The dashboards (src/web): the federation and the catalogue on the coordinator, the playground on the primary.
  assert.match(r.stderr, /federation http:\/\/127\.0\.0\.1:\d+\/\n\s+playground http:\/\/127\.0\.0\.1:\d+\/\n\s+catalogue\s+http:\/\/127\.0\.0\.1:\d+\/catalogue/);
  assert.ok(r.stdout.startsWith('It was a dark and stormy night, and'));
  assert.ok(r.stdout.trim().length > 'It was a dark and stormy night, and'.length + 5, `continued: ${r.stdout}`);
  assert.equal(sharedllmProcesses().length, before, 'every process the demo started has stopped');
});

/** The demo's temp folder, read from its children's command lines (`--data-dir <folder>/<name>`). */
function demoFolderOf(pid: number): string | undefined {
  const ps = spawnSync('ps', ['-o', 'args=', '--ppid', String(pid)], { encoding: 'utf8' }).stdout;
  return /--data-dir (\S*sharedllm-demo-[^/\s]+)/.exec(ps)?.[1];
}

test('demo: Ctrl-C stops an answer and the prompt comes back; the next one stops everything and removes the temp folder', async () => {
  const demo = startInteractive(['demo', '-n', '200', '--temp', '0.7']);
  try {
    await demo.until('the prompt', () => demo.out.includes('> '), 120_000);
    const folder = demoFolderOf(demo.child.pid!);
    assert.ok(folder && existsSync(folder), `the demo's temp folder (${folder})`);
    demo.child.stdin.write('Once upon a time\n');
    const start = demo.out.length;
    await demo.until('the answer to stream', () => demo.out.length > start + 'Once upon a time'.length + 3);
    demo.child.kill('SIGINT');
    await demo.until('the answer to stop', () => demo.err.includes('(stopped; Ctrl-C again to leave)'));
    await demo.until('the prompt to come back', () => demo.out.lastIndexOf('> ') > start);
    assert.equal(demo.out.split('Once upon a time').length - 1, 1, 'the text is printed once (stdin is not a terminal: nothing echoed it)');
    demo.child.kill('SIGINT');
    assert.equal(await demo.exited, 0, demo.err);
    assert.ok(!existsSync(folder), 'the temp folder is gone');
  } finally {
    demo.child.kill('SIGKILL');
  }
});

test('demo in a terminal: the typed text shows once (the terminal echoes it), Ctrl-C stops the answer, the next leaves', { skip: !HAS_PTY && 'needs util-linux script for a pseudo-terminal' }, async () => {
  const demo = startInteractive(['demo', '-n', '200', '--temp', '0.7'], { terminal: true });
  try {
    await demo.until('the prompt', () => demo.out.includes('> '), 120_000);
    demo.child.stdin.write('Once upon a time\r');
    const start = demo.out.length;
    await demo.until('the answer to stream', () => demo.out.length > start + 'Once upon a time'.length + 10);
    demo.child.stdin.write('\x03');
    await demo.until('the answer to stop', () => demo.out.includes('(stopped; Ctrl-C again to leave)'));
    assert.equal(demo.out.split('Once upon a time').length - 1, 1, `the typed text shows once:\n${demo.out}`);
    const stopped = demo.out.indexOf('(stopped');
    await demo.until('the prompt to come back', () => demo.out.indexOf('> ', stopped) > 0);
    demo.child.stdin.write('\x03');
    assert.equal(await demo.exited, 0, demo.out);
  } finally {
    demo.child.kill('SIGKILL');
  }
});
