// Test and benchmark support: a model whose lower layers are one file's and upper layers (and head) another's,
// the shape of a specialist fine-tuned on its top layers only. Both files must have one shape.
import { existsSync } from 'node:fs';
import type { GgufValue } from '../../gguf/value.ts';
import { type GgufTensorInput, writeGguf } from '../../gguf/writer.ts';
import { openModelFile } from '../load.ts';

/**
 * Writes (once) `out`: `base`'s embeddings and layers below `fromLayer`, `donor`'s layers from there and head;
 * or, with `only`, `donor`'s tensors whose names it accepts and `base`'s others.
 */
export function graftModel(base: string, donor: string, fromLayer: number, out: string, only?: (name: string) => boolean): string {
  if (existsSync(out)) return out;
  const a = openModelFile(base);
  const b = openModelFile(donor);
  try {
    const fromDonor = only ?? ((name: string) => {
      const m = /^blk\.(\d+)\./.exec(name);
      return m ? Number(m[1]) >= fromLayer : name === 'output.weight' || name === 'output_norm.weight';
    });
    const tensors: GgufTensorInput[] = a.tensorInfos.map((info) => ({
      name: info.name, type: info.type, dims: info.dims,
      data: () => (fromDonor(info.name) ? b.readTensor(info.name) : a.readTensor(info.name)),
    }));
    writeGguf(out, { metadata: new Map<string, GgufValue>(a.metadata), tensors });
    return out;
  } finally {
    a.dispose();
    b.dispose();
  }
}
