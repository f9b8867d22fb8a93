// A file's content hash (sha256 of the whole file), as manifests, span requests and adapters name a model.
// Hashing a multi-GB file takes seconds, so results are cached by (path, size, mtime).
import { createHash } from 'node:crypto';
import { mkdirSync, openSync, readFileSync, readSync, closeSync, statSync, writeFileSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

export function defaultCacheDir(): string {
  return process.env.SHAREDLLM_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'sharedllm');
}

export function hashFile(path: string, cacheDir = defaultCacheDir(), onProgress?: (done: number, total: number) => void): string {
  const abs = resolve(path);
  const st = statSync(abs);
  const key = `${abs}:${st.size}:${Math.floor(st.mtimeMs)}`;
  const indexPath = join(cacheDir, 'hashes.json');
  let index: Record<string, string> = {};
  try {
    index = JSON.parse(readFileSync(indexPath, 'utf8')) as Record<string, string>;
  } catch {
    // no cache yet
  }
  const hit = index[key];
  if (hit) return hit;
  const h = createHash('sha256');
  const fd = openSync(abs, 'r');
  const buf = Buffer.allocUnsafe(8 << 20);
  let done = 0;
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, done);
      if (n <= 0) break;
      h.update(buf.subarray(0, n));
      done += n;
      onProgress?.(done, st.size);
    }
  } finally {
    closeSync(fd);
  }
  const digest = h.digest('hex');
  index[key] = digest;
  try {
    mkdirSync(dirname(indexPath), { recursive: true });
    const tmp = `${indexPath}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(index));
    renameSync(tmp, indexPath);
  } catch {
    // a read-only cache only costs time
  }
  return digest;
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
