// Test models are written once per machine and reused: .cache/test-models/<options>.gguf.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type MakeModelOptions, makeModel } from './make-model.ts';

const dir = join(resolve(dirname(fileURLToPath(import.meta.url)), '../../..'), '.cache', 'test-models');

/** Path of a test model with these options, writing it on first use (safe with parallel test files). */
export function cachedModel(o: MakeModelOptions): string {
  // A custom shape is named by its arch, width and a digest of all its fields (two shapes of one width differ).
  const shape = typeof o.shape === 'string' ? o.shape : `${o.shape.arch}-${o.shape.nEmbd}-${createHash('sha256').update(JSON.stringify(o.shape)).digest('hex').slice(0, 8)}`;
  const key = [shape, `L${o.nLayer}`, o.type, o.embdType ?? '', `s${o.seed ?? 1}`, o.peak ?? ''].filter(Boolean).join('-');
  const path = join(dir, `${key}.gguf`);
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  makeModel(tmp, o);
  renameSync(tmp, path);
  return path;
}
