// An open GGUF file: its metadata and tensor index in memory, its tensor data read on demand.
//
// A worker holding layers [first, last) reads only `tensorsForLayers(first, last)`; nothing here reads the
// whole file. Tensors next to each other on disk are fetched with one read (see readTensors).
import { GgufTensorNotFoundError } from './errors.ts';
import type { GgufMetadata } from './metadata.ts';
import type { ByteSource } from './source.ts';
import { elementCount } from './types.ts';

export interface GgufTensorInfo {
  readonly name: string;
  /** Shape in ggml order: dims[0] is ne0, the row length (the reverse of PyTorch / numpy order). */
  readonly dims: number[];
  /** ggml_type id (see GGML_TYPE). */
  readonly type: number;
  /** ggml_type name, e.g. 'Q4_K'. */
  readonly typeName: string;
  /** Offset of the data relative to the start of the data section (as stored in the file). */
  readonly offset: number;
  /** Absolute offset of the data in the file. */
  readonly fileOffset: number;
  /** Bytes of data. */
  readonly byteSize: number;
}

export interface GgufFileParts {
  source: ByteSource;
  version: number;
  metadata: GgufMetadata;
  tensorInfos: readonly GgufTensorInfo[];
  alignment: number;
  dataOffset: number;
}

// readTensors merges reads of tensors separated by at most this many bytes, up to this many bytes per read.
const MERGE_GAP = 1024 * 1024;
const MERGE_MAX = 256 * 1024 * 1024;

const LAYER_NAME = /^blk\.(\d+)\./;

export class GgufFile {
  /** GGUF version (2 or 3). */
  readonly version: number;
  /** All key-value metadata, in file order, each value with its GGUF type. */
  readonly metadata: GgufMetadata;
  /** Tensor index in file order. */
  readonly tensorInfos: readonly GgufTensorInfo[];
  /** Data alignment in bytes (`general.alignment`, default 32). */
  readonly alignment: number;
  /** Absolute offset of the tensor data section. */
  readonly dataOffset: number;
  /** Total size of the file in bytes. */
  readonly size: number;
  private readonly source: ByteSource;
  private readonly byName: Map<string, GgufTensorInfo>;

  constructor(parts: GgufFileParts) {
    this.source = parts.source;
    this.version = parts.version;
    this.metadata = parts.metadata;
    this.tensorInfos = parts.tensorInfos;
    this.alignment = parts.alignment;
    this.dataOffset = parts.dataOffset;
    this.size = parts.source.size;
    this.byName = new Map(parts.tensorInfos.map((t) => [t.name, t]));
  }

  /** True when the file holds a tensor of this name. */
  hasTensor(name: string): boolean {
    return this.byName.has(name);
  }

  /** The index entry of one tensor; throws GgufTensorNotFoundError. */
  tensorInfo(name: string): GgufTensorInfo {
    const info = this.byName.get(name);
    if (!info) throw new GgufTensorNotFoundError(name, this.byName.size);
    return info;
  }

  /** Number of elements of a tensor. */
  elementCount(name: string): number {
    return elementCount(this.tensorInfo(name).dims);
  }

  /** The raw bytes of one tensor (in its ggml type). From an in-memory source this may be a view, not a copy. */
  readTensor(name: string): Buffer {
    const info = this.tensorInfo(name);
    return this.source.read(info.fileOffset, info.byteSize);
  }

  /**
   * The raw bytes of several tensors, by name. Tensors close together in the file are read with one read;
   * the returned buffers may then share memory with each other.
   */
  readTensors(names: Iterable<string>): Map<string, Buffer> {
    const wanted = [...new Set(names)];
    const infos = wanted.map((n) => this.tensorInfo(n)).sort((a, b) => a.fileOffset - b.fileOffset);
    const out = new Map<string, Buffer>();
    let i = 0;
    while (i < infos.length) {
      const first = infos[i] as GgufTensorInfo;
      let end = first.fileOffset + first.byteSize;
      let j = i + 1;
      for (; j < infos.length; j++) {
        const next = infos[j] as GgufTensorInfo;
        const nextEnd = Math.max(end, next.fileOffset + next.byteSize);
        if (next.fileOffset - end > MERGE_GAP || nextEnd - first.fileOffset > MERGE_MAX) break;
        end = nextEnd;
      }
      const span = this.source.read(first.fileOffset, end - first.fileOffset);
      for (const info of infos.slice(i, j)) {
        const start = info.fileOffset - first.fileOffset;
        out.set(info.name, span.subarray(start, start + info.byteSize));
      }
      i = j;
    }
    // Return in the order asked for, not file order.
    return new Map(wanted.map((n) => [n, out.get(n) as Buffer]));
  }

  /** Tensors of the transformer blocks first <= N < last (names `blk.N.*`), in file order. */
  tensorsForLayers(first: number, last: number): GgufTensorInfo[] {
    return this.tensorInfos.filter((t) => {
      const m = LAYER_NAME.exec(t.name);
      if (!m) return false;
      const n = Number(m[1]);
      return n >= first && n < last;
    });
  }

  /** Tensors outside every `blk.N.*` block (embeddings, final norm, output head, rope factors ...). */
  nonLayerTensors(): GgufTensorInfo[] {
    return this.tensorInfos.filter((t) => !LAYER_NAME.test(t.name));
  }

  /** Closes the underlying file. */
  dispose(): void {
    this.source.close();
  }

  /** Same as dispose(). */
  close(): void {
    this.dispose();
  }
}
