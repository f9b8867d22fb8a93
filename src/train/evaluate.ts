// Perplexity of a llama-architecture GGUF on a text: the text is tokenized by llama.cpp's tokenizer for
// that model (BOS first when the model wants it), cut into non-overlapping rows of nCtx tokens, and every
// token after the first is scored once: perplexity = exp(mean of -log p(token | the row so far)).
// The forward pass is the training graph's (forward.ts) over the file's weights as stored.
import { Executor } from '../ggml/executor.ts';
import { Graph, readF32 } from '../ggml/graph.ts';
import { type GgmlOptions, getGgml } from '../ggml/runtime.ts';
import { openModelFile } from '../model/load.ts';
import { Tokenizer } from '../model/tokenizer.ts';
import { evalRows } from './data.ts';
import { TrainError } from './errors.ts';
import { BatchInputs, buildForward, forwardInputs } from './forward.ts';
import { loadGgufWeights, modelConfigOf } from './gguf-model.ts';

export interface EvalOptions extends GgmlOptions {
  /** Tokens per row (default: the model's context, at most 512). */
  nCtx?: number;
  /** Rows per graph run (default: up to 4, fewer for large vocabularies: logits and targets take 8 n_vocab bytes a token). */
  batch?: number;
  onProgress?: (scored: number, total: number) => void;
}

export interface EvalResult {
  perplexity: number;
  /** Mean negative log-likelihood, nats per token. */
  nll: number;
  /** Tokens scored (every token of the text after the first). */
  tokens: number;
}

/** Perplexity of the model in `path` on `text`. */
export async function evaluateFile(path: string, text: string, o: EvalOptions = {}): Promise<EvalResult> {
  const tokenizer = await Tokenizer.load(path);
  let ids: number[];
  try {
    ids = tokenizer.encode(text, { addBos: tokenizer.addBosDefault });
  } finally {
    await tokenizer.dispose();
  }
  if (ids.length < 2) throw new TrainError('text too short to evaluate', 'at least two tokens', `${ids.length}`, 'give a longer --text');
  return evaluateTokens(path, Int32Array.from(ids), o);
}

/** Perplexity of the model in `path` on a token stream. */
export function evaluateTokens(path: string, tokens: Int32Array, o: EvalOptions = {}): EvalResult {
  const ggml = getGgml(o);
  const file = openModelFile(path);
  let weights;
  try {
    const model = modelConfigOf(file, path, o.nCtx ?? 512);
    weights = loadGgufWeights(ggml, file, model);
    const batch = o.batch ?? Math.min(4, Math.max(1, Math.floor(2 ** 25 / (model.nVocab * model.nCtx))));
    const g = new Graph(ggml, 1 << 14);
    const ex = new Executor(ggml, 1 << 14);
    try {
      const io = new BatchInputs(batch, model.nCtx, model.nVocab);
      const w = weights;
      const out = buildForward(g, model, (n) => w.get(n), forwardInputs(g, model, io), batch, model.nCtx);
      g.output(out.loss);
      g.expand(out.loss);
      let nll = 0;
      let count = 0;
      const total = tokens.length - 1;
      for (const { input, target } of evalRows(tokens, model.nCtx, batch)) {
        count += io.fill(input, target);
        ex.run(g);
        nll += readF32(ggml, out.loss, 1)[0]! * io.nTokens; // the loss is the mean over all columns
        o.onProgress?.(count, total);
      }
      return { perplexity: Math.exp(nll / count), nll: nll / count, tokens: count };
    } finally {
      ex.dispose();
      g.dispose();
    }
  } finally {
    weights?.dispose();
    file.dispose();
  }
}
