// Ctrl-C in `sharedllm chat`, as a user meets it (a real process; its stdin a pipe, so Ctrl-C is a SIGINT):
// the first one during an answer stops that answer and the prompt comes back; the next one leaves, exit 0.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cachedModel } from '../model/testing/cached-model.ts';
import { HAS_PTY, startInteractive } from './interactive.testing.ts';

test('Ctrl-C during an answer returns to the prompt; a second Ctrl-C leaves', async () => {
  const model = cachedModel({ shape: 'smollm2', nLayer: 2, type: 'Q8_0', seed: 5 });
  // -n -1: the answer runs until the context is full, far longer than it takes to interrupt it.
  const chat = startInteractive(['chat', '--model', model, '--threads', '1', '-n', '-1', '--ctx-size', '2048', '--seed', '3']);
  try {
    await chat.until('the first prompt', () => chat.out.includes('> '));
    chat.child.stdin.write('Hello\n');
    const start = chat.out.length;
    await chat.until('the answer to stream', () => chat.out.length > start + 20);
    chat.child.kill('SIGINT');
    await chat.until('the answer to stop', () => chat.err.includes('(stopped; Ctrl-C again to leave)'));
    await chat.until('the prompt to come back', () => chat.out.lastIndexOf('> ') > start);
    assert.equal(chat.child.exitCode, null, 'still running after the first Ctrl-C');
    chat.child.kill('SIGINT');
    assert.equal(await chat.exited, 0, chat.err);
  } finally {
    chat.child.kill('SIGKILL');
  }
});

test('in a terminal: Ctrl-C (read by readline in raw mode) stops the answer, then leaves', { skip: !HAS_PTY && 'needs util-linux script for a pseudo-terminal' }, async () => {
  const model = cachedModel({ shape: 'smollm2', nLayer: 2, type: 'Q8_0', seed: 5 });
  const chat = startInteractive(['chat', '--model', model, '--threads', '1', '-n', '-1', '--ctx-size', '2048', '--seed', '3'], { terminal: true });
  try {
    // In a terminal stdout and stderr are the same screen: everything is in `out`.
    await chat.until('the first prompt', () => chat.out.includes('> '));
    chat.child.stdin.write('Hello\r');
    const start = chat.out.length;
    await chat.until('the answer to stream', () => chat.out.length > start + 40);
    chat.child.stdin.write('\x03');
    await chat.until('the answer to stop', () => chat.out.includes('(stopped; Ctrl-C again to leave)'));
    const stopped = chat.out.indexOf('(stopped');
    await chat.until('the prompt to come back', () => chat.out.indexOf('> ', stopped) > 0);
    chat.child.stdin.write('\x03');
    assert.equal(await chat.exited, 0, chat.out);
  } finally {
    chat.child.kill('SIGKILL');
  }
});
