// Reading an existing llama-architecture GGUF for training code: its shape as a ModelConfig, its weights as
// they are (quantised, for evaluation), or dequantised to F32 host arrays (to fine-tune from them).
// Dequantisation runs in ggml (get_rows of every row turns any type into F32).
import { Executor } from '../ggml/executor.ts';
import { Graph, T, readF32 } from '../ggml/graph.ts';
import type { Ggml } from '../ggml/runtime.ts';
import type { Tensor } from '../ggml/tensor.ts';
import { WeightSet, type WeightSpec } from '../ggml/weights.ts';
import type { GgufFile } from '../gguf/file.ts';
import { openModelFile } from '../model/load.ts';
import { readHParams } from '../model/hparams.ts';
import type { ModelConfig } from './config.ts';
import { TrainError } from './errors.ts';
import { OUTPUT, TOKEN_EMBD, type TensorMap, elements, paramSpecs } from './params.ts';

/** The training ModelConfig of a GGUF (nCtx: its context length, capped by `maxCtx`). */
export function modelConfigOf(file: GgufFile, path: string, maxCtx = Infinity): ModelConfig {
  const h = readHParams(file.metadata, path);
  if (h.arch !== 'llama') {
    throw new TrainError('unsupported architecture for training and evaluation', "'llama'", `'${h.arch}'`, 'train and evaluate llama-family GGUFs (TinyLlama, SmolLM2, Llama, SharedLLM models)');
  }
  if (h.headDim * h.nHead !== h.nEmbd || h.nRot !== h.headDim || file.hasTensor('rope_freqs.weight')) {
    throw new TrainError('unsupported attention layout', 'head size n_embd / n_head, RoPE over whole heads, no rope_freqs', `head ${h.headDim}, rope ${h.nRot}`, 'this model needs a graph the trainer does not build');
  }
  return {
    nVocab: h.nVocab, nCtx: Math.min(h.nCtxTrain, maxCtx), nEmbd: h.nEmbd, nLayer: h.nLayer, nHead: h.nHead,
    nHeadKv: h.nHeadKv, nFf: h.nFf, ropeBase: h.ropeFreqBase, rmsEps: h.rmsEps,
  };
}

/** The file tensor each parameter comes from (a tied head reads token_embd). */
function sourceName(file: GgufFile, name: string): string {
  if (name === OUTPUT && !file.hasTensor(OUTPUT)) return TOKEN_EMBD;
  if (!file.hasTensor(name)) throw new TrainError('tensor missing from the model', name, 'absent', 'is this a complete llama GGUF?');
  return name;
}

/** The model's weights in backend buffers, as stored (quantised matrices in the fast matmul layouts). */
export function loadGgufWeights(ggml: Ggml, file: GgufFile, m: ModelConfig): WeightSet {
  const specs: WeightSpec[] = paramSpecs(m).map((s) => {
    const info = file.tensorInfo(sourceName(file, s.name));
    return { name: s.name, type: info.type, ne: info.dims, matmul: s.ne.length === 2 && s.name !== TOKEN_EMBD, cpuOnly: s.name === TOKEN_EMBD };
  });
  const w = new WeightSet(ggml, specs);
  try {
    for (const s of paramSpecs(m)) w.upload(s.name, file.readTensor(sourceName(file, s.name)));
  } catch (e) {
    w.dispose();
    throw e;
  }
  return w;
}

/** Every parameter dequantised to F32 host arrays (fine-tuning starts from these). */
export function loadGgufParams(ggml: Ggml, path: string): { model: ModelConfig; params: TensorMap; file: GgufFile } {
  const file = openModelFile(path);
  const model = modelConfigOf(file, path, 512);
  const out: TensorMap = new Map();
  for (const s of paramSpecs(model)) {
    const info = file.tensorInfo(sourceName(file, s.name));
    const n = elements(s.ne);
    if (elements(info.dims) !== n) throw new TrainError(`tensor ${s.name} has the wrong shape`, s.ne.join('x'), info.dims.join('x'), 'the file is damaged');
    const bytes = file.readTensor(sourceName(file, s.name));
    if (info.type === T.F32) {
      const a = new Float32Array(n);
      new Uint8Array(a.buffer).set(bytes);
      out.set(s.name, a);
    } else {
      out.set(s.name, dequantize(ggml, bytes, info.type, info.dims));
    }
  }
  return { model, params: out, file };
}

/** Any ggml type to F32 through get_rows over all rows. */
export function dequantize(ggml: Ggml, bytes: Uint8Array, type: number, dims: readonly number[]): Float32Array {
  const ne0 = dims[0]!;
  const rows = elements(dims) / ne0;
  const w = new WeightSet(ggml, [{ name: 'src', type, ne: [ne0, rows], matmul: false }]);
  const g = new Graph(ggml, 16);
  const ex = new Executor(ggml, 16);
  try {
    w.upload('src', bytes);
    const ids = g.input(T.I32, [rows], Int32Array.from({ length: rows }, (_, i) => i));
    const out: Tensor = g.getRows(w.get('src'), ids); // (ne0, rows) F32
    g.output(out);
    g.expand(out);
    ex.run(g);
    return readF32(ggml, out, ne0 * rows);
  } finally {
    ex.dispose();
    g.dispose();
    w.dispose();
  }
}
