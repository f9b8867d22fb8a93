/**
 * Where a primary keeps each adapter's files, and how they are written and deleted:
 *
 *   <data-dir>/adapters/<adapter id>/text.txt      the training text, 0600, until training ends (kept
 *                                                   after only when the user's consent says so)
 *   <data-dir>/adapters/<adapter id>/adapter.gguf  the trained adapter
 *   <data-dir>/adapters/<adapter id>/exports/      derived files while an export is being sent
 *
 * Writes go to a temp name in the same folder and are renamed into place, so a file is whole or absent
 * (a restart mid-write leaves only a temp file, removed on start). Deleting overwrites a file with zeros
 * before unlinking it (cheap at these sizes; it keeps the bytes out of a later scan of the disk blocks
 * that the filesystem reuses) and removes the whole folder.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** Size of the zero block written over a file before it is unlinked. */
const WIPE_CHUNK_BYTES = 1 << 20;

export class AdapterFiles {
  readonly root: string;

  constructor(dataDir: string) {
    this.root = join(dataDir, 'adapters');
    mkdirSync(this.root, { recursive: true, mode: 0o700 });
  }

  dir(id: string): string {
    if (!/^adapter_[0-9a-f]+$/.test(id)) throw new Error(`not an adapter id: '${id}'`);
    return join(this.root, id);
  }

  textPath(id: string): string {
    return join(this.dir(id), 'text.txt');
  }

  adapterPath(id: string): string {
    return join(this.dir(id), 'adapter.gguf');
  }

  /** A fresh path under the adapter's exports folder (the caller deletes it once sent). */
  exportPath(id: string, extension: string): string {
    const dir = join(this.dir(id), 'exports');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return join(dir, `${randomBytes(8).toString('hex')}${extension}`);
  }

  /** A temp path beside `path` for a write that is renamed into place (commit). */
  tempFor(path: string): string {
    return `${path}.${randomBytes(6).toString('hex')}.tmp`;
  }

  commit(temp: string, path: string): void {
    renameSync(temp, path);
  }

  /** Writes the training text (0600) whole or not at all. */
  writeText(id: string, text: string): void {
    mkdirSync(this.dir(id), { recursive: true, mode: 0o700 });
    const path = this.textPath(id);
    const temp = this.tempFor(path);
    const fd = openSync(temp, 'w', 0o600);
    try {
      writeFileSync(fd, text, 'utf8');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.commit(temp, path);
  }

  hasText(id: string): boolean {
    return existsSync(this.textPath(id));
  }

  hasAdapter(id: string): boolean {
    return existsSync(this.adapterPath(id));
  }

  /** Deletes the training text (zeroed first). */
  deleteText(id: string): void {
    wipe(this.textPath(id));
  }

  /** Deletes everything of the adapter: text, adapter file, exports, temp files. */
  deleteAll(id: string): void {
    const dir = this.dir(id);
    if (!existsSync(dir)) return;
    wipeTree(dir);
    rmSync(dir, { recursive: true, force: true });
  }

  /** Temp files a restart left behind (a write that never reached its rename), and stale exports. */
  removeLeftovers(): void {
    for (const id of readdirSync(this.root)) {
      const dir = join(this.root, id);
      if (!statSync(dir).isDirectory()) continue;
      for (const name of readdirSync(dir)) if (name.endsWith('.tmp')) wipe(join(dir, name));
      const exports = join(dir, 'exports');
      if (existsSync(exports)) {
        wipeTree(exports);
        rmSync(exports, { recursive: true, force: true });
      }
    }
  }

  /** Ids with a folder here (to find folders whose row is gone). */
  ids(): string[] {
    return readdirSync(this.root).filter((name) => /^adapter_[0-9a-f]+$/.test(name));
  }
}

/** Overwrites a file with zeros, then unlinks it; a missing file is fine. */
export function wipe(path: string): void {
  if (!existsSync(path)) return;
  const size = statSync(path).size;
  const fd = openSync(path, 'r+');
  try {
    const zeros = Buffer.alloc(Math.min(size, WIPE_CHUNK_BYTES));
    for (let at = 0; at < size; at += zeros.length) writeSync(fd, zeros, 0, Math.min(zeros.length, size - at), at);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  rmSync(path, { force: true });
}

function wipeTree(dir: string): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) wipeTree(path);
    else wipe(path);
  }
}
