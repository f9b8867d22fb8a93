// Loading a model part from a GGUF file: read only the tensors of the part, check they fit in memory
// before allocating anything, place them (repacked CPU layouts, GPU), and report progress.
import { existsSync, statSync } from 'node:fs';
import { type GgmlOptions, getGgml } from '../ggml/runtime.ts';
import { WeightSet } from '../ggml/weights.ts';
import type { GgufFile } from '../gguf/file.ts';
import { openGguf } from '../gguf/reader.ts';
import { MissingTensorError, ModelError, OutOfMemoryError } from './errors.ts';
import { type HParams, kvWidth, readHParams } from './hparams.ts';
import { cacheBytes } from './kv-cache.ts';
import { ModelPart } from './model-part.ts';
import { type PartLayout, type TensorIndexEntry, normNames, partWeights } from './tensors.ts';

export interface LoadOptions extends GgmlOptions {
  /** Which part to load; default: the whole model (embeddings, every layer, head). */
  layout?: Partial<PartLayout>;
  /** Context length per sequence; default min(training context, 4096). */
  nCtx?: number;
  /** How many sequences the caller expects to keep open (for the memory check). Default 1. */
  nSeqMax?: number;
  /** Called as bytes are loaded. */
  onProgress?: (loadedBytes: number, totalBytes: number) => void;
}

export interface LoadedModel {
  part: ModelPart;
  h: HParams;
  file: string;
}

export class ModelFileError extends ModelError {}

export function openModelFile(path: string): GgufFile {
  if (!existsSync(path)) throw new ModelFileError('model file not found', 'an existing .gguf file', path, 'check the path');
  if (statSync(path).isDirectory()) throw new ModelFileError('model path is a folder', 'a .gguf file', path, 'give the file inside it');
  return openGguf(path);
}

export function fullLayout(h: HParams): PartLayout {
  return { embeddings: true, first: 0, last: h.nLayer, head: true };
}

export async function loadModelPart(path: string, opts: LoadOptions = {}): Promise<LoadedModel> {
  const file = openModelFile(path);
  try {
    const h = readHParams(file.metadata, path.split('/').pop() ?? 'model');
    const layout: PartLayout = { ...fullLayout(h), ...opts.layout };
    if (layout.first < 0 || layout.last > h.nLayer || layout.first > layout.last) {
      throw new ModelError('bad layer span', `0 <= first <= last <= ${h.nLayer}`, `[${layout.first}, ${layout.last})`, 'pick a span inside the model');
    }
    const nCtx = opts.nCtx ?? Math.min(h.nCtxTrain, 4096);
    const index = new Map<string, TensorIndexEntry>(file.tensorInfos.map((t) => [t.name, t]));
    const { specs, missing, sources } = partWeights(h, layout, index);
    if (missing.length > 0) {
      throw new MissingTensorError('tensors missing from the file', missing.slice(0, 3).join(', '), 'absent', `is this a complete ${h.arch} GGUF? ${missing.length} required tensors are missing`);
    }
    const ggml = getGgml(opts);
    const weightBytes = specs.reduce((n, s) => n + index.get(sources.get(s.name) ?? s.name)!.byteSize, 0);
    const kvBytes = cacheBytes(kvWidth(h), nCtx, layout.last - layout.first) * (opts.nSeqMax ?? 1);
    const { free } = ggml.memory();
    if (weightBytes + kvBytes > free) {
      throw new OutOfMemoryError('model does not fit in free memory', `${fmt(weightBytes + kvBytes)} (weights ${fmt(weightBytes)} + KV cache ${fmt(kvBytes)})`, `${fmt(free)} free`, 'use a smaller quantisation or --ctx-size, or run it as a federation with workers holding layer spans');
    }
    const weights = new WeightSet(ggml, specs);
    try {
      let loaded = 0;
      opts.onProgress?.(0, weightBytes);
      const norms = new Map<string, Float32Array>();
      const normSet = new Set(normNames(layout));
      for (const s of specs) {
        const src = sources.get(s.name) ?? s.name;
        const bytes = file.readTensor(src);
        weights.upload(s.name, bytes);
        if (normSet.has(s.name)) norms.set(s.name, toF32(bytes, s.type, s.name));
        loaded += bytes.byteLength;
        opts.onProgress?.(loaded, weightBytes);
        // Let the event loop breathe between large tensors (progress bars, signals).
        if (bytes.byteLength > 16 << 20) await new Promise((r) => setImmediate(r));
      }
      return { part: new ModelPart(ggml, h, layout, weights, norms, nCtx), h, file: path };
    } catch (e) {
      weights.dispose();
      throw e;
    }
  } finally {
    file.dispose();
  }
}

function toF32(bytes: Uint8Array, type: number, name: string): Float32Array {
  if (type === 0) return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  if (type === 1) {
    const h = new Uint16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    return Float32Array.from(h, f16ToF32);
  }
  throw new ModelError(`norm weight ${name} has an unexpected type`, 'F32 or F16', `ggml type ${type}`, 'llama.cpp converters store norms as F32');
}

export function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

function fmt(n: number): string {
  return n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(2)} GiB` : `${(n / (1 << 20)).toFixed(1)} MiB`;
}
