// The model a DiLoCo job trains, on both ends. The server reads its --init GGUF (weights dequantised to f32,
// the tokenizer) and makes a "header": the same file's metadata as a GGUF with no tensors, a few KB to a few
// MB (the tokenizer), which a participant turns back into the ModelConfig and the tokenizer. Weights then
// travel tensor by tensor (diloco_weights), never as a whole file.
import type { Ggml } from '../../ggml/runtime.ts';
import { MemorySource } from '../../gguf/source.ts';
import { readGguf } from '../../gguf/reader.ts';
import { encodeGguf } from '../../gguf/writer.ts';
import type { GgufValue } from '../../gguf/value.ts';
import type { GgufFile } from '../../gguf/file.ts';
import type { BpeTokenizer } from '../../train/bpe.ts';
import { CorpusError, concatTokens, loadCorpus } from '../../train/corpus.ts';
import type { ModelConfig } from '../../train/config.ts';
import { loadGgufParams, modelConfigOf } from '../../train/gguf-model.ts';
import type { TensorMap } from '../../train/params.ts';
import { type LooseGgufValue, tokenizerFromGgufMetadata } from '../../train/tokenizer-gguf.ts';
import { DilocoError } from './errors.ts';

export interface BaseModel {
  model: ModelConfig;
  tokenizer: BpeTokenizer;
  name: string;
}

/** The server's side: the weights (f32), and the header it hands to participants. */
export function loadBaseModel(ggml: Ggml, path: string, ctx: number): BaseModel & { params: TensorMap; header: Uint8Array } {
  const { params, file } = loadGgufParams(ggml, path);
  try {
    const base = fromFile(file, path, ctx);
    const metadata = new Map<string, GgufValue>(file.metadata);
    return { ...base, model: { ...base.model, nCtx: ctx }, params, header: new Uint8Array(encodeGguf({ metadata, tensors: [] })) };
  } finally {
    file.dispose();
  }
}

/** The participant's side: the model's shape and tokenizer from the server's header. */
export function modelFromHeader(header: Uint8Array, ctx: number): BaseModel {
  const file = readGguf(new MemorySource(header));
  try {
    return fromFile(file, 'the job\'s model header', ctx);
  } finally {
    file.dispose();
  }
}

function fromFile(file: GgufFile, path: string, ctx: number): BaseModel {
  const model = { ...modelConfigOf(file, path, Infinity), nCtx: ctx };
  const tokenizer = tokenizerFromGgufMetadata((k) => file.metadata.get(k) as LooseGgufValue | undefined);
  const name = file.metadata.get('general.name');
  return { model, tokenizer, name: name?.type === 8 ? String(name.value) : 'model' };
}

/** A corpus (folders or .txt files) as one token stream, EOS after each document; a clear error when unusable. */
export function corpusTokens(paths: readonly string[], tokenizer: BpeTokenizer, what: string): Int32Array {
  let docs;
  try {
    docs = loadCorpus(paths);
  } catch (e) {
    if (e instanceof CorpusError) throw new DilocoError('bad_shard', `${what} cannot be read`, e.expected, `${e.actual} in ${e.path}`, e.hint);
    throw e;
  }
  return concatTokens(docs.map((d) => tokenizer.encode(d.text)), tokenizer.eosId);
}
