/**
 * An in-memory AdapterEngine for the routes' tests: training takes a few event-loop turns per step (or
 * waits on a gate), the adapter file is a small header naming the base plus bytes derived from the text,
 * and serving applies it as gains of 1 + (a byte of it) / 1000 on the output norm (n_embd from the test model). The real engine (engine-train.ts) runs in the integration
 * test.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { AdapterBaseMismatch, type AdapterEngine, type AdapterOptions, type TrainJob } from './engine.ts';
import type { AdapterKind } from './store.ts';

export const FAKE_BASE = `sha256:${'ab'.repeat(32)}`;
const MAGIC = 'FAKEADAPTER1';

export interface FakeEngine extends AdapterEngine {
  /** Jobs started so far. */
  readonly trained: TrainJob[];
  /** While set, training waits at its first step until release() is called. */
  hold(): void;
  release(): void;
  /** Paths exports were written to. */
  readonly exported: string[];
}

export function fakeEngine(options: { baseHash?: string; minTextTokens?: number; nEmbd?: number } = {}): FakeEngine {
  const baseHash = options.baseHash ?? FAKE_BASE;
  // The test model's width (SmolLM2's).
  const nEmbd = options.nEmbd ?? 960;
  const trained: TrainJob[] = [];
  const exported: string[] = [];
  let gate: { promise: Promise<void>; open: () => void } | undefined;
  return {
    baseHash,
    minTextTokens: options.minTextTokens ?? 8,
    trained,
    exported,
    hold() {
      let open = () => {};
      const promise = new Promise<void>((resolve) => (open = resolve));
      gate = { promise, open };
    },
    release() {
      gate?.open();
      gate = undefined;
    },
    countTokens: (text) => text.split(/\s+/).filter((w) => w !== '').length,
    async train(job, outPath) {
      trained.push(job);
      for (let step = 1; step <= job.steps; step++) {
        if (gate !== undefined) await Promise.race([gate.promise, new Promise((resolve) => job.signal.addEventListener('abort', resolve, { once: true }))]);
        await new Promise((resolve) => setImmediate(resolve));
        if (job.signal.aborted) throw job.signal.reason;
        job.onProgress(step, job.steps, 3 - step / job.steps);
      }
      writeFileSync(outPath, fakeAdapterBytes(baseHash, job.text, job.kind));
      return { loss: 2 };
    },
    load(path): AdapterOptions | undefined {
      const { base, kind, body } = parseFake(path);
      if (base !== baseHash) throw new AdapterBaseMismatch(baseHash, base);
      if (kind !== 'norm') return undefined;
      return { normOverrides: new Map([['output_norm.weight', new Float32Array(nEmbd).fill(1 + body[0]! / 1000)]]) };
    },
    async exportMerged(adapterPath, outPath) {
      const { base } = parseFake(adapterPath);
      if (base !== baseHash) throw new AdapterBaseMismatch(baseHash, base);
      exported.push(outPath);
      writeFileSync(outPath, Buffer.concat([Buffer.from('MERGED'), readFileSync(adapterPath)]));
    },
    async exportLora(adapterPath, outPath) {
      exported.push(outPath);
      writeFileSync(outPath, Buffer.concat([Buffer.from('LORA'), readFileSync(adapterPath)]));
    },
  };
}

/** A fake adapter file: magic, the base hash and the kind on a line each, then 64 bytes derived from the text. */
export function fakeAdapterBytes(baseHash: string, text: string, kind: AdapterKind = 'norm'): Buffer {
  const body = createHash('sha512').update(`adapter:${text}`).digest();
  return Buffer.concat([Buffer.from(`${MAGIC}\n${baseHash}\n${kind}\n`), body]);
}

function parseFake(path: string): { base: string; kind: string; body: Buffer } {
  const bytes = readFileSync(path);
  const lines: string[] = [];
  let at = 0;
  for (let i = 0; i < 3; i++) {
    const end = bytes.indexOf(0x0a, at);
    if (end < 0) throw new Error(`${path} is not a fake adapter`);
    lines.push(bytes.subarray(at, end).toString('latin1'));
    at = end + 1;
  }
  if (lines[0] !== MAGIC) throw new Error(`${path} is not a fake adapter`);
  return { base: lines[1]!, kind: lines[2]!, body: bytes.subarray(at) };
}
