import assert from 'node:assert/strict';
import { test } from 'node:test';
import { candidatePackages, unsupportedPlatformReason } from './find.ts';

test('platforms with a node-llama-cpp build get candidates, CPU package last; others get one clear reason', () => {
  assert.deepEqual(candidatePackages('linux', 'x64').at(-1), '@node-llama-cpp/linux-x64');
  assert.deepEqual(candidatePackages('darwin', 'arm64'), ['@node-llama-cpp/mac-arm64-metal']);
  assert.deepEqual(candidatePackages('win32', 'arm64'), ['@node-llama-cpp/win-arm64']);
  assert.deepEqual(candidatePackages('freebsd', 'x64'), []);
  assert.equal(unsupportedPlatformReason('linux', 'x64', false), undefined);
  assert.equal(unsupportedPlatformReason('darwin', 'arm64', false), undefined);
  const freebsd = unsupportedPlatformReason('freebsd', 'x64', false);
  assert.match(freebsd ?? '', /no ggml build for freebsd-x64.*Linux.*macOS.*Windows/);
  assert.ok(!freebsd!.includes('\n'), 'one line');
  assert.match(unsupportedPlatformReason('linux', 'x64', true) ?? '', /glibc.*musl/);
});
