// A SWORD Bible module (driver zText, the form Debian's sword-text-* packages ship) to one plain-text
// document per book. Pure functions over the module's files; scripts/fetch-corpora.ts reads them.
//
// zText keeps each testament in three files (little-endian):
//   <t>.bzs  block index, 12 bytes a block:  u32 offset in .bzz, u32 compressed size, u32 uncompressed size
//   <t>.bzv  verse index, 10 bytes an entry:  u32 block number, u32 offset in the block, u16 size
//   <t>.bzz  the blocks, each zlib-compressed (CompressType=ZIP)
// Verse entries come in versification order (module header, testament header, then per book: its intro,
// per chapter: the chapter intro and its verses); a zero size is an empty entry. The text is OSIS markup.
import { inflateSync } from 'node:zlib';
import type { NamedText } from './corpus-clean.ts';

export class SwordModuleError extends Error {
  constructor(message: string, readonly expected: string, readonly actual: string, readonly hint: string) {
    super(`${message}: expected ${expected}, found ${actual}. ${hint}`);
    this.name = 'SwordModuleError';
  }
}

/** One testament of a zText module: the raw bytes of its .bzs, .bzv and .bzz files. */
export interface ZTextTestament {
  bzs: Uint8Array;
  bzv: Uint8Array;
  bzz: Uint8Array;
}

const BLOCK_ENTRY_BYTES = 12;
const VERSE_ENTRY_BYTES = 10;
const HINT = 'The module is not a zText (CompressType=ZIP) module, or its files are damaged; re-download the package.';

/** The OSIS text of every non-empty verse entry of a testament, in versification order. */
export function readZTextEntries(t: ZTextTestament): string[] {
  const bzs = Buffer.from(t.bzs.buffer, t.bzs.byteOffset, t.bzs.byteLength);
  const bzv = Buffer.from(t.bzv.buffer, t.bzv.byteOffset, t.bzv.byteLength);
  if (bzs.length % BLOCK_ENTRY_BYTES !== 0 || bzv.length % VERSE_ENTRY_BYTES !== 0) {
    throw new SwordModuleError('index size', `.bzs a multiple of ${BLOCK_ENTRY_BYTES} and .bzv of ${VERSE_ENTRY_BYTES} bytes`,
      `${bzs.length} and ${bzv.length} bytes`, HINT);
  }
  const blocks: Buffer[] = [];
  for (let at = 0; at < bzs.length; at += BLOCK_ENTRY_BYTES) {
    const offset = bzs.readUInt32LE(at);
    const size = bzs.readUInt32LE(at + 4);
    const expected = bzs.readUInt32LE(at + 8);
    if (offset + size > t.bzz.byteLength) {
      throw new SwordModuleError(`block ${blocks.length}`, `within the ${t.bzz.byteLength}-byte .bzz`, `bytes ${offset}..${offset + size}`, HINT);
    }
    const block = inflateSync(t.bzz.subarray(offset, offset + size));
    if (block.length !== expected) {
      throw new SwordModuleError(`block ${blocks.length} size`, `${expected} bytes inflated`, `${block.length}`, HINT);
    }
    blocks.push(block);
  }
  const entries: string[] = [];
  for (let at = 0; at < bzv.length; at += VERSE_ENTRY_BYTES) {
    const blockNumber = bzv.readUInt32LE(at);
    const offset = bzv.readUInt32LE(at + 4);
    const size = bzv.readUInt16LE(at + 8);
    if (size === 0) continue;
    const block = blocks[blockNumber];
    if (!block || offset + size > block.length) {
      throw new SwordModuleError(`verse entry ${at / VERSE_ENTRY_BYTES}`, `inside one of ${blocks.length} blocks`,
        `block ${blockNumber} bytes ${offset}..${offset + size}`, HINT);
    }
    entries.push(block.subarray(offset, offset + size).toString('utf8'));
  }
  return entries;
}

/** A book's start milestone (`<div osisID="Gen" sID=".." type="book"/>`); its end (`eID=`) has no osisID. */
const BOOK_START = /<div\b(?=[^>]*\bsID=)(?=[^>]*\bosisID=)[^>]*\btype="book"[^>]*>/;
const OSIS_ID = /\bosisID="([^"]+)"/;

/**
 * Verse entries (OSIS) of one or more testaments to one document per book, named `NN-<osisID>`
 * (01-Gen ... 66-Rev when both testaments are given in order). Entries before the first book (the
 * module header) are dropped.
 */
export function osisBooks(entries: readonly string[]): NamedText[] {
  const books: { id: string; parts: string[] }[] = [];
  for (const entry of entries) {
    const start = BOOK_START.exec(entry);
    if (start) books.push({ id: OSIS_ID.exec(start[0])?.[1] ?? `book${books.length + 1}`, parts: [] });
    books[books.length - 1]?.parts.push(entry);
  }
  return books
    .map((book, i) => ({ name: `${String(i + 1).padStart(2, '0')}-${book.id}`, text: osisToText(book.parts.join(' ')) }))
    .filter((book) => book.text.trim().length > 0);
}

/**
 * OSIS markup to plain text: notes (with their content) and headers' milestones dropped; a chapter
 * start, a paragraph marker and a title each begin a new paragraph; every other tag is removed and its
 * text kept (`<w lemma=...>palabra</w>` -> `palabra`); entities decoded; spaces collapsed.
 */
export function osisToText(osis: string): string {
  const text = osis
    .replace(/<note\b[^>]*\/>/g, '')
    .replace(/<note\b[^>]*>[\s\S]*?<\/note>/g, '')
    .replace(/<chapter\b[^>]*\bsID=[^>]*>/g, '\n\n')
    .replace(/<div\b[^>]*\btype="x-p"[^>]*\bsID=[^>]*>|<div\b[^>]*\bsID=[^>]*\btype="x-p"[^>]*>/g, '\n\n')
    .replace(/<title\b[^>]*>/g, '\n\n')
    .replace(/<\/title>/g, '\n\n')
    .replace(/<[^>]*>/g, '')
    .replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
  const paragraphs = text.split(/\n\s*\n/).map((p) => p.replace(/\s+/g, ' ').replace(/ ([,.;:!?])/g, '$1').trim());
  return paragraphs.filter((p) => p.length > 0).join('\n\n') + '\n';
}
