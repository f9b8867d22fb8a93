import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deflateSync } from 'node:zlib';
import { osisBooks, osisToText, readZTextEntries, SwordModuleError, type ZTextTestament } from './corpus-sword.ts';

/** A zText testament of one block per book (BlockType=BOOK), entries given as [block, text]. */
function makeTestament(books: string[][]): ZTextTestament {
  const blocks = books.map((verses) => Buffer.from(verses.join(''), 'utf8'));
  const compressed = blocks.map((b) => deflateSync(b));
  const bzs = Buffer.alloc(12 * blocks.length);
  let offset = 0;
  compressed.forEach((c, i) => {
    bzs.writeUInt32LE(offset, 12 * i);
    bzs.writeUInt32LE(c.length, 12 * i + 4);
    bzs.writeUInt32LE(blocks[i]?.length ?? 0, 12 * i + 8);
    offset += c.length;
  });
  const index: Buffer[] = [];
  books.forEach((verses, b) => {
    let at = 0;
    for (const v of verses) {
      const e = Buffer.alloc(10);
      e.writeUInt32LE(b, 0);
      e.writeUInt32LE(at, 4);
      e.writeUInt16LE(Buffer.byteLength(v), 8);
      index.push(e);
      at += Buffer.byteLength(v);
    }
    index.push(Buffer.alloc(10)); // an empty entry (size 0), as a chapter intro without text
  });
  return { bzs, bzv: Buffer.concat(index), bzz: Buffer.concat(compressed) };
}

test('readZTextEntries inflates the blocks and returns the non-empty entries in order', () => {
  const t = makeTestament([['<milestone/>'], ['<div osisID="Gen" sID="g1" type="book"/>', 'EN el principio. ', 'Y la tierra. '], ['<div eID="g1" type="book"/>']]);
  assert.deepEqual(readZTextEntries(t), ['<milestone/>', '<div osisID="Gen" sID="g1" type="book"/>', 'EN el principio. ', 'Y la tierra. ', '<div eID="g1" type="book"/>']);
});

test('readZTextEntries refuses a damaged index with a typed error', () => {
  const t = makeTestament([['abc']]);
  assert.throws(() => readZTextEntries({ ...t, bzs: t.bzs.subarray(0, 7) }), SwordModuleError);
  assert.throws(() => readZTextEntries({ ...t, bzz: t.bzz.subarray(0, 2) }), SwordModuleError);
});

test('osisToText keeps words, drops notes and tags, breaks paragraphs at chapters, paragraphs and titles', () => {
  const osis = '<title level="1" type="main">Génesis</title> <div sID="p1" type="x-p"/>' +
    '<chapter n="1" osisID="Gen.1" sID="Gen.1"/> <w lemma="strong:H7225">EN el principio</w> <w lemma="strong:H1254">crió</w> ' +
    '<w>Dios</w> . <note type="x-study">a study note</note>Y <div type="x-p" sID="p2"/>dijo &amp; vió.';
  assert.equal(osisToText(osis), 'Génesis\n\nEN el principio crió Dios. Y\n\ndijo & vió.\n');
});

test('osisBooks makes one document per book from its start milestone, numbered in order; the end milestone is no book', () => {
  const entries = ['<milestone type="x-importer"/>',
    '<div canonical="true" osisID="Gen" sID="gen2" type="book"/><title>Génesis</title>', '<w>Uno</w>.', '<div eID="gen2" type="book"/>',
    '<div canonical="true" osisID="Exod" sID="gen3" type="book"/>', '<w>Dos</w>.'];
  assert.deepEqual(osisBooks(entries), [{ name: '01-Gen', text: 'Génesis\n\nUno.\n' }, { name: '02-Exod', text: 'Dos.\n' }]);
});
