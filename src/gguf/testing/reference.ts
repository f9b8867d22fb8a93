// The outside reference for golden tests: node-llama-cpp's own GGUF reader (a separate implementation).
import { readGgufFileInfo } from 'node-llama-cpp';
import type { GgufValue } from '../value.ts';

export interface ReferenceGguf {
  version: number;
  /** Metadata flattened back to dotted keys, values as node-llama-cpp gives them (arrays as JS arrays). */
  metadata: Map<string, unknown>;
  tensors: Array<{ name: string; dims: number[]; type: number; offset: number; fileOffset: number }>;
}

/** Reads a GGUF file with node-llama-cpp. */
export async function readWithNodeLlamaCpp(path: string): Promise<ReferenceGguf> {
  const info = await readGgufFileInfo(path, { logWarnings: false, sourceType: 'filesystem' });
  const metadata = new Map<string, unknown>();
  flatten(info.metadata, '', metadata);
  const tensors = (info.fullTensorInfo ?? []).map((t) => ({
    name: t.name,
    dims: t.dimensions.map(Number),
    type: t.ggmlType as number,
    offset: Number(t.offset),
    fileOffset: Number(t.fileOffset),
  }));
  return { version: info.version, metadata, tensors };
}

function flatten(obj: unknown, prefix: string, out: Map<string, unknown>): void {
  for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) flatten(v, key, out);
    else out.set(key, v);
  }
}

/** Our value in the shape node-llama-cpp uses: typed arrays as plain arrays, nested arrays recursively. */
export function plainValue(v: GgufValue): unknown {
  if (v.type !== 9) return v.value;
  if (v.itemType === 9) return v.value.map(plainValue);
  return Array.from(v.value as ArrayLike<unknown>);
}
