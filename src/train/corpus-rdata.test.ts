// The R serialization reader, on objects serialized here by a tiny XDR writer that follows R's format.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deflateSync, gzipSync } from 'node:zlib';
import { RDataError, readLazyLoadDb, SEXP, unserialize } from './corpus-rdata.ts';

/** Minimal XDR serializer (format version 3) for the object kinds the reader supports. */
class XdrWriter {
  private readonly parts: Buffer[] = [];
  int(v: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32BE(v);
    this.parts.push(b);
    return this;
  }
  raw(b: Buffer): this {
    this.parts.push(b);
    return this;
  }
  header(): this {
    return this.raw(Buffer.from('X\n')).int(3).int(0x040201).int(0x030500).int(5).raw(Buffer.from('UTF-8'));
  }
  charsxp(s: string | null): this {
    if (s === null) return this.int(SEXP.CHARSXP).int(-1);
    const bytes = Buffer.from(s, 'utf8');
    return this.int(SEXP.CHARSXP | (1 << 3 << 12)).int(bytes.length).raw(bytes); // UTF8_MASK in levels
  }
  strsxp(values: (string | null)[], names?: string[]): this {
    this.int(SEXP.STRSXP | (names ? 1 << 9 : 0)).int(values.length);
    for (const v of values) this.charsxp(v);
    return names ? this.namesAttr(names) : this;
  }
  intsxp(values: number[]): this {
    this.int(SEXP.INTSXP).int(values.length);
    for (const v of values) this.int(v);
    return this;
  }
  /** Attribute pairlist `names = c(...)`; the symbol is written once, then referenced. */
  namesAttr(names: string[]): this {
    this.int(SEXP.LISTSXP | (1 << 10));
    if (this.namesSymbolWritten) this.int((1 << 8) | SEXP.REFSXP);
    else this.int(SEXP.SYMSXP).charsxp('names');
    this.namesSymbolWritten = true;
    this.strsxp(names);
    return this.int(SEXP.NILVALUE_SXP);
  }
  private namesSymbolWritten = false;
  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

test('unserialize reads a character vector with NA and UTF-8', () => {
  const value = unserialize(new XdrWriter().header().strsxp(['Emma', '', null, 'café']).bytes());
  assert.deepEqual(value, { kind: 'character', values: ['Emma', '', null, 'café'], attributes: {} });
});

test('readLazyLoadDb finds each variable through the .rdx index', () => {
  const blob = (payload: Buffer): Buffer => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(payload.length);
    return Buffer.concat([length, deflateSync(payload)]);
  };
  const emma = blob(new XdrWriter().header().strsxp(['EMMA', 'CHAPTER I', 'Emma Woodhouse']).bytes());
  const persuasion = blob(new XdrWriter().header().strsxp(['Persuasion']).bytes());
  const rdb = Buffer.concat([emma, persuasion]);
  // list(variables = list(emma = c(0, n1), persuasion = c(n1, n2)), references = list(), compressed = TRUE)
  const index = new XdrWriter().header();
  index.int(SEXP.VECSXP | (1 << 9)).int(3);
  index.int(SEXP.VECSXP | (1 << 9)).int(2).intsxp([0, emma.length]).intsxp([emma.length, persuasion.length]);
  index.namesAttr(['emma', 'persuasion']);
  index.int(SEXP.VECSXP).int(0);
  index.int(SEXP.LGLSXP).int(1).int(1);
  index.namesAttr(['variables', 'references', 'compressed']);
  const db = readLazyLoadDb(gzipSync(index.bytes()), rdb);
  assert.deepEqual([...db.keys()], ['emma', 'persuasion']);
  assert.deepEqual(db.get('emma'), { kind: 'character', values: ['EMMA', 'CHAPTER I', 'Emma Woodhouse'], attributes: {} });
  assert.deepEqual(db.get('persuasion'), { kind: 'character', values: ['Persuasion'], attributes: {} });
});

test('unserialize explains what it cannot read', () => {
  assert.throws(() => unserialize(Buffer.from('A\n1\n')), (e) => e instanceof RDataError && /XDR/.test(e.message));
  const closure = new XdrWriter().header().int(3).bytes(); // CLOSXP
  assert.throws(() => unserialize(closure), (e) => e instanceof RDataError && e.actual === 'SEXP type 3');
});
