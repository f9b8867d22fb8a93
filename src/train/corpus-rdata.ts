// A minimal reader for R's serialization format, enough to pull text out of an R package's lazy-load
// data base (`data/Rdata.rdx` + `data/Rdata.rdb`), which is where CRAN packages such as janeaustenr keep
// their data sets.
//
// Layout (R Internals, "Serialization Formats" and "Lazy loading"):
//   Rdata.rdx  gzip-compressed serialized list(variables = list(name = c(offset, length), ...),
//              references = list(...), compressed = TRUE)
//   Rdata.rdb  concatenated blobs; the blob of one variable starts at `offset`, spans `length` bytes:
//              4-byte big-endian uncompressed length, then a zlib stream holding one serialized object.
//   serialized object: "X\n" (XDR, big-endian), int version (2 or 3), int writer R version,
//              int minimal reader version, [v3: int n + n bytes of native encoding], then one item.
//   item:      int flags: type = flags & 0xff, is-object bit 8, has-attributes bit 9, has-tag bit 10,
//              "levels" (CHARSXP encoding bits) = flags >> 12; then a type-specific body.
//
// Only the types these data files hold are supported; anything else raises RDataError naming the type.
import { gunzipSync, inflateSync } from 'node:zlib';

/** SEXP type codes (R Internals, table "SEXPTYPE"), plus the serialization-only pseudo types. */
export const SEXP = {
  NILSXP: 0,
  SYMSXP: 1,
  LISTSXP: 2,
  CHARSXP: 9,
  LGLSXP: 10,
  INTSXP: 13,
  REALSXP: 14,
  STRSXP: 16,
  VECSXP: 19,
  REFSXP: 255,
  NILVALUE_SXP: 254,
  GLOBALENV_SXP: 253,
  EMPTYENV_SXP: 242,
  BASEENV_SXP: 241,
  MISSINGARG_SXP: 251,
} as const;

const HAS_ATTR = 1 << 9;
const HAS_TAG = 1 << 10;
// CHARSXP encoding bits, in the "levels" field.
const LATIN1_MASK = 1 << 2;
const NA_INTEGER = -2147483648;

/** A decoded R value. Attributes (names, class, ...) are kept as a plain record. */
export type RValue =
  | { kind: 'null' }
  | { kind: 'symbol'; name: string }
  | { kind: 'character'; values: (string | null)[]; attributes: RAttributes }
  | { kind: 'integer'; values: (number | null)[]; attributes: RAttributes }
  | { kind: 'logical'; values: (boolean | null)[]; attributes: RAttributes }
  | { kind: 'double'; values: number[]; attributes: RAttributes }
  | { kind: 'list'; values: RValue[]; attributes: RAttributes }
  | { kind: 'pairlist'; entries: { tag: string | null; value: RValue }[] };

export type RAttributes = Record<string, RValue>;

export class RDataError extends Error {
  constructor(
    message: string,
    readonly expected: string,
    readonly actual: string,
    readonly hint: string,
  ) {
    super(`${message}: expected ${expected}, found ${actual}. ${hint}`);
    this.name = 'RDataError';
  }
}

/** Reads one serialized R object ("X\n" XDR format) from its uncompressed bytes. */
export function unserialize(bytes: Uint8Array): RValue {
  return new XdrReader(bytes).readObject();
}

/** Reads every variable of a lazy-load data base: the `.rdx` index and the `.rdb` blobs it points into. */
export function readLazyLoadDb(rdx: Uint8Array, rdb: Uint8Array): Map<string, RValue> {
  const index = unserialize(gunzipSync(rdx));
  const variables = listElement(index, 'variables');
  if (variables.kind !== 'list') {
    throw new RDataError('bad .rdx index', 'a list of variables', variables.kind, 'Is this an R lazy-load .rdx?');
  }
  const names = characterAttribute(variables, 'names');
  const out = new Map<string, RValue>();
  variables.values.forEach((where, i) => {
    const name = names[i];
    if (name === undefined || name === null || where.kind !== 'integer' && where.kind !== 'double') {
      throw new RDataError('bad .rdx entry', 'name = c(offset, length)', where.kind, 'Is this an R lazy-load .rdx?');
    }
    const [offset, length] = where.values;
    if (typeof offset !== 'number' || typeof length !== 'number' || offset + length > rdb.length) {
      throw new RDataError(`bad .rdb range for '${name}'`, `within ${rdb.length} bytes`,
        `${offset}+${length}`, 'The .rdb and .rdx must come from the same package build.');
    }
    out.set(name, unserialize(inflateBlob(rdb.subarray(offset, offset + length))));
  });
  return out;
}

