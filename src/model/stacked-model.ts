// K models of one shape (same architecture, hyperparameters, tensor types; e.g. specialists fine-tuned from
// one base) loaded as one stacked model: each weight they do not share holds the K models along its last
// dimension, and one ggml graph steps all of them (graphs/stacked.ts), for one or several sequences. A decode
// step can also mix their next-token distributions in the same graph (mixture/mix-graph.ts: softmax per
// model, weighted sum, log), so a mixture of local specialists costs one graph a token, not K graphs and a
// combiner. What every model has byte for byte (a frozen trunk, a shared head) is loaded and read once.
//
// Memory: the shared weights once, the others K times, and per sequence K KV caches.
// Supported: the llama family and qwen2 (phi3's fused qkv would need its own builder).
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { Executor } from '../ggml/executor.ts';
import { Graph, T, readF32 } from '../ggml/graph.ts';
import { type GgmlOptions, type Ggml, getGgml } from '../ggml/runtime.ts';
import type { Tensor } from '../ggml/tensor.ts';
import { WeightSet, type WeightSpec } from '../ggml/weights.ts';
import type { GgufFile } from '../gguf/file.ts';
import { ContextLimitError, ModelError, OutOfMemoryError, SequenceError } from './errors.ts';
import { ropeParams } from './graphs/blocks.ts';
import { buildStacked } from './graphs/stacked.ts';
import { type HParams, kvWidth, readHParams } from './hparams.ts';
import { SequenceCache, cacheBytes } from './kv-cache.ts';
import { fullLayout, openModelFile } from './load.ts';
import { mixGraphBatched } from './mixture/mix-graph.ts';
import { ROPE_FREQS, TOKEN_EMBD, type TensorIndexEntry, partWeights } from './tensors.ts';

/** The models cannot be stacked (different shapes, architecture not supported). Load them separately. */
export class StackError extends ModelError {}

export const STACKED_CONFIG = {
  /** Prompt tokens per graph in a prefill (its logits are n_vocab x tokens x K floats). */
  prefillChunk: 128,
  /** Sequences one decode step takes at most (StackedBatcher). */
  maxSeqs: 32,
} as const;

export interface StackedLoadOptions extends GgmlOptions {
  /** Context per sequence (default min(training context, 4096)). */
  nCtx?: number;
  /** Sequences expected open at once (for the memory check). Default 1. */
  nSeqMax?: number;
}

/** A decode step's mixture: log p(x) for the sampler, and each model's p_m(token) once a token is drawn. */
export interface StackedMix {
  /** log Σ_m w_m p_m(x), n_vocab floats. */
  readonly logits: Float32Array;
  /** p_m(token) for every model of the stack (K numbers). */
  likelihoods(token: number): Float64Array;
}

/** One sequence's token in a decode step; with `weights` (K, summing to 1; 0 leaves a model out) it is mixed too. */
export interface StackedDecodeInput {
  seq: number;
  token: number;
  weights?: Float64Array;
}

/** Per input: every model's next-token logits (K rows of n_vocab), or with weights the mixture. */
export type StackedDecodeResult = { rows: Float32Array[] } | { mix: StackedMix };

export class StackedModel {
  readonly ggml: Ggml;
  readonly h: HParams;
  /** Models in the stack, in the order loaded. */
  readonly k: number;
  readonly files: readonly string[];
  readonly nCtx: number;
  /** What the models share and run once: the embeddings, and then the first `layers` layers. */
  readonly shared: { readonly embeddings: boolean; readonly layers: number };
  /** The weights that differ between the models (stacked, K copies); the others are loaded once. */
  readonly perModel: ReadonlySet<string>;
  private readonly weights: WeightSet;
  private readonly executor: Executor;
  private readonly seqs = new Map<number, SequenceCache>();
  private nextSeq = 1;
  private disposed = false;

  private constructor(ggml: Ggml, h: HParams, files: readonly string[], weights: WeightSet, nCtx: number, shared: { embeddings: boolean; layers: number }, perModel: ReadonlySet<string>) {
    this.perModel = perModel;
    this.shared = { embeddings: shared.embeddings, layers: shared.layers };
    this.ggml = ggml;
    this.h = h;
    this.k = files.length;
    this.files = files;
    this.weights = weights;
    this.nCtx = nCtx;
    this.executor = new Executor(ggml, graphNodes(h.nLayer, STACKED_CONFIG.maxSeqs));
  }

