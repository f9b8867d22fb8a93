// A loaded part of a model: optionally the token embeddings, a contiguous layer span [first, last), and
// optionally the head. A single node holds all three; a pipeline splits them across nodes and passes
// hidden states between parts. Each step runs one ggml graph over a batch of one or more sequences.
import { Executor } from '../ggml/executor.ts';
import { concatTyped } from '../util/typed-arrays.ts';
import { Graph, T, readF32 } from '../ggml/graph.ts';
import type { Ggml } from '../ggml/runtime.ts';
import type { WeightSet } from '../ggml/weights.ts';
import { type Group, type SeqInput, outputRows, positions } from './batch.ts';
import { ContextLimitError, SequenceError } from './errors.ts';
import { type BuildContext, inputLayer, makeMasks, ropeFreqs, ropeParams, rowGroups } from './graphs/blocks.ts';
import { type SpanOutput, buildLlama } from './graphs/llama.ts';
import { buildPhi3 } from './graphs/phi3.ts';
import { type HParams, kvWidth } from './hparams.ts';
import { GainBank } from './gain-bank.ts';
import { SequenceCache } from './kv-cache.ts';
import type { PartLayout } from './tensors.ts';

export interface StepResult {
  /**
   * Per input group: its logits rows, n_vocab floats each ('last': one row; 'all': one per token), or for
   * 'pooled' one row of n_embd floats (the mean of its final normed hidden states).
   */
  logits: Float32Array[][];
  /** Hidden states after the span, n_embd x n_tokens token-major (parts without the head). */
  hidden?: Float32Array;
}

export class ModelPart {
  readonly ggml: Ggml;
  readonly h: HParams;
  readonly layout: PartLayout;
  readonly nCtx: number;
  readonly weights: WeightSet;
  readonly norms: ReadonlyMap<string, Float32Array>;
  private readonly executor: Executor;
  private readonly seqs = new Map<number, SequenceCache>();
  /** Adapted sequences' norm gains, uploaded once per sequence (not per step). */
  private readonly gains: GainBank;
  private nextSeq = 1;
  private disposed = false;

  constructor(ggml: Ggml, h: HParams, layout: PartLayout, weights: WeightSet, norms: ReadonlyMap<string, Float32Array>, nCtx: number) {
    this.ggml = ggml;
    this.h = h;
    this.layout = layout;
    this.weights = weights;
    this.norms = norms;
    this.nCtx = nCtx;
    this.executor = new Executor(ggml, MAX_GRAPH_NODES);
    this.gains = new GainBank(ggml, norms);
  }

  // ---- sequences -----------------------------------------------------------------------------------

  /** Open a sequence (its KV cache for this part's layers); returns its id. */
  openSequence(id?: number): number {
    const sid = id ?? this.nextSeq++;
    if (this.seqs.has(sid)) throw new SequenceError('sequence already open', 'a new id', String(sid), 'close it first or pick another id');
    if (id !== undefined && id >= this.nextSeq) this.nextSeq = id + 1;
    this.seqs.set(sid, new SequenceCache(this.ggml, sid, this.layout.first, this.layout.last, kvWidth(this.h), this.nCtx));
    return sid;
  }

  closeSequence(id: number): void {
    const c = this.seqs.get(id);
    if (c) this.gains.release(c.gainSlot);
    c?.dispose();
    this.seqs.delete(id);
  }

  hasSequence(id: number): boolean {
    return this.seqs.has(id);
  }

  sequenceLength(id: number): number {
    return this.cache(id).nPast;
  }

  truncate(id: number, n: number): void {
    this.cache(id).truncate(n);
  }

  /** Per-sequence norm gains (adapters): tensor name -> gains, or undefined to clear. */
  setNormOverrides(id: number, overrides: ReadonlyMap<string, Float32Array> | undefined): void {
    if (overrides) {
      for (const [name, v] of overrides) {
        const base = this.norms.get(name);
        if (base && base.length !== v.length) throw new SequenceError(`override ${name} has the wrong size`, String(base.length), String(v.length), 'an adapter trained for another model?');
      }
    }
    const c = this.cache(id);
    const used = overrides && [...overrides.keys()].some((name) => this.norms.has(name));
    if (used) {
      c.gainSlot = this.gains.set(c.gainSlot, overrides);
    } else {
      this.gains.release(c.gainSlot);
      c.gainSlot = 0;
    }
    c.normOverrides = overrides;
  }

  get openSequences(): number[] {
    return [...this.seqs.keys()];
  }

  private cache(id: number): SequenceCache {
    const c = this.seqs.get(id);
    if (!c) throw new SequenceError('unknown sequence', 'an open sequence id', String(id), 'call openSequence first');
    return c;
  }

  // ---- one step ------------------------------------------------------------------------------------

