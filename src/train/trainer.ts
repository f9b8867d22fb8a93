// One model being trained on ggml: its parameters and AdamW moments in a backend buffer, and two graphs
// built once and re-run with new inputs:
//
//   train  forward -> cross-entropy loss -> ggml's backward -> global gradient norm -> clip -> AdamW step
//   eval   forward -> loss (and logits), no gradients
//
// Everything numeric happens inside ggml; JS fills the token ids and one-hot targets, the 7 AdamW floats
// (learning rate from the schedule, bias corrections from the step), and reads back two scalars.
import { Executor } from '../ggml/executor.ts';
import { GgmlComputeError } from '../ggml/errors.ts';
import { Graph, T, readF32 } from '../ggml/graph.ts';
import { ADAMW_PARAM_COUNT, adamwParams, adamwStep, buildBackward, gradOf, setLoss } from '../ggml/opt.ts';
import type { Ggml } from '../ggml/runtime.ts';
import type { Tensor } from '../ggml/tensor.ts';
import { type ModelConfig, type OptimConfig, validateModelConfig } from './config.ts';
import { evalRows } from './data.ts';
import { TrainError, TrainMemoryError } from './errors.ts';
import { BatchInputs, type ForwardOutput, type MatmulHook, type WeightLookup, buildForward, forwardInputs } from './forward.ts';
import { type ParamSpec, ParamStore, type TensorMap } from './params.ts';
import { learningRate } from './schedule.ts';

export interface StepStats {
  /** Optimiser steps done after this one. */
  step: number;
  /** Mean cross-entropy of the batch (nats per token), before the update. */
  loss: number;
  /** Global L2 norm of the gradient, before clipping. */
  gradNorm: number;
  lr: number;
}

export interface TrainerState {
  step: number;
  params: TensorMap;
  /** adam.m.<name>, adam.v.<name>. */
  moments: TensorMap;
}

/**
 * What a trainer trains when it is not the whole model (an adapter): a few tensors, trainable, and how the
 * forward graph reads its weights and computes its matmuls given them (the rest is a frozen base).
 */
export interface TrainTarget {
  specs: ParamSpec[];
  /** The weight of every model tensor name; `param` gives the trainable tensors. */
  weights: (param: (name: string) => Tensor) => WeightLookup;
  /** Matmuls that also read trainable tensors (LoRA). */
  matmul?: (param: (name: string) => Tensor) => MatmulHook;
  /** Frees what the target alone holds (its frozen weights), with the trainer. */
  dispose?: () => void;
}

const MAX_NODES = 1 << 15;

interface BuiltGraph {
  g: Graph;
  ex: Executor;
  io: BatchInputs;
  out: ForwardOutput;
}

export class Trainer {
  readonly ggml: Ggml;
  readonly model: ModelConfig;
  readonly optim: OptimConfig;
  readonly params: ParamStore;
  /** Optimiser steps done so far. */
  step = 0;
  private readonly train: BuiltGraph & { gradNorm: Tensor; hyperDecay: Float32Array; hyperNoDecay: Float32Array };
  private evalGraph: BuiltGraph | undefined;
  private readonly target: TrainTarget | undefined;
  private disposed = false;

  /** `target`: train only these tensors over a frozen base (adapters); default every parameter. */
  constructor(ggml: Ggml, model: ModelConfig, optim: OptimConfig, init: TensorMap, target?: TrainTarget) {
    validateModelConfig(model);
    this.ggml = ggml;
    this.model = model;
    this.optim = optim;
    this.target = target;
    this.params = new ParamStore(ggml, model, target?.specs);
    try {
      this.params.setParams(init);
      this.train = this.buildTrainGraph();
    } catch (e) {
      this.params.dispose();
      throw e;
    }
  }

  private buildTrainGraph(): Trainer['train'] {
    const { ggml, model: m, optim: o, params: P } = this;
    const g = new Graph(ggml, MAX_NODES, true);
    const io = new BatchInputs(o.batch, m.nCtx, m.nVocab);
    const out = this.forward(g, io);
    setLoss(ggml, out.loss);
    g.expand(out.loss);
    buildBackward(g, out.loss, P.lossGrad);

    // Global gradient norm over every parameter, then the clip factor clip / max(norm, clip) <= 1.
    const grads = P.specs.map((s) => {
      const grad = gradOf(g, P.param(s.name));
      if (!grad) throw new TrainError(`no gradient for ${s.name}`, 'every parameter used by the loss', 'unused parameter', 'this is a bug in the graph builder');
      return grad;
    });
    let sumSq: Tensor | undefined;
    for (const grad of grads) {
      const s = g.sum(g.sqr(grad)); // (1)
      sumSq = sumSq ? g.add(sumSq, s) : s;
    }
    const gradNorm = g.output(g.sqrt(sumSq!)); // (1)
    g.expand(gradNorm);
    let factor: Tensor | undefined;
    if (o.clip > 0) {
      const clip = g.input(T.F32, [1], new Float32Array([o.clip]), 'clip');
      factor = g.div(clip, g.clamp(gradNorm, o.clip, 3e38)); // (1)
    }

    // AdamW: matrices with weight decay, norm gains without (two 7-float hyper-parameter inputs).
    const hyperDecay = new Float32Array(ADAMW_PARAM_COUNT);
    const hyperNoDecay = new Float32Array(ADAMW_PARAM_COUNT);
    const hDecay = g.input(T.F32, [ADAMW_PARAM_COUNT], hyperDecay, 'adamw_decay');
    const hNoDecay = g.input(T.F32, [ADAMW_PARAM_COUNT], hyperNoDecay, 'adamw_no_decay');
    P.specs.forEach((s, i) => {
      const grad = factor ? g.mul(grads[i]!, factor) : grads[i]!;
      g.expand(adamwStep(g, P.param(s.name), grad, P.m(s.name), P.v(s.name), s.decay ? hDecay : hNoDecay));
    });
    return { g, ex: new Executor(ggml, MAX_NODES), io, out, gradNorm, hyperDecay, hyperNoDecay };
  }