/** One .rdb blob: 4-byte big-endian uncompressed length, then zlib data. */
function inflateBlob(blob: Uint8Array): Uint8Array {
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const expected = view.getUint32(0, false);
  const data = inflateSync(blob.subarray(4));
  if (data.length !== expected) {
    throw new RDataError('bad .rdb blob', `${expected} bytes after inflating`, `${data.length}`,
      'Only zlib-compressed lazy-load data bases (compress = TRUE) are supported.');
  }
  return data;
}

/** The element `name` of a named R list. */
export function listElement(value: RValue, name: string): RValue {
  if (value.kind !== 'list') {
    throw new RDataError(`cannot take '${name}'`, 'a list', value.kind, 'Check the object structure.');
  }
  const index = characterAttribute(value, 'names').indexOf(name);
  const element = value.values[index];
  if (index < 0 || element === undefined) {
    throw new RDataError('missing list element', `'${name}'`, 'no such name', 'Check the object structure.');
  }
  return element;
}

function characterAttribute(value: { attributes: RAttributes }, name: string): (string | null)[] {
  const attr = value.attributes[name];
  return attr?.kind === 'character' ? attr.values : [];
}

class XdrReader {
  private offset = 0;
  private readonly view: DataView;
  /** Reference table: symbols (and environments, unsupported) in the order they were read. */
  private readonly refs: RValue[] = [];

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  readObject(): RValue {
    const magic = String.fromCharCode(this.bytes[0] ?? 0, this.bytes[1] ?? 0);
    if (magic !== 'X\n') {
      throw new RDataError('not an XDR R serialization', '"X\\n"', JSON.stringify(magic),
        'Only the binary XDR format is supported (ascii "A\\n" and native "B\\n" are not).');
    }
    this.offset = 2;
    const version = this.int();
    this.int(); // R version that wrote it
    this.int(); // minimal R version to read it
    if (version === 3) {
      const encodingLength = this.int(); // then the native encoding name, e.g. "UTF-8"
      this.offset += encodingLength;
    } else if (version !== 2) {
      throw new RDataError('unsupported serialization version', '2 or 3', String(version), 'Re-save with R >= 3.5.');
    }
    return this.item();
  }

  private int(): number {
    const v = this.view.getInt32(this.offset, false);
    this.offset += 4;
    return v;
  }

  private double(): number {
    const v = this.view.getFloat64(this.offset, false);
    this.offset += 8;
    return v;
  }

  private length(): number {
    const n = this.int();
    if (n !== -1) return n;
    const upper = this.int();
    const lower = this.int();
    return upper * 2 ** 32 + (lower >>> 0);
  }

