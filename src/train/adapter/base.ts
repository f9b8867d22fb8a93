// The identity of a base model as adapters name it: the sha256 of the whole GGUF file and its tokenizer hash.
import { tokenizerHash } from '../../gguf/tokenizer-hash.ts';
import { openModelFile } from '../../model/load.ts';
import { hashFile } from '../../util/file-hash.ts';
import type { AdapterBase } from './format.ts';

export function adapterBaseOf(modelPath: string): AdapterBase {
  const file = openModelFile(modelPath);
  try {
    return { contentHash: `sha256:${hashFile(modelPath)}`, tokenizerHash: tokenizerHash(file) };
  } finally {
    file.dispose();
  }
}
