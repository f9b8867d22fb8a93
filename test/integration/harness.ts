// Integration-test harness: real `sharedllm` processes on loopback, through the cluster launcher that the demo
// and the benchmark use too (src/cli/cluster.ts: temp folder, tracked children, readiness from stderr). This
// file adds what only tests need: node:test hooks that print the stderr of every child when a test fails, the
// test model, a smaller context, and HTTP helpers.
import { type TestContext, after, before, test } from 'node:test';
import { Cluster as ProcessCluster, type ClusterOptions, type PrimaryHandle, type PrimaryOptions, stopChildrenOnSignals } from '../../src/cli/cluster.ts';
import { cachedModel } from '../../src/model/testing/cached-model.ts';
import { SHAPES } from '../../src/model/testing/make-model.ts';
import { pollUntil } from '../../src/util/poll.ts';

export { CLUSTER_DEFAULTS, ROOT, Proc, freePort } from '../../src/cli/cluster.ts';
export type { CoordinatorHandle, Exit, NodeHandle, PrimaryHandle, WorkerHandle } from '../../src/cli/cluster.ts';

// A test process that dies (uncaught error, runner timeout, Ctrl-C) must not leave nodes running.
stopChildrenOnSignals();

/** Context length of test primaries and reference runs: short prompts, and less memory per process. */
const TEST_CTX = 256;

/**
 * The test model: SmolLM2's widths (960, an awkward hidden size for a pipeline), 4 layers, Q8_0, with an
 * untied output head. With SmolLM2's tied embeddings random weights make greedy decoding repeat the input
 * token forever; an untied random head gives a varied greedy text, so a wrong hidden state would show.
 */
export function testModel(): string {
  return cachedModel({ shape: { ...SHAPES.smollm2, tiedEmbeddings: false }, nLayer: 4, type: 'Q8_0', seed: 1 });
}

/** The API's model id for a GGUF path (the file name without .gguf, as `sharedllm node` names it). */
export function modelId(path: string): string {
  return path.split('/').pop()!.replace(/\.gguf$/i, '');
}

/** The launcher's cluster with test hooks: `setup` and `test` print every child's stderr on a failure. */
export class Cluster extends ProcessCluster {
  constructor(options: ClusterOptions = {}) {
    super({ prefix: 'sharedllm-it-', ...options });
  }

  /** A primary with the test context length unless the test asks for another. */
  override primary(name: string, options: PrimaryOptions): Promise<PrimaryHandle> {
    return super.primary(name, { ctxSize: TEST_CTX, ...options });
  }

  /** Greedy text of a single-node run (`sharedllm generate --temp 0`), the reference for pipelines. */
  async referenceText(model: string, prompt: string, nPredict: number): Promise<string> {
    const r = await this.run('generate', ['generate', '--model', model, '--prompt', prompt, '--temp', '0', '-n', String(nPredict), '--threads', '1', '--gpu', 'off', '--ctx-size', String(TEST_CTX)]);
    if (r.code !== 0) throw new Error(`sharedllm generate failed (${r.code ?? r.signal}):\n${r.stderr}`);
    return r.stdout.replace(/\n$/, '');
  }

  /** Register `before(setup)` and `after(close)`; a failing setup prints every child's stderr too. */
  setup(fn: () => Promise<void>, timeoutMs = 240_000): void {
    before(() => this.guard('setup', fn, timeoutMs));
    after(() => this.close());
  }

  /** node:test's `test`, printing every child's stderr when the test fails or runs past `timeoutMs`. */
  test(name: string, fn: (t: TestContext) => Promise<void>, timeoutMs = 120_000): void {
    test(name, (t) => this.guard(name, () => fn(t), timeoutMs));
  }

  private async guard(name: string, fn: () => Promise<void>, timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([fn(), new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${name}: still running after ${timeoutMs} ms`)), timeoutMs)))]);
    } catch (e) {
      process.stderr.write(`\n${name} failed; the processes said:\n${this.dump()}\n`);
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** JSON over HTTP(S) with fetch; throws with the body on a non-2xx answer. */
export async function getJson<T = unknown>(url: string, init?: RequestInit): Promise<T> {
  const r = await fetch(url, init);
  const text = await r.text();
  if (!r.ok) throw new Error(`${init?.method ?? 'GET'} ${url}: HTTP ${r.status}: ${text}`);
  return JSON.parse(text) as T;
}

/** POST /v1/completions, greedy; returns the text. */
export async function complete(apiUrl: string, model: string, prompt: string, maxTokens: number): Promise<string> {
  const r = await getJson<{ choices: { text: string }[] }>(`${apiUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, prompt, max_tokens: maxTokens, temperature: 0 }),
  });
  return r.choices[0]!.text;
}

/**
 * Poll `probe` until it returns a value (not undefined); the readiness signal for state held elsewhere. A
 * throwing probe counts as "not yet" (a restarting coordinator refuses connections), named on timeout.
 */
export function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000, everyMs = 100): Promise<Exclude<T, undefined | null | false>> {
  return pollUntil(what, probe, { timeoutMs, intervalMs: everyMs, retryErrors: true });
}