  private item(): RValue {
    const flags = this.int();
    const type = flags & 0xff;
    const hasAttr = (flags & HAS_ATTR) !== 0;
    const hasTag = (flags & HAS_TAG) !== 0;
    switch (type) {
      case SEXP.NILVALUE_SXP:
      case SEXP.NILSXP:
      case SEXP.GLOBALENV_SXP:
      case SEXP.EMPTYENV_SXP:
      case SEXP.BASEENV_SXP:
      case SEXP.MISSINGARG_SXP:
        return { kind: 'null' };
      case SEXP.REFSXP: {
        let index = flags >> 8;
        if (index === 0) index = this.int();
        const ref = this.refs[index - 1];
        if (!ref) throw new RDataError('dangling reference', `index <= ${this.refs.length}`, String(index), 'Corrupt file?');
        return ref;
      }
      case SEXP.SYMSXP: {
        const name = this.item();
        const symbol: RValue = { kind: 'symbol', name: name.kind === 'character' ? name.values[0] ?? '' : '' };
        this.refs.push(symbol);
        return symbol;
      }
      case SEXP.CHARSXP:
        return { kind: 'character', values: [this.charBody(flags)], attributes: {} };
      case SEXP.LISTSXP:
        return this.pairlist(flags, hasAttr, hasTag);
      case SEXP.STRSXP: {
        const n = this.length();
        const values: (string | null)[] = [];
        for (let i = 0; i < n; i++) {
          const charFlags = this.int();
          if ((charFlags & 0xff) !== SEXP.CHARSXP) {
            throw new RDataError('bad string vector element', 'CHARSXP (9)', String(charFlags & 0xff), 'Corrupt file?');
          }
          values.push(this.charBody(charFlags));
        }
        return { kind: 'character', values, attributes: this.attributes(hasAttr) };
      }
      case SEXP.INTSXP:
      case SEXP.LGLSXP: {
        const n = this.length();
        const ints: (number | null)[] = [];
        for (let i = 0; i < n; i++) {
          const v = this.int();
          ints.push(v === NA_INTEGER ? null : v);
        }
        const attributes = this.attributes(hasAttr);
        if (type === SEXP.INTSXP) return { kind: 'integer', values: ints, attributes };
        return { kind: 'logical', values: ints.map((v) => (v === null ? null : v !== 0)), attributes };
      }
      case SEXP.REALSXP: {
        const n = this.length();
        const values: number[] = [];
        for (let i = 0; i < n; i++) values.push(this.double());
        return { kind: 'double', values, attributes: this.attributes(hasAttr) };
      }
      case SEXP.VECSXP: {
        const n = this.length();
        const values: RValue[] = [];
        for (let i = 0; i < n; i++) values.push(this.item());
        return { kind: 'list', values, attributes: this.attributes(hasAttr) };
      }
      default:
        throw new RDataError('unsupported R object type', 'one of NULL, symbol, pairlist, character, logical, ' +
          'integer, double, list', `SEXP type ${type}`, 'Extend src/train/corpus-rdata.ts for this type.');
    }
  }

  /** CHARSXP body: int length (-1 = NA), then the bytes, in UTF-8, Latin-1 or ASCII by the levels bits. */
  private charBody(flags: number): string | null {
    const n = this.int();
    if (n === -1) return null;
    const raw = this.bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    const levels = flags >> 12;
    return new TextDecoder((levels & LATIN1_MASK) !== 0 ? 'latin1' : 'utf-8').decode(raw);
  }

  /** Pairlist cell chain: [attributes] [tag] CAR, then CDR (another cell or NILVALUE). */
  private pairlist(flags: number, hasAttr: boolean, hasTag: boolean): RValue {
    const entries: { tag: string | null; value: RValue }[] = [];
    for (;;) {
      if (hasAttr) this.item(); // attributes on a pairlist cell: not needed, skip
      const tag = hasTag ? this.item() : null;
      entries.push({ tag: tag?.kind === 'symbol' ? tag.name : null, value: this.item() });
      const next = this.int();
      const type = next & 0xff;
      if (type === SEXP.NILVALUE_SXP) break;
      if (type !== SEXP.LISTSXP) {
        throw new RDataError('bad pairlist tail', 'LISTSXP or NULL', `SEXP type ${type}`, 'Corrupt file?');
      }
      flags = next;
      hasAttr = (flags & HAS_ATTR) !== 0;
      hasTag = (flags & HAS_TAG) !== 0;
    }
    return { kind: 'pairlist', entries };
  }

  private attributes(hasAttr: boolean): RAttributes {
    if (!hasAttr) return {};
    const list = this.item();
    const out: RAttributes = {};
    if (list.kind === 'pairlist') for (const e of list.entries) if (e.tag !== null) out[e.tag] = e.value;
    return out;
  }
}
