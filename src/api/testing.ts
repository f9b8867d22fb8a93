/**
 * Test support for the API: a small random-weight model cached on disk (written once, shared by test
 * files and runs), loaded on the CPU, behind a Forward that counts open sequences (to check that a request
 * always frees its sequence), and a server over it on 127.0.0.1 with any free port.
 */
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { silentLogger } from '../util/log.ts';
import { Batcher, type Forward, localForward } from '../model/batcher.ts';
import { Generator } from '../model/generator.ts';
import { loadModelPart } from '../model/load.ts';
import type { ModelPart } from '../model/model-part.ts';
import { type MakeModelOptions, makeModel } from '../model/testing/make-model.ts';
import { Tokenizer } from '../model/tokenizer.ts';
import { type ApiServer, type ApiServerOptions, createApiServer } from './server.ts';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The fast test model of the brief: SmolLM2's widths, 2 layers, Q8_0 (about 60 MB). */
export const TEST_MODEL: MakeModelOptions = { shape: 'smollm2', nLayer: 2, type: 'Q8_0', seed: 1 };

/** Path of a test model under .cache/models/, written on first use (temp name, then rename). */
export function cachedTestModel(options: MakeModelOptions = TEST_MODEL): string {
  const shape = typeof options.shape === 'string' ? options.shape : `${options.shape.arch}-${options.shape.nEmbd}`;
  const key = [shape, `l${options.nLayer}`, options.type, options.embdType ?? '', `s${options.seed ?? 0}`, options.peak ?? ''].filter((p) => p !== '').join('-');
  const dir = join(repoRoot, '.cache', 'models');
  const path = join(dir, `${key}.gguf`);
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  const temp = `${path}.${process.pid}.${Date.now()}.tmp`;
  try {
    makeModel(temp, options);
    renameSync(temp, path);
  } finally {
    rmSync(temp, { force: true });
  }
  return path;
}

/** A Forward that remembers which sequences are open and counts steps. */
export interface CountingForward extends Forward {
  readonly open: ReadonlySet<number>;
  readonly steps: number;
}

export function countingForward(inner: Forward): CountingForward {
  const open = new Set<number>();
  let steps = 0;
  return {
    nVocab: inner.nVocab,
    nCtx: inner.nCtx,
    open,
    get steps() {
      return steps;
    },
    async openSequence() {
      const seq = await inner.openSequence();
      open.add(seq);
      return seq;
    },
    async closeSequence(seq) {
      open.delete(seq);
      await inner.closeSequence(seq);
    },
    step(inputs) {
      steps++;
      return inner.step(inputs);
    },
  };
}

export interface TestModel {
  path: string;
  modelId: string;
  part: ModelPart;
  tokenizer: Tokenizer;
  forward: CountingForward;
  generator: Generator;
  dispose(): Promise<void>;
}

/** Loads the cached test model on the CPU with a small context (256 tokens unless told). */
export async function loadTestModel(nCtx = 256): Promise<TestModel> {
  const path = cachedTestModel();
  const { part } = await loadModelPart(path, { nCtx, gpu: 'off', nSeqMax: 8 });
  const tokenizer = await Tokenizer.load(path);
  const forward = countingForward(localForward(part));
  const generator = new Generator(new Batcher(forward), tokenizer);
  return {
    path,
    modelId: 'test-smollm2',
    part,
    tokenizer,
    forward,
    generator,
    async dispose() {
      await tokenizer.dispose();
      part.dispose();
    },
  };
}

/** A server over a loaded test model, on 127.0.0.1 and any free port. */
export function startTestServer(model: TestModel, options: Partial<ApiServerOptions> = {}): Promise<ApiServer> {
  return createApiServer({
    generator: model.generator,
    tokenizer: model.tokenizer,
    modelId: model.modelId,
    host: '127.0.0.1',
    port: 0,
    logger: silentLogger,
    ...options,
  });
}

/** Polls until `condition` holds (for effects that finish after a response, e.g. a freed sequence). */
export async function eventually(condition: () => boolean, what: string, limitMs = 10_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * The usual fixture of a client test file: the test model, a server over it and an official `openai` client
 * pointed at it, set up before the file's tests (handed to `ready`) and torn down after them.
 *
 *   let client: OpenAI;
 *   openAiFixture((f) => ({ client } = f));
 */
export function openAiFixture(ready: (fixture: { model: TestModel; server: ApiServer; client: OpenAI }) => void, options: Partial<ApiServerOptions> = {}): void {
  let model: TestModel | undefined;
  let server: ApiServer | undefined;
  before(async () => {
    model = await loadTestModel();
    server = await startTestServer(model, options);
    ready({ model, server, client: new OpenAI({ apiKey: 'unused', baseURL: `${server.url}/v1`, maxRetries: 0 }) });
  });
  after(async () => {
    await server?.close();
    await model?.dispose();
  });
}