  private forward(g: Graph, io: BatchInputs): ForwardOutput {
    const { model: m, params: P, target } = this;
    const param = (n: string) => P.param(n);
    const w = target ? target.weights(param) : param;
    return buildForward(g, m, w, forwardInputs(g, m, io), io.nRows, m.nCtx, target?.matmul?.(param));
  }

  private buildEvalGraph(): BuiltGraph {
    const { ggml, model: m, optim: o } = this;
    const g = new Graph(ggml, MAX_NODES, false);
    const io = new BatchInputs(o.batch, m.nCtx, m.nVocab);
    const out = this.forward(g, io);
    g.output(out.logits);
    g.output(out.loss);
    g.expand(out.logits);
    g.expand(out.loss);
    return { g, ex: new Executor(ggml, MAX_NODES), io, out };
  }

  /** One optimiser step on a batch: input and target hold batch * nCtx token ids, row-major. */
  trainStep(input: ArrayLike<number>, target: ArrayLike<number>): StepStats {
    const t = this.train;
    const need = this.optim.batch * this.model.nCtx;
    if (input.length !== need || target.length !== need) {
      throw new TrainError('wrong batch size', `${need} inputs and targets`, `${input.length} and ${target.length}`, 'use the batcher of this trainer\'s shape');
    }
    t.io.fill(input, target);
    const lr = learningRate(this.step, this.optim);
    const hyper = { lr, beta1: this.optim.beta1, beta2: this.optim.beta2, eps: this.optim.eps };
    t.hyperDecay.set(adamwParams({ ...hyper, weightDecay: this.optim.weightDecay }, this.step + 1));
    t.hyperNoDecay.set(adamwParams({ ...hyper, weightDecay: 0 }, this.step + 1));
    run(t.ex, t.g);
    const loss = readF32(this.ggml, t.out.loss, 1)[0]!;
    const gradNorm = readF32(this.ggml, t.gradNorm, 1)[0]!;
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      throw new TrainError('training diverged', 'a finite loss and gradient', `loss ${loss}, gradient norm ${gradNorm} at step ${this.step + 1}`, 'lower the learning rate (--lr) or resume from an earlier checkpoint');
    }
    this.step++;
    return { step: this.step, loss, gradNorm, lr };
  }

  /**
   * Sum of -log p(target) over up to batch * nCtx tokens (rows of nCtx; shorter input is padded and the
   * padding does not count), and how many targets were scored.
   */
  evalBatch(input: ArrayLike<number>, target: ArrayLike<number>): { nll: number; count: number } {
    const e = (this.evalGraph ??= this.buildEvalGraph());
    const count = e.io.fill(input, target);
    run(e.ex, e.g);
    const meanOverColumns = readF32(this.ggml, e.out.loss, 1)[0]!;
    return { nll: meanOverColumns * e.io.nTokens, count };
  }

  /**
   * Mean -log p(next token) over a token stream (held-out text), scored in rows of nCtx, `rows` rows a batch
   * (at most this trainer's batch); and how many tokens were scored.
   */
  evalTokens(tokens: Int32Array, rows = this.optim.batch): { nll: number; count: number } {
    let nll = 0;
    let count = 0;
    for (const { input, target } of evalRows(tokens, this.model.nCtx, rows)) {
      const r = this.evalBatch(input, target);
      nll += r.nll;
      count += r.count;
    }
    return { nll: nll / Math.max(1, count), count };
  }

  /** Logits (n_vocab each) after each token of one row of at most nCtx tokens, from the eval graph. */
  logits(tokens: ArrayLike<number>): Float32Array[] {
    if (tokens.length > this.model.nCtx) {
      throw new TrainError('row longer than the context', `at most ${this.model.nCtx} tokens`, String(tokens.length), 'split the text');
    }
    const e = (this.evalGraph ??= this.buildEvalGraph());
    e.io.fill(tokens, []);
    run(e.ex, e.g);
    const V = this.model.nVocab;
    const all = readF32(this.ggml, e.out.logits, V * tokens.length);
    return Array.from({ length: tokens.length }, (_, i) => all.subarray(i * V, (i + 1) * V));
  }

  getState(): TrainerState {
    return { step: this.step, params: this.params.getParams(), moments: this.params.getMoments() };
  }

  setState(s: TrainerState): void {
    this.params.setParams(s.params);
    this.params.setMoments(s.moments);
    this.step = s.step;
  }

  /** Bytes of the compute buffers of the graphs run so far (after the first step). */
  computeBytes(): number {
    return this.train.ex.computeBufferBytes() + (this.evalGraph?.ex.computeBufferBytes() ?? 0);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const b of [this.train, this.evalGraph]) {
      b?.ex.dispose();
      b?.g.dispose();
    }
    this.params.dispose();
    this.target?.dispose?.();
  }
}

function run(ex: Executor, g: Graph): void {
  try {
    ex.run(g);
  } catch (e) {
    if (e instanceof GgmlComputeError && /allocate/.test(e.message)) {
      throw new TrainMemoryError('not enough memory for the training graph', 'compute buffers', 'allocation failed', 'use a smaller --batch or preset');
    }
    throw e;
  }
}
