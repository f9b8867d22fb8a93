// Adapters out to llama.cpp:
//
//   exportMerged  the base GGUF with the adapter applied, as a full model file: a norm adapter's gains
//                 replace the base's norm tensors (F32); a LoRA adapter is merged into each matrix,
//                 W' = W + (alpha / r) B A, computed in ggml on the dequantised W and stored back in W's own
//                 type. Every other tensor and all metadata (tokenizer, chat template) are copied as they are.
//   exportLora    a LoRA adapter in llama.cpp's LoRA adapter format (src/llama-adapter.cpp):
//                 general.type = 'adapter', general.architecture = the base's, adapter.type = 'lora',
//                 adapter.lora.alpha, tensors `<base tensor>.lora_a` ne (n_in, r) and `.lora_b` ne (r, n_out)
//                 (our own layout already), F32. llama.cpp scales the update by alpha / r like we do.
//
// Both write through a temp file renamed at the end (gguf/writer.ts): a file is whole or absent. Both run
// synchronously inside (ggml), one tensor at a time; call them off the request path for large models.
import { Executor } from '../../ggml/executor.ts';
import { Graph, T, readF32 } from '../../ggml/graph.ts';
import { getGgml } from '../../ggml/runtime.ts';
import type { GgufFile } from '../../gguf/file.ts';
import { GGML_TYPE } from '../../gguf/types.ts';
import { f32, str, type GgufValue } from '../../gguf/value.ts';
import { type GgufTensorInput, writeGguf } from '../../gguf/writer.ts';
import { openModelFile } from '../../model/load.ts';
import { convert } from '../export.ts';
import { dequantize } from '../gguf-model.ts';
import { adapterBaseOf } from './base.ts';
import { type Adapter, AdapterError, checkAdapterBase } from './format.ts';
import { LORA_A, LORA_B } from './targets.ts';

/** Write `modelPath` with `adapter` applied to `outPath` (refused for an adapter of another base). */
export async function exportMerged(modelPath: string, adapter: Adapter, outPath: string): Promise<void> {
  checkAdapterBase(adapter, adapterBaseOf(modelPath));
  const file = openModelFile(modelPath);
  try {
    const metadata = new Map<string, GgufValue>(file.metadata);
    const baseName = file.metadata.getString('general.name', 'model');
    metadata.set('general.name', str(`${baseName} + ${adapter.name}`.slice(0, 200)));
    metadata.set('sharedllm.adapter.merged', str(adapter.name));
    metadata.set('sharedllm.adapter.kind', str(adapter.kind));
    const tensors: GgufTensorInput[] = file.tensorInfos.map((info) => {
      const same = { name: info.name, type: info.type, dims: info.dims };
      if (adapter.kind === 'norm') {
        const gains = adapter.tensors.get(info.name);
        if (!gains) return { ...same, data: () => file.readTensor(info.name) };
        if (gains.length !== info.dims.reduce((a, b) => a * b, 1)) throw new AdapterError(`adapter gains for ${info.name} have the wrong size`, info.dims.join('x'), String(gains.length), 'the adapter was made for another model');
        return { ...same, type: GGML_TYPE.F32, data: () => new Uint8Array(gains.buffer.slice(gains.byteOffset, gains.byteOffset + gains.byteLength)) };
      }
      const a = adapter.tensors.get(info.name + LORA_A);
      const b = adapter.tensors.get(info.name + LORA_B);
      if (!a || !b) return { ...same, data: () => file.readTensor(info.name) };
      return { ...same, data: () => mergeLora(file, info.name, a, b, adapter) };
    });
    const used = new Set(tensors.map((t) => t.name));
    for (const name of adapter.tensors.keys()) {
      const target = name.replace(/\.lora_[ab]$/, '');
      if (!used.has(target)) throw new AdapterError(`the adapter changes ${target}, which the model does not have`, 'tensors of the base model', target, 'the adapter was made for another model');
    }
    writeGguf(outPath, { metadata, tensors });
  } finally {
    file.dispose();
  }
}

/** W + (alpha / r) B A in ggml, back in W's type. W: ne (n_in, n_out); A: (n_in, r); B: (r, n_out). */
function mergeLora(file: GgufFile, name: string, a: Float32Array, b: Float32Array, adapter: Adapter): Uint8Array {
  const info = file.tensorInfo(name);
  const [nIn, nOut] = [info.dims[0]!, info.dims[1]!];
  const r = adapter.rank!;
  if (a.length !== nIn * r || b.length !== r * nOut) throw new AdapterError(`LoRA of ${name} has the wrong shape`, `A ${nIn}x${r}, B ${r}x${nOut}`, `${a.length} and ${b.length} floats`, 'the adapter was made for another model');
  const ggml = getGgml();
  const w = info.type === GGML_TYPE.F32 ? f32Of(file.readTensor(name)) : dequantize(ggml, file.readTensor(name), info.type, info.dims);
  const g = new Graph(ggml, 32);
  const ex = new Executor(ggml, 32);
  try {
    const W = g.input(T.F32, [nIn, nOut], w);
    const A = g.input(T.F32, [nIn, r], a);
    const B = g.input(T.F32, [r, nOut], b);
    const delta = g.mulMat(g.cont(g.transpose(A)), B); // (n_in, n_out): B A
    const out = g.add(W, g.scale(delta, adapter.alpha! / r)); // (n_in, n_out)
    g.output(out);
    g.expand(out);
    ex.run(g);
    return convert(readF32(ggml, out, nIn * nOut), info.type, info.dims);
  } finally {
    ex.dispose();
    g.dispose();
  }
}

function f32Of(bytes: Uint8Array): Float32Array {
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/**
 * Write a LoRA adapter in llama.cpp's LoRA format. `architecture` is the base's general.architecture
 * (llama.cpp refuses an adapter whose architecture differs from the model's); default 'llama'.
 */
export async function exportLora(adapter: Adapter, outPath: string, architecture = 'llama'): Promise<void> {
  if (adapter.kind !== 'lora') {
    throw new AdapterError('only LoRA adapters have a llama.cpp LoRA form', "an adapter of kind 'lora'", `kind '${adapter.kind}'`, 'export a norm adapter as a merged model (format=merged)');
  }
  const metadata = new Map<string, GgufValue>([
    ['general.type', str('adapter')],
    ['general.architecture', str(architecture)],
    ['general.name', str(adapter.name)],
    ['adapter.type', str('lora')],
    ['adapter.lora.alpha', f32(adapter.alpha!)],
    ['sharedllm.adapter.base.content_hash', str(adapter.base.contentHash)],
    ['sharedllm.adapter.base.tokenizer_hash', str(adapter.base.tokenizerHash)],
  ]);
  const tensors = [...adapter.tensors].map(([name, data]) => ({
    name, type: GGML_TYPE.F32, dims: adapter.shapes.get(name)!,
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  }));
  writeGguf(outPath, { metadata, tensors });
}
