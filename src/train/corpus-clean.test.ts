import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanBrownSample, detokenize, normalizeText, splitChapters, unwrapParagraphs } from './corpus-clean.ts';

test('cleanBrownSample drops tags, turns `` and \'\' into ", re-attaches punctuation, keeps paragraphs', () => {
  const raw = [
    '',
    '',
    '\tThe/at Fulton/np-tl County/nn-tl Grand/jj-tl Jury/nn-tl said/vbd Friday/nr an/at investigation/nn of/in',
    "Atlanta's/np$ primary/nn produced/vbd ``/`` no/at evidence/nn ''/'' that/cs any/dti irregularities/nns took/vbd place/nn ./.",
    '',
    '',
    '\tHeadline/nn-hl ',
    "``/`` Only/rb a/at handful/nn ''/'' ,/, the/at jury/nn said/vbd (/( 1/2/cd of/in them/ppo )/) --/-- ok/uh ?/.",
    'It/pps was/bedz won/vbn by/in Ivan/np Allen/np Jr./np ./.',
  ].join('\n');
  assert.equal(
    cleanBrownSample(raw),
    'The Fulton County Grand Jury said Friday an investigation of Atlanta\'s primary produced "no evidence" that any ' +
      'irregularities took place.\n\nHeadline\n\n"Only a handful", the jury said (1/2 of them)--ok? It was won by Ivan Allen Jr.\n',
  );
});

test('detokenize attaches quotes and closing marks', () => {
  assert.equal(detokenize(['He', 'said', "'", 'no', "'", ',', 'then', 'left', '.']), "He said 'no', then left.");
  assert.equal(detokenize(['"', 'Yes', '!', '"', 'she', 'cried', ';', 'it', "'s", 'late', ':']), '"Yes!" she cried; it\'s late:');
});

test('unwrapParagraphs joins hard-wrapped lines and collapses blank runs', () => {
  assert.equal(unwrapParagraphs(['  one', 'two  three', '', '', '', 'four']), 'one two three\n\nfour');
  assert.deepEqual(unwrapParagraphs([]), '');
});

test('splitChapters makes one document per chapter and drops headings, volumes, the end and back matter', () => {
  const lines = [
    'EMMA', '', 'By Jane Austen', '', 'VOLUME I', '', 'CHAPTER I', '', 'Emma Woodhouse, handsome,', 'clever, and rich.',
    '', 'Chapter 2.', '', 'Second', 'chapter.', null, 'THE END', 'A NOTE ON THE TEXT', 'Editor text.',
  ];
  assert.deepEqual(splitChapters('emma', lines), [
    { name: 'emma-01', text: 'Emma Woodhouse, handsome, clever, and rich.\n' },
    { name: 'emma-02', text: 'Second chapter.\n' },
  ]);
  // A long front matter (a preface) is kept as chapter 00.
  const preface = ['PREFACE', '', 'x'.repeat(300), 'CHAPTER 1', 'Body.'];
  assert.deepEqual(splitChapters('book', preface).map((c) => c.name), ['book-00', 'book-01']);
});

test('normalizeText fixes line endings and trailing spaces', () => {
  assert.equal(normalizeText('a  \r\nb\rc\n\n\n'), 'a\nb\nc\n');
});