  /** Run one step over a batch of sequences; appends to their caches. */
  step(inputs: readonly SeqInput[]): StepResult {
    const { h, layout } = this;
    const groups: Group[] = [];
    let offset = 0;
    for (const inp of inputs) {
      const cache = this.cache(inp.seq);
      const n = inp.tokens ? inp.tokens.length : (inp.hidden?.length ?? 0) / h.nEmbd;
      if (!Number.isInteger(n) || n <= 0) throw new SequenceError('empty or ragged step input', `tokens, or n_embd (${h.nEmbd}) x n floats`, String(inp.tokens?.length ?? inp.hidden?.length ?? 0), 'send at least one token');
      if (cache.nPast + n > this.nCtx) {
        throw new ContextLimitError('context full', `at most ${this.nCtx} tokens in sequence ${inp.seq}`, `${cache.nPast} + ${n}`, 'start a new conversation, shorten the prompt, or load with a larger --ctx-size');
      }
      groups.push({ cache, offset, n, pos0: cache.nPast, logits: layout.head ? (inp.logits ?? 'last') : 'none' });
      offset += n;
    }
    const nTokens = offset;
    const useTokens = layout.embeddings;
    const tokens = useTokens ? concatTyped(Int32Array, inputs.map((i) => i.tokens ?? missingInput('tokens'))) : undefined;
    const hidden = useTokens ? undefined : concatTyped(Float32Array, inputs.map((i) => i.hidden ?? missingInput('hidden')));

    if (inputs.length > MAX_GROUPS) throw new SequenceError('too many sequences in one step', `at most ${MAX_GROUPS}`, String(inputs.length), 'split the batch');
    const g = new Graph(this.ggml, graphSize(layout.last - layout.first, groups.length));
    try {
      const c: BuildContext = {
        g, h, w: this.weights, groups, nTokens,
        pos: g.input(T.I32, [nTokens], positions(groups, nTokens)),
        rope: ropeParams(h), ropeFreqs: ropeFreqs(this.weights), gains: this.gains, gainRows: new Map(),
        masks: layout.last > layout.first ? makeMasks(g, h, groups) : [],
      };
      const inp = inputLayer(c, tokens, hidden);
      const { rows, perGroup } = outputRows(groups);
      const outRows = layout.head && rows.length > 0 ? g.input(T.I32, [rows.length], rows) : null;
      // With a pooled group (embeddings), only the other groups' rows go through the output matrix.
      const pooled = groups.some((gr) => gr.logits === 'pooled');
      const logitIdx = pooled ? logitRowIndices(groups, perGroup) : undefined;
      if (logitIdx !== undefined) c.logitRows = logitIdx.length > 0 ? g.input(T.I32, [logitIdx.length], logitIdx) : null;
      const rg = rowGroups(groups, nTokens);
      const outRg = Int32Array.from(rows, (r) => rg[r]!);
      const build = h.arch === 'phi3' ? buildPhi3 : buildLlama;
      const out: SpanOutput = build(c, inp, layout.first, layout.last, outRows, rg, outRg);
      if (!outRows) {
        g.output(out.hidden);
        g.expand(out.hidden);
      }
      for (const t of [out.logits, pooled ? out.normed : undefined]) {
        if (t === undefined) continue;
        g.output(t);
        g.expand(t);
      }
      this.executor.run(g);
      for (const gr of groups) gr.cache.nPast += gr.n;
      if (!outRows) return { logits: groups.map(() => []), hidden: readF32(this.ggml, out.hidden, h.nEmbd * nTokens) };
      const nLogitRows = logitIdx?.length ?? rows.length;
      const all = out.logits ? readF32(this.ggml, out.logits, h.nVocab * nLogitRows) : new Float32Array(0);
      const normed = pooled && out.normed ? readF32(this.ggml, out.normed, h.nEmbd * rows.length) : undefined;
      const logits: Float32Array[][] = [];
      let r = 0; // row of the head's input
      let l = 0; // row of `all`
      groups.forEach((gr, gi) => {
        const k = perGroup[gi]!;
        if (gr.logits === 'pooled') {
          logits.push([meanRows(normed!, h.nEmbd, r, k)]);
          r += k;
          return;
        }
        const mine: Float32Array[] = [];
        for (let i = 0; i < k; i++, r++, l++) mine.push(all.subarray(l * h.nVocab, (l + 1) * h.nVocab));
        logits.push(mine);
      });
      return { logits };
    } finally {
      g.dispose();
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const s of this.seqs.values()) s.dispose();
    this.seqs.clear();
    this.gains.dispose();
    this.executor.dispose();
    this.weights.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** Sequences one step may batch, and the graph sizes that follow (nodes per layer grow with groups). */
export const MAX_GROUPS = 64;
const MAX_GRAPH_NODES = 1 << 17;
function graphSize(nLayers: number, nGroups: number): number {
  return Math.min(MAX_GRAPH_NODES, Math.max(1024, (40 + 16 * nGroups) * (nLayers + 1) + 512));
}

/** Indices, among the head's rows, of the rows of groups that want logits (not pooled). */
function logitRowIndices(groups: readonly Group[], perGroup: readonly number[]): Int32Array {
  const idx: number[] = [];
  let r = 0;
  groups.forEach((gr, gi) => {
    const k = perGroup[gi]!;
    if (gr.logits !== 'pooled') for (let i = 0; i < k; i++) idx.push(r + i);
    r += k;
  });
  return Int32Array.from(idx);
}

/** The mean of `count` rows of `width` floats starting at row `first` (accumulated in float64). */
function meanRows(data: Float32Array, width: number, first: number, count: number): Float32Array {
  const sum = new Float64Array(width);
  for (let r = first; r < first + count; r++) {
    const row = data.subarray(r * width, (r + 1) * width);
    for (let i = 0; i < width; i++) sum[i]! += row[i]!;
  }
  return Float32Array.from(sum, (v) => v / count);
}

function missingInput(what: string): never {
  throw new SequenceError('step input missing', what, 'nothing', 'a part with the embeddings takes tokens; other parts take hidden states');
}
