// A small valid GGUF for tests: metadata of every value type (scalars, arrays, a nested array) and three
// small tensors of different types, two of them in transformer blocks.
import { GGML_TYPE, GGUF_VALUE_TYPE as T } from '../types.ts';
import { arr, bool, f32, f64, i16, i32, i64, i8, str, u16, u32, u64, u8, type GgufValue } from '../value.ts';
import { encodeGguf, type GgufWriteInput } from '../writer.ts';

/** Deterministic bytes 0, 1, 2, ... (mod 251) of the given length. */
export function patternBytes(length: number, seed = 0): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 7 + seed) % 251;
  return out;
}

export function sampleGgufInput(): GgufWriteInput {
  return {
    metadata: new Map<string, GgufValue>([
      ['general.architecture', str('llama')],
      ['general.name', str('tiny sample ✓')],
      ['general.alignment', u32(32)],
      ['llama.block_count', u32(2)],
      ['llama.context_length', u64(2048n)],
      ['llama.rope.freq_base', f32(10000)],
      ['llama.attention.layer_norm_rms_epsilon', f64(1e-5)],
      ['sample.u8', u8(255)],
      ['sample.i8', i8(-128)],
      ['sample.u16', u16(65535)],
      ['sample.i16', i16(-32768)],
      ['sample.i32', i32(-7)],
      ['sample.i64', i64(-(2n ** 63n))],
      ['sample.bool', bool(true)],
      ['tokenizer.ggml.model', str('gpt2')],
      ['tokenizer.ggml.tokens', arr(T.STRING, ['<s>', '</s>', 'hello', ' world', 'é'])],
      ['tokenizer.ggml.scores', arr(T.FLOAT32, [0, 0, -1.5, -2.25, -3])],
      ['tokenizer.ggml.token_type', arr(T.INT32, [3, 3, 1, 1, 1])],
      ['sample.bools', arr(T.BOOL, [true, false, true])],
      ['sample.u64s', arr(T.UINT64, [0n, 2n ** 64n - 1n])],
      ['sample.nested', arr(T.ARRAY, [arr(T.UINT8, [1, 2]), arr(T.STRING, ['x'])])],
    ]),
    tensors: [
      { name: 'token_embd.weight', type: GGML_TYPE.F32, dims: [4, 3], data: patternBytes(48, 1) },
      { name: 'blk.0.attn_q.weight', type: GGML_TYPE.F16, dims: [8], data: patternBytes(16, 2) },
      { name: 'blk.1.ffn_up.weight', type: GGML_TYPE.Q8_0, dims: [32, 2], data: patternBytes(68, 3) },
    ],
  };
}

/** The sample encoded as one Buffer. */
export function sampleGgufBytes(): Buffer {
  return encodeGguf(sampleGgufInput());
}
