// A training run end to end: set up (run-setup.ts), train for the remaining steps with periodic held-out
// evaluation and checkpoints, then a final checkpoint, the full held-out perplexity next to a unigram
// baseline, and the exported GGUF. Outputs are written to temp names and renamed when complete.
import { writeFileSync, renameSync } from 'node:fs';
import { type GgmlOptions, getGgml } from '../ggml/runtime.ts';
import { str } from '../gguf/value.ts';
import { saveCheckpoint } from './checkpoint.ts';
import { type ModelConfig, type OptimConfig, paramCount, trainFlopsPerToken } from './config.ts';
import { unigramPerplexity } from './data.ts';
import { TrainError } from './errors.ts';
import { exportGguf } from './export.ts';
import { partialTarget } from './partial.ts';
import { type RunSetup, type TrainRunOptions, setupRun } from './run-setup.ts';
import { tokenizerGgufMetadata } from './tokenizer-gguf.ts';
import { type StepStats, Trainer } from './trainer.ts';

export type { TrainRunOptions } from './run-setup.ts';

export interface StepReport extends StepStats {
  totalSteps: number;
  /** Training tokens per second since this run (or resume) started. */
  tokensPerSecond: number;
  etaSeconds: number;
}

export interface RunEvents {
  /** A phase of setup or wrap-up starts ("training the tokenizer", "exporting"...). */
  phase?: (what: string) => void;
  step?: (r: StepReport) => void;
  /** A periodic held-out evaluation. */
  eval?: (step: number, heldOutLoss: number, heldOutPerplexity: number) => void;
  checkpoint?: (step: number, path: string) => void;
}

export interface TrainRunResult {
  model: ModelConfig;
  optim: OptimConfig;
  params: number;
  /** Steps done in total (resumed runs included) and in this process. */
  steps: number;
  stepsThisRun: number;
  tokensThisRun: number;
  /** Seconds spent in training steps in this process (setup, evaluation and export excluded). */
  trainSeconds: number;
  tokensPerSecond: number;
  /** Achieved training FLOP/s; NaN for a partial fine-tune (its backward stops at the frozen part: not counted). */
  flopsPerSecond: number;
  firstLoss: number;
  finalLoss: number;
  heldOutTokens: number;
  heldOutPerplexity: number;
  unigramPerplexity: number;
  out: string;
  checkpoint: string;
}

