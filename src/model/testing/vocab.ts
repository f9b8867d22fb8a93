// Real tokenizer vocabularies for tests, taken from llama.cpp's own `models/ggml-vocab-*.gguf`.
//
// node-llama-cpp ships the llama.cpp source it was built from as a git bundle
// (`node_modules/node-llama-cpp/llama/gitRelease.bundle`). We extract the vocab files we need from it once
// and cache them under `.cache/vocab/`, so tests use exactly the vocabularies llama.cpp tests itself with.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const VOCAB_NAMES = ['llama-spm', 'llama-bpe', 'qwen2', 'phi-3', 'gpt-2'] as const;
export type VocabName = (typeof VOCAB_NAMES)[number];

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const cacheDir = join(repoRoot, '.cache', 'vocab');

/** Absolute path of the llama.cpp source bundle that node-llama-cpp ships. */
export function llamaCppBundlePath(): string {
  // The package's exports hide package.json, so walk up from its entry point to its root folder.
  let dir = dirname(createRequire(import.meta.url).resolve('node-llama-cpp'));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return join(dir, 'llama', 'gitRelease.bundle');
}

/** Path of `models/ggml-vocab-<name>.gguf`, extracted from the bundle on first use. */
export function vocabPath(name: VocabName): string {
  return extractModelsFile(`ggml-vocab-${name}.gguf`);
}

/**
 * Path of llama.cpp's golden tokenizer test file for a vocab: `models/ggml-vocab-<name>.gguf.inp` holds the
 * input texts, `.out` the expected token ids (read by llama.cpp's `tests/test-tokenizer-0.cpp`).
 */
export function vocabGoldenPath(name: VocabName, kind: 'inp' | 'out'): string {
  return extractModelsFile(`ggml-vocab-${name}.gguf.${kind}`);
}

/** Extracts `models/<fileName>` from the bundle into the cache once; returns the cached path. */
function extractModelsFile(fileName: string): string {
  const out = join(cacheDir, fileName);
  if (existsSync(out)) return out;
  mkdirSync(cacheDir, { recursive: true });
  const repo = bundleCheckout();
  const bytes = execFileSync('git', ['-C', repo, 'show', `HEAD:models/${fileName}`], {
    maxBuffer: 256 * 1024 * 1024,
  });
  // Write to a private temp name, then rename: two test processes may extract at once.
  const tmp = `${out}.${process.pid}.tmp`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, out);
  return out;
}

let checkout: string | undefined;
function bundleCheckout(): string {
  if (checkout) return checkout;
  const bundle = llamaCppBundlePath();
  if (!existsSync(bundle)) {
    throw new Error(`llama.cpp source bundle not found at ${bundle}; run \`npm install\` first`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'sharedllm-llamacpp-'));
  rmSync(dir, { recursive: true, force: true });
  execFileSync('git', ['clone', '-q', '--no-checkout', bundle, dir], { stdio: 'ignore' });
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  checkout = dir;
  return dir;
}
