// Export a trained model as a GGUF that llama.cpp (and our engine) loads: general.architecture "llama",
// the hyper-parameters under llama.*, the tokenizer (tokenizer.* metadata, ChatML template), and the
// tensors in GGUF names, matrices as F32, F16 or Q8_0 (ggml's own quantizer), norm gains always F32.
import { getGgml } from '../ggml/runtime.ts';
import { GGML_TYPE, tensorByteSize } from '../gguf/types.ts';
import { f32, str, u32, type GgufValue } from '../gguf/value.ts';
import { writeGguf } from '../gguf/writer.ts';
import { type ModelConfig, headDim } from './config.ts';
import { TrainError } from './errors.ts';
import { type TensorMap, paramSpecs } from './params.ts';
import type { TokenizerGgufMetadata } from './tokenizer-gguf.ts';

export const EXPORT_TYPES = ['F32', 'F16', 'Q8_0'] as const;
export type ExportType = (typeof EXPORT_TYPES)[number];

/** llama_ftype of a file whose matrices are all of one type (general.file_type). */
const FILE_TYPE: Record<ExportType, number> = { F32: 0, F16: 1, Q8_0: 7 };

export interface ExportOptions {
  model: ModelConfig;
  params: TensorMap;
  tokenizer: TokenizerGgufMetadata;
  type: ExportType;
  name?: string;
  /** Extra general.* / sharedllm.* metadata (e.g. the training recipe). */
  extra?: ReadonlyMap<string, GgufValue>;
}

/** The llama.* hyper-parameter keys llama.cpp reads (llama-model.cpp load_hparams). */
export function llamaMetadata(m: ModelConfig, name: string, type: ExportType): Map<string, GgufValue> {
  return new Map<string, GgufValue>([
    ['general.architecture', str('llama')],
    ['general.name', str(name)],
    ['general.file_type', u32(FILE_TYPE[type])],
    ['llama.vocab_size', u32(m.nVocab)],
    ['llama.context_length', u32(m.nCtx)],
    ['llama.embedding_length', u32(m.nEmbd)],
    ['llama.block_count', u32(m.nLayer)],
    ['llama.feed_forward_length', u32(m.nFf)],
    ['llama.attention.head_count', u32(m.nHead)],
    ['llama.attention.head_count_kv', u32(m.nHeadKv)],
    ['llama.rope.dimension_count', u32(headDim(m))],
    ['llama.rope.freq_base', f32(m.ropeBase)],
    ['llama.attention.layer_norm_rms_epsilon', f32(m.rmsEps)],
  ]);
}

/** Write the model to `path` (through a temp file renamed at the end). */
export function exportGguf(path: string, o: ExportOptions): void {
  const metadata = llamaMetadata(o.model, o.name ?? 'sharedllm', o.type);
  for (const [k, v] of o.extra ?? []) metadata.set(k, v);
  for (const [k, v] of Object.entries(o.tokenizer)) metadata.set(k, v as GgufValue);
  const tensors = paramSpecs(o.model).map((s) => {
    const data = o.params.get(s.name);
    if (!data) throw new TrainError(`cannot export ${s.name}`, 'every parameter', 'absent', 'this is a bug');
    const type = s.ne.length === 2 ? GGML_TYPE[o.type] : GGML_TYPE.F32;
    return { name: s.name, type, dims: s.ne, data: () => convert(data, type, s.ne) };
  });
  writeGguf(path, { metadata, tensors });
}

/** F32 rows to `type` with ggml_quantize_chunk (plain conversion for F16, block quantisation for Q8_0). */
export function convert(f: Float32Array, type: number, dims: readonly number[]): Uint8Array {
  if (type === GGML_TYPE.F32) return new Uint8Array(f.buffer.slice(f.byteOffset, f.byteOffset + f.byteLength));
  const ne0 = dims[0]!;
  const out = new Uint8Array(tensorByteSize(type, dims));
  getGgml().lib.ggml_quantize_chunk(type, f, out, 0, f.length / ne0, ne0, null);
  return out;
}
