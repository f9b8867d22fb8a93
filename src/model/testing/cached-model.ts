// Test models are written once per machine and reused: .cache/test-models/<options>.gguf.
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type MakeModelOptions, makeModel } from './make-model.ts';

const dir = join(resolve(dirname(fileURLToPath(import.meta.url)), '../../..'), '.cache', 'test-models');

/** Path of a test model with these options, writing it on first use (safe with parallel test files). */
export function cachedModel(o: MakeModelOptions): string {
  const shape = typeof o.shape === 'string' ? o.shape : `${o.shape.arch}-${o.shape.nEmbd}`;
  const key = [shape, `L${o.nLayer}`, o.type, o.embdType ?? '', `s${o.seed ?? 1}`, o.peak ?? ''].filter(Boolean).join('-');
  const path = join(dir, `${key}.gguf`);
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  makeModel(tmp, o);
  renameSync(tmp, path);
  return path;
}
