/**
 * What an RFC-0006 manifest says about its GGUF file, read from the file itself: architecture and sizes from
 * the metadata, the quantisation tag, the content hash (sha256 of the whole file) and the tokenizer hash.
 *
 * Tokenizer hash (gguf/tokenizer-hash.ts): sha256 over the canonical JSON of [[key, type, value], ...] for every `tokenizer.ggml.*` key,
 * sorted by key, where type is the GGUF type as describeType writes it ('array<string>', 'u32', ...) and
 * value is its JSON form (typed arrays as arrays of numbers, 64-bit integers and non-finite floats as strings). Two files
 * with the same vocabulary, merges and special tokens have the same hash whatever else differs, so the
 * mixture can tell which specialists share a vocabulary. Keys outside tokenizer.ggml.* (the chat template)
 * are not part of it: they do not change token ids.
 */
import type { GgufFile } from '../../gguf/index.ts';
import { tokenizerHash } from '../../gguf/tokenizer-hash.ts';
import { readHParams } from '../../model/hparams.ts';
import { openModelFile } from '../../model/load.ts';
import { hashFile } from '../node/model-hash.ts';
import type { UnsignedManifest } from '../protocol-directory.ts';

export type ModelFacts = Pick<UnsignedManifest, 'architecture' | 'vocabSize' | 'hiddenDim' | 'nLayers' | 'quant' | 'fileBytes' | 'contentHash' | 'tokenizerHash'>;

/** Reads the facts of a GGUF file (hashing it: seconds for a few GB, cached by path, size and mtime). */
export function modelFacts(path: string): ModelFacts {
  const file = openModelFile(path);
  try {
    const hparams = readHParams(file.metadata);
    return {
      architecture: hparams.arch,
      vocabSize: hparams.nVocab,
      hiddenDim: hparams.nEmbd,
      nLayers: hparams.nLayer,
      quant: quantTag(file),
      fileBytes: file.size,
      contentHash: `sha256:${hashFile(path)}`,
      tokenizerHash: tokenizerHash(file),
    };
  } finally {
    file.close();
  }
}

/** The ggml type holding most of the tensor bytes, lowercase ('q8_0', 'f16'). */
export function quantTag(file: GgufFile): string {
  const bytes = new Map<string, number>();
  for (const tensor of file.tensorInfos) bytes.set(tensor.typeName, (bytes.get(tensor.typeName) ?? 0) + tensor.byteSize);
  const [top] = [...bytes].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  return (top?.[0] ?? 'none').toLowerCase();
}

export { tokenizerHash };