  /** Loads the files as one stack; StackError says why when they cannot be stacked. */
  static async load(paths: readonly string[], opts: StackedLoadOptions = {}): Promise<StackedModel> {
    if (paths.length < 2) throw new StackError('too few models to stack', 'at least 2 files', String(paths.length), 'load a single model with loadModelPart');
    for (const p of paths) if (!existsSync(p)) throw new StackError('model file not found', 'an existing .gguf file', p, 'check the path');
    const files = paths.map((p) => openModelFile(p));
    try {
      const hs = files.map((f, i) => readHParams(f.metadata, paths[i]!));
      const h = hs[0]!;
      if (h.arch === 'phi3') throw new StackError(`cannot stack ${h.arch} models`, 'llama or qwen2', h.arch, 'load them separately (the mixture then steps each model in its own graph)');
      hs.forEach((o, i) => {
        const diff = (Object.keys(h) as (keyof HParams)[]).find((key) => key !== 'name' && o[key] !== h[key]);
        if (diff) throw new StackError(`${paths[i]} differs from ${paths[0]} in ${diff}`, String(h[diff]), String(o[diff]), 'only models of one shape stack (specialists fine-tuned from one base); load the others separately');
      });
      const index = new Map<string, TensorIndexEntry>(files[0]!.tensorInfos.map((t) => [t.name, t]));
      const { specs, missing, sources } = partWeights(h, fullLayout(h), index);
      if (missing.length > 0) throw new StackError('tensors missing from the file', missing.slice(0, 3).join(', '), 'absent', `is ${paths[0]} a complete ${h.arch} GGUF?`);
      const source = (name: string) => sources.get(name) ?? name;
      files.forEach((f, i) => {
        for (const s of specs) {
          const a = index.get(source(s.name))!;
          const b = f.tensorInfos.find((t) => t.name === source(s.name));
          if (!b || b.type !== a.type || b.dims.join('x') !== a.dims.join('x')) {
            throw new StackError(`${paths[i]}: tensor ${source(s.name)} differs from ${paths[0]}`, `type ${a.type}, dims ${a.dims.join('x')}`, b ? `type ${b.type}, dims ${b.dims.join('x')}` : 'absent', 'only models of one shape and quantisation stack; load the others separately');
          }
        }
      });
      const K = paths.length;
      const nCtx = opts.nCtx ?? Math.min(h.nCtxTrain, 4096);
      const ggml = getGgml(opts);
      const shared = sharedTrunk(h, files);
      // A tensor every model has byte-for-byte is loaded once (and read once a step), the others K times.
      const once = (name: string) => name === ROPE_FREQS || shared.identical.has(source(name));
      const stacked: WeightSpec[] = specs.map((s) => (once(s.name) ? s : { ...s, ne: stackDims(s.ne, K, s.name) }));
      const weightBytes = specs.reduce((n, s) => n + index.get(source(s.name))!.byteSize * (once(s.name) ? 1 : K), 0);
      const kvBytes = cacheBytes(kvWidth(h), nCtx * K, h.nLayer) * (opts.nSeqMax ?? 1);
      const { free } = ggml.memory();
      if (weightBytes + kvBytes > free) {
        throw new OutOfMemoryError('the stacked models do not fit in free memory', `${mib(weightBytes + kvBytes)} (weights ${mib(weightBytes)} + KV caches ${mib(kvBytes)})`, `${mib(free)} free`, 'stack fewer models, use a smaller --ctx-size, or load them separately');
      }
      const weights = new WeightSet(ggml, stacked);
      try {
        for (const s of specs) {
          if (s.name === ROPE_FREQS && !shared.ropeFreqs) throw new StackError('rope frequency factors differ', 'the same factors in every model', 'different ones', 'load the models separately');
          if (once(s.name)) {
            weights.upload(s.name, files[0]!.readTensor(source(s.name)));
            continue;
          }
          weights.upload(s.name, Buffer.concat(files.map((f) => f.readTensor(source(s.name))))); // model m's bytes at m * size
          await new Promise((r) => setImmediate(r)); // signals and progress between tensors
        }
      } catch (e) {
        weights.dispose();
        throw e;
      }
      const perModel = new Set(specs.filter((x) => !once(x.name)).map((x) => x.name));
      return new StackedModel(ggml, h, paths, weights, nCtx, shared.embeddings ? shared : { embeddings: false, layers: 0 }, perModel);
    } finally {
      for (const f of files) f.dispose();
    }
  }

  /** Bytes of weights on the backend (the trunk once, the rest K times): what a step reads. */
  get weightBytes(): number {
    return this.weights.bytes;
  }

  get nVocab(): number {
    return this.h.nVocab;
  }

