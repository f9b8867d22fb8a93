/** The SharedLLM software version, read once from the package.json above this file. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/** package.json's "version" of the sharedllm package; '0.0.0-unknown' when it cannot be found. */
export function softwareVersion(): string {
  if (cached !== undefined) return cached;
  cached = '0.0.0-unknown';
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 8; depth++) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate)) {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'sharedllm-federation' && typeof pkg.version === 'string') {
        cached = pkg.version;
        break;
      }
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return cached;
}