export async function runTraining(o: TrainRunOptions & GgmlOptions, ev: RunEvents = {}): Promise<TrainRunResult> {
  const ggml = getGgml(o);
  const phase = ev.phase ?? (() => {});
  const s = setupRun(ggml, o, phase);
  if (o.own && o.own.layers > s.model.nLayer) throw new TrainError('--own-layers above the model\'s layers', `at most ${s.model.nLayer}`, String(o.own.layers), 'own fewer layers (or fine-tune all of it without --own-layers)');
  // A partial fine-tune trains the owned tensors over the frozen rest; it writes no checkpoint (its state is
  // the owned part only): rerun it to repeat it.
  const partial = o.own ? partialTarget(ggml, s.model, s.params, o.own) : undefined;
  const trainer = new Trainer(ggml, s.model, s.optim, s.params, partial);
  try {
    if (s.resumeFrom) trainer.setState({ step: s.resumeFrom.step, params: s.resumeFrom.params, moments: s.resumeFrom.moments });
    const startStep = trainer.step;
    const tokensPerStep = s.optim.batch * s.model.nCtx;
    let trainMs = 0;
    let firstLoss = Number.NaN;
    let lastLoss = Number.NaN;
    const trained = partial ? partial.specs.reduce((n, x) => n + x.ne.reduce((a, b) => a * b, 1), 0) : paramCount(s.model);
    phase(`training ${trained.toLocaleString('en-US')} parameters${partial ? ` (the last ${o.own!.layers} layer(s)${o.own!.head ? ' and the head' : ''}; the rest frozen, no checkpoints)` : ''}, steps ${startStep + 1}..${s.optim.steps}`);
    while (trainer.step < s.optim.steps) {
      const batch = s.cursor.next();
      const t0 = performance.now();
      const stats = trainer.trainStep(batch.input, batch.target);
      trainMs += performance.now() - t0;
      if (Number.isNaN(firstLoss)) firstLoss = stats.loss;
      lastLoss = stats.loss;
      const done = trainer.step - startStep;
      const tokensPerSecond = (done * tokensPerStep) / (trainMs / 1000);
      ev.step?.({ ...stats, totalSteps: s.optim.steps, tokensPerSecond, etaSeconds: (s.optim.steps - trainer.step) * (trainMs / 1000 / done) });
      const last = trainer.step === s.optim.steps;
      if (o.evalEvery > 0 && trainer.step % o.evalEvery === 0 && !last) {
        const e = heldOutLoss(trainer, s, o.evalTokens);
        ev.eval?.(trainer.step, e, Math.exp(e));
      }
      if (!partial && ((o.checkpointEvery > 0 && trainer.step % o.checkpointEvery === 0) || last)) {
        save(trainer, s);
        ev.checkpoint?.(trainer.step, s.checkpointPath);
      }
      // Let signals and output through between steps.
      await new Promise((r) => setImmediate(r));
    }

    phase('evaluating on the held-out text');
    const finalNll = heldOutLoss(trainer, s, Infinity);
    const unigram = unigramPerplexity(s.data.train, s.data.heldOut, s.model.nVocab);
    phase(`exporting ${o.type} to ${o.out}`);
    exportGguf(o.out, {
      model: s.model,
      // A partial fine-tune: the frozen rest as it came (exported the same way by every specialist of the base).
      params: partial ? new Map([...s.params, ...trainer.params.getParams()]) : trainer.params.getParams(),
      tokenizer: tokenizerGgufMetadata(s.data.tokenizer),
      type: o.type,
      name: s.preset ? `sharedllm-${s.preset}` : 'sharedllm-finetune',
      extra: new Map([['sharedllm.training', str(JSON.stringify({ steps: trainer.step, seed: s.optim.seed, corpus: s.data.fingerprint, optim: s.optim, ...(o.own ? { own: o.own } : {}) }))]]),
    });
    if (o.heldOutText) writeAtomic(o.heldOutText, s.data.heldOutText);
    const tokensThisRun = (trainer.step - startStep) * tokensPerStep;
    const tokensPerSecond = trainMs > 0 ? tokensThisRun / (trainMs / 1000) : 0;
    return {
      model: s.model,
      optim: s.optim,
      params: paramCount(s.model),
      steps: trainer.step,
      stepsThisRun: trainer.step - startStep,
      tokensThisRun,
      trainSeconds: trainMs / 1000,
      tokensPerSecond,
      flopsPerSecond: partial ? Number.NaN : tokensPerSecond * trainFlopsPerToken(s.model),
      firstLoss,
      finalLoss: lastLoss,
      heldOutTokens: s.data.heldOut.length - 1,
      heldOutPerplexity: Math.exp(finalNll),
      unigramPerplexity: unigram,
      out: o.out,
      checkpoint: partial ? '' : s.checkpointPath,
    };
  } finally {
    trainer.dispose();
  }
}

/** Mean NLL (nats per token) on the first `maxTokens` held-out tokens. */
function heldOutLoss(trainer: Trainer, s: RunSetup, maxTokens: number): number {
  const tokens = Number.isFinite(maxTokens) ? s.data.heldOut.subarray(0, Math.min(s.data.heldOut.length, maxTokens + 1)) : s.data.heldOut;
  return trainer.evalTokens(tokens, s.optim.batch).nll;
}

function save(trainer: Trainer, s: RunSetup): void {
  const st = trainer.getState();
  saveCheckpoint(s.checkpointPath, {
    model: s.model,
    optim: s.optim,
    step: st.step,
    corpus: { fingerprint: s.data.fingerprint, heldOutFraction: s.heldOutFraction, splitSeed: s.splitSeed, preset: s.preset },
    tokenizer: s.data.tokenizer,
    params: st.params,
    moments: st.moments,
  });
}

function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}