  openSequence(): number {
    const id = this.nextSeq++;
    this.seqs.set(id, new SequenceCache(this.ggml, id, 0, this.h.nLayer, kvWidth(this.h), this.nCtx * this.k));
    return id;
  }

  closeSequence(id: number): void {
    this.seqs.get(id)?.dispose();
    this.seqs.delete(id);
  }

  sequenceLength(id: number): number {
    return this.cache(id).nPast;
  }

  /** Feeds tokens to every model; returns each model's logits after each token: [model][token], n_vocab floats. */
  prefill(seq: number, tokens: Int32Array): Float32Array[][] {
    const out: Float32Array[][] = Array.from({ length: this.k }, () => []);
    for (let first = 0; first < tokens.length; first += STACKED_CONFIG.prefillChunk) {
      const chunk = tokens.subarray(first, first + STACKED_CONFIG.prefillChunk);
      const { g, logits } = this.build([{ seq, tokens: chunk }]);
      const V = this.h.nVocab;
      let all: Float32Array;
      try {
        this.run(g, [{ seq, n: chunk.length }]);
        all = readF32(this.ggml, logits, V * chunk.length * this.k); // model-major: (V, n, K)
      } finally {
        g.dispose();
      }
      for (let m = 0; m < this.k; m++) {
        for (let i = 0; i < chunk.length; i++) out[m]!.push(all.subarray((m * chunk.length + i) * V, (m * chunk.length + i + 1) * V));
      }
    }
    return out;
  }

  /** Feeds one token to every model; returns each model's next-token logits (K rows of n_vocab floats). */
  step(seq: number, token: number): Float32Array[] {
    const r = this.decode([{ seq, token }])[0]!;
    return 'rows' in r ? r.rows : [];
  }

  /** Feeds one token to every model and mixes their next-token distributions with `weights` in the same graph. */
  stepMixed(seq: number, token: number, weights: Float64Array): StackedMix {
    const r = this.decode([{ seq, token, weights }])[0]!;
    if (!('mix' in r)) throw new SequenceError('no mixture', 'weights', 'none', 'this is a bug');
    return r.mix;
  }

  /**
   * One decode step of several sequences (one token each, distinct sequences) in one graph: every model
   * steps every sequence; the sequences given weights also get their mixture, in the same graph.
   */
  decode(inputs: readonly StackedDecodeInput[]): StackedDecodeResult[] {
    const K = this.k;
    const S = inputs.length;
    if (new Set(inputs.map((i) => i.seq)).size !== S) throw new SequenceError('a sequence twice in one step', 'distinct sequences', inputs.map((i) => i.seq).join(', '), 'this is a bug in the caller');
    for (const i of inputs) {
      if (i.weights && i.weights.length !== K) throw new SequenceError('one weight per stacked model', String(K), String(i.weights.length), 'this is a bug in the caller');
    }
    if (S === 0 || S > STACKED_CONFIG.maxSeqs) throw new SequenceError('sequences in one decode step', `1 to ${STACKED_CONFIG.maxSeqs}`, String(S), 'split the batch');
    const { g, logits } = this.build(inputs.map((i) => ({ seq: i.seq, tokens: Int32Array.of(i.token) }))); // logits (V, S, K)
    try {
      return this.decodeIn(g, logits, inputs);
    } finally {
      g.dispose();
    }
  }

  private decodeIn(g: Graph, logits: Tensor, inputs: readonly StackedDecodeInput[]): StackedDecodeResult[] {
    const K = this.k;
    const V = this.h.nVocab;
    const S = inputs.length;
    const mixing = inputs.some((i) => i.weights);
    let mixed: { probs: Tensor; logMixed: Tensor } | undefined;
    if (mixing) {
      const m = new Float32Array(K * S); // (K, 1, S): sequence s's weights
      inputs.forEach((i, s) => i.weights && m.set(Float32Array.from(i.weights), s * K));
      mixed = mixGraphBatched(g, logits, g.input(T.F32, [K, 1, S], m)); // probs (V, S, K), logMixed (V, 1, S)
      for (const t of [mixed.probs, mixed.logMixed]) {
        g.output(t);
        g.expand(t);
      }
    }
    this.run(g, inputs.map((i) => ({ seq: i.seq, n: 1 })));
    // Model k's row for sequence s starts at (k * S + s) * V in (V, S, K).
    const perModel = (t: Tensor, s: number) => Array.from({ length: K }, (_, k) => readF32(this.ggml, t, V, (k * S + s) * V));
    return inputs.map((i, s): StackedDecodeResult => {
      if (!i.weights || !mixed) return { rows: perModel(logits, s) };
      const probs = perModel(mixed.probs, s);
      return {
        mix: {
          logits: readF32(this.ggml, mixed.logMixed, V, s * V),
          likelihoods: (t: number): Float64Array => {
            if (!Number.isInteger(t) || t < 0 || t >= V) throw new SequenceError('token outside the vocabulary', `0 <= token < ${V}`, String(t), 'this is a bug in the caller');
            return Float64Array.from(probs, (p) => p[t]!);
          },
        },
      };
    });
  }

