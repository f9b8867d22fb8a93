// GGUF v3 reader and writer: header, metadata of every type, tensor index, alignment, and reading one tensor
// or one layer span without reading the whole file.
export * from './errors.ts';
export * from './types.ts';
export {
  MAX_ARRAY_DEPTH,
  arr,
  bool,
  f32,
  f64,
  i16,
  i32,
  i64,
  i8,
  str,
  toGgufValue,
  u16,
  u32,
  u64,
  u8,
  type GgufArray,
  type GgufArrayInput,
  type GgufArrayItems,
  type GgufBigInt,
  type GgufBool,
  type GgufInput,
  type GgufItemType,
  type GgufNumber,
  type GgufScalar,
  type GgufString,
  type GgufValue,
} from './value.ts';
export { GgufMetadata, describeType, type GgufNumberArray } from './metadata.ts';
export { FileSource, MemorySource, SourceRangeError, type ByteSource } from './source.ts';
export { GgufFile, type GgufTensorInfo } from './file.ts';
export { openGguf, readGguf } from './reader.ts';
export {
  GGUF_WRITE_VERSION,
  encodeGguf,
  layoutGguf,
  writeGguf,
  type GgufLayout,
  type GgufMetadataInput,
  type GgufTensorInput,
  type GgufWriteInput,
} from './writer.ts';
