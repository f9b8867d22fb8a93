// A GGUF's tokenizer hash: sha256 over the JSON of [[key, type, value], ...] for every `tokenizer.ggml.*`
// key, sorted by key, where type is the GGUF type as describeType writes it ('array<string>', 'u32', ...)
// and value is its JSON form (typed arrays as arrays of numbers, 64-bit integers and non-finite floats as
// strings). Two files with the same vocabulary, merges and special tokens have the same hash whatever else
// differs (RFC-0006 manifests, the mixture and adapters use it). Keys outside tokenizer.ggml.* (the chat
// template) are not part of it: they do not change token ids.
//
// The encoding holds arrays, strings, finite numbers and booleans only, where JSON.stringify is canonical
// (the same bytes as the federation's canonicalJson).
import { createHash } from 'node:crypto';
import type { GgufFile } from './file.ts';
import { describeType } from './metadata.ts';
import type { GgufValue } from './value.ts';

export function tokenizerHash(file: GgufFile): string {
  const keys = [...file.metadata.keys()].filter((key) => key.startsWith('tokenizer.ggml.')).sort();
  const encoded = JSON.stringify(keys.map((key) => {
    const value = file.metadata.get(key)!;
    return [key, describeType(value), jsonOf(value)];
  }));
  return `sha256:${createHash('sha256').update(encoded).digest('hex')}`;
}

function jsonOf(value: GgufValue): unknown {
  if (typeof value.value === 'bigint') return value.value.toString();
  if ('itemType' in value) {
    if (value.itemType === 9) return (value.value as GgufValue[]).map(jsonOf);
    return Array.from(value.value as ArrayLike<number | bigint | string | boolean>, jsonItem);
  }
  return jsonItem(value.value);
}

/** JSON has no NaN or infinities (some vocabularies use -inf scores): those become their names. */
function jsonItem(item: number | bigint | string | boolean): unknown {
  if (typeof item === 'bigint') return item.toString();
  if (typeof item === 'number' && !Number.isFinite(item)) return String(item);
  return item;
}