  private build(seqs: readonly { seq: number; tokens: Int32Array }[]): { g: Graph; logits: Tensor } {
    const inputs = seqs.map(({ seq, tokens }) => {
      const cache = this.cache(seq);
      if (tokens.length === 0) throw new SequenceError('empty step', 'at least one token', '0', 'send some text');
      if (cache.nPast + tokens.length > this.nCtx) {
        throw new ContextLimitError('context full', `at most ${this.nCtx} tokens in sequence ${seq}`, `${cache.nPast} + ${tokens.length}`, 'start a new conversation, shorten the prompt, or load with a larger --ctx-size');
      }
      return { cache, tokens, pos0: cache.nPast };
    });
    const g = new Graph(this.ggml, graphNodes(this.h.nLayer, seqs.length));
    try {
      const rope = ropeParams(this.h);
      const ropeFreqs = this.weights.has(ROPE_FREQS) ? this.weights.get(ROPE_FREQS) : null;
      const logits = buildStacked({ g, h: this.h, w: this.weights, k: this.k, nCtx: this.nCtx, seqs: inputs, rope, ropeFreqs, shared: this.shared, perModel: this.perModel });
      g.output(logits);
      g.expand(logits);
      return { g, logits };
    } catch (e) {
      g.dispose();
      throw e;
    }
  }

  private run(g: Graph, advance: readonly { seq: number; n: number }[]): void {
    this.executor.run(g);
    for (const a of advance) this.cache(a.seq).nPast += a.n;
  }

  private cache(id: number): SequenceCache {
    const c = this.seqs.get(id);
    if (!c) throw new SequenceError('unknown sequence', 'an open sequence id', String(id), 'call openSequence first');
    return c;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const s of this.seqs.values()) s.dispose();
    this.seqs.clear();
    this.executor.dispose();
    this.weights.dispose();
  }
}

/**
 * What every file has byte-for-byte the same: each tensor, and from that the trunk: the embeddings and the
 * leading layers (all of a layer's tensors, counted only while every earlier layer is shared too), which run
 * once for all the models. One pass of hashing.
 */
function sharedTrunk(h: HParams, files: readonly GgufFile[]): { embeddings: boolean; layers: number; ropeFreqs: boolean; identical: Set<string> } {
  const same = (name: string): boolean => {
    const digest = (f: GgufFile) => (f.tensorInfos.some((t) => t.name === name) ? createHash('sha256').update(f.readTensor(name)).digest('hex') : 'absent');
    const first = digest(files[0]!);
    return files.slice(1).every((f) => digest(f) === first);
  };
  const identical = new Set(files[0]!.tensorInfos.filter((t) => same(t.name)).map((t) => t.name));
  const embeddings = identical.has(TOKEN_EMBD);
  let layers = 0;
  while (embeddings && layers < h.nLayer && files[0]!.tensorInfos.filter((t) => layerOf(t.name) === layers).every((t) => identical.has(t.name))) layers++;
  return { embeddings, layers, ropeFreqs: same(ROPE_FREQS), identical };
}

/** The layer of a tensor name `blk.N.*`, or Infinity for the others. */
function layerOf(name: string): number {
  const m = /^blk\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : Number.POSITIVE_INFINITY;
}

/** A weight's dims with the models as the last: (a) -> (a, 1, K), (a, b) -> (a, b, K). */
function stackDims(ne: readonly number[], K: number, name: string): number[] {
  if (ne.length === 1) return [ne[0]!, 1, K];
  if (ne.length === 2) return [ne[0]!, ne[1]!, K];
  throw new StackError(`tensor ${name} has ${ne.length} dimensions`, 'at most 2', String(ne.length), 'load the models separately');
}

/** Graph nodes of a step: per layer about 40, and 12 more per sequence (its attention). */
function graphNodes(nLayer: number, nSeqs = 1): number {
  return (48 + 12 * nSeqs) * (nLayer + 1) + 256;
}

function mib(n: number): string {
  return `${(n / (1 << 20)).toFixed(1)} MiB`;
}

