// Reading the fields of a native `struct ggml_tensor` (ggml.h) without C code.
//
// Layout on 64-bit targets (checked against ggml_tensor_overhead() at load in graph.test.ts):
//   0 type (int32) | 8 buffer | 16 ne[4] (int64) | 48 nb[4] (size_t) | 80 op | 84 op_params[16] | 148 flags
//   152 src[10] | 232 view_src | 240 view_offs | 248 data | 256 name[64] | 320 extra | 328 padding[8] -> 336
import { type Ptr, koffi } from './lib.ts';

export type Tensor = Ptr & { readonly __tensor: unique symbol };

const OFF = { type: 0, buffer: 8, ne: 16, nb: 48, src: 152, data: 248, name: 256 } as const;
export const GGML_TENSOR_SIZE = 336;

export function tensorType(t: Tensor): number {
  return koffi.decode(t, OFF.type, 'int32') as number;
}

/** ne[0..3]: elements per dimension, innermost first. */
export function tensorShape(t: Tensor): [number, number, number, number] {
  const ne = koffi.decode(t, OFF.ne, 'int64', 4) as (number | bigint)[];
  return [Number(ne[0]), Number(ne[1]), Number(ne[2]), Number(ne[3])];
}

/** nb[0..3]: strides in bytes. */
export function tensorStrides(t: Tensor): [number, number, number, number] {
  const nb = koffi.decode(t, OFF.nb, 'uint64', 4) as (number | bigint)[];
  return [Number(nb[0]), Number(nb[1]), Number(nb[2]), Number(nb[3])];
}

export function tensorName(t: Tensor): string {
  return koffi.decode(t, OFF.name, 'char', 64) as string;
}

/** The i-th source of an operation's result (src[0] is a matmul's weight, src[1] its activations), or null. */
export function tensorSrc(t: Tensor, i: number): Tensor | null {
  return (koffi.decode(t, OFF.src + 8 * i, 'void *') as Tensor | null) ?? null;
}

/** The backend buffer holding the tensor's data, or null when it was never allocated (unused by its graph). */
export function tensorBuffer(t: Tensor): unknown {
  return koffi.decode(t, OFF.buffer, 'void *');
}

/** Point a (not yet allocated) tensor at a buffer: how llama.cpp asks "would this buffer type support it?". */
export function setTensorBuffer(t: Tensor, buffer: Ptr | null): void {
  koffi.encode(t, OFF.buffer, 'void *', buffer);
}
