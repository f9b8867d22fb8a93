// A norm adapter as the engine takes it per sequence: tensor name -> gains (n_embd floats), the form of
// ModelPart.setNormOverrides / SequenceCache.normOverrides (graphs/blocks.ts rmsNorm picks each row's gains).
import { type Adapter, AdapterError } from './format.ts';

export function normOverrides(adapter: Adapter): Map<string, Float32Array> {
  if (adapter.kind !== 'norm') {
    throw new AdapterError('only norm adapters apply per sequence', "an adapter of kind 'norm'", `kind '${adapter.kind}'`, 'serve a LoRA adapter as a merged model (exportMerged)');
  }
  return new Map(adapter.tensors);
}

/** The overrides of the layers [first, last) only (and the final norm when `head`): what a pipeline stage needs. */
export function overridesForSpan(all: ReadonlyMap<string, Float32Array>, first: number, last: number, head: boolean): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, gains] of all) {
    const m = /^blk\.(\d+)\./.exec(name);
    const inSpan = m ? Number(m[1]) >= first && Number(m[1]) < last : head;
    if (inSpan) out.set(name, gains);
  }
  return out;
}
