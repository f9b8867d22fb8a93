// Cleaning rules that turn the raw form of each corpus source into plain prose (paragraphs separated by
// one blank line, no hard wraps, no annotations). Pure functions; scripts/fetch-corpora.ts applies them.

/** Marks that attach to the word before them: no space in front. */
const CLOSING = new Set(['.', ',', ';', ':', '!', '?', ')', ']', '}']);
/** Marks that attach to the word after them: no space behind. */
const OPENING = new Set(['(', '[', '{']);

/**
 * One Brown corpus sample (form C, `word/tag` tokens) to plain text: drop each token's `/tag`, turn
 * `` and '' into ", re-attach punctuation to its word. Sentences of one paragraph are on consecutive
 * lines and paragraphs are separated by blank lines; a headline line (every tag ending in `-hl`) becomes
 * a paragraph of its own.
 */
export function cleanBrownSample(raw: string): string {
  const paragraphs: string[] = [];
  for (const block of raw.split(/\n[ \t]*\n/)) {
    let words: string[] = [];
    const flush = (): void => {
      if (words.length > 0) paragraphs.push(detokenize(words));
      words = [];
    };
    for (const line of block.split('\n')) {
      const tokens = line.split(/\s+/).filter((t) => t.length > 0);
      if (tokens.length === 0) continue;
      const headline = tokens.every((t) => /\/[^/]*-hl$/.test(t));
      if (headline) flush();
      words.push(...tokens.map(brownWord));
      if (headline) flush();
    }
    flush();
  }
  return paragraphs.join('\n\n') + '\n';
}

/** `word/tag` to its word; the tag follows the last slash (words may hold slashes: `1/2/cd`). */
function brownWord(token: string): string {
  const slash = token.lastIndexOf('/');
  const word = slash > 0 ? token.slice(0, slash) : token;
  if (word === '``' || word === "''") return '"';
  return word;
}

/**
 * Joins tokenized words into prose. Double quotes alternate open/close; an open quote attaches to the
 * word after it, a close quote to the word before. Single-quote tokens (`'`) do the same, tracked apart.
 */
export function detokenize(words: readonly string[]): string {
  let out = '';
  let glueNext = true; // no space before the next word (start of text, or after an opening mark)
  let doubleOpen = false;
  let singleOpen = false;
  for (const word of words) {
    let attachLeft = CLOSING.has(word) || word === '--';
    let attachRight = OPENING.has(word) || word === '--';
    if (word === '"') {
      doubleOpen = !doubleOpen;
      attachLeft = !doubleOpen;
      attachRight = doubleOpen;
    } else if (word === "'") {
      singleOpen = !singleOpen;
      attachLeft = !singleOpen;
      attachRight = singleOpen;
    } else if (/^'(s|d|m|ll|re|ve)$/i.test(word) || /^n't$/i.test(word)) {
      attachLeft = true; // split contractions, should a source hold them
    }
    if (word === '.' && out.endsWith('.')) continue; // "Jr." ending a sentence: one period, not two
    if (out.length > 0 && !glueNext && !attachLeft) out += ' ';
    out += word;
    glueNext = attachRight;
  }
  return out;
}

/**
 * Hard-wrapped lines (Project Gutenberg style) to paragraphs: lines of one paragraph are trimmed and
 * joined by a space; empty lines separate paragraphs; runs of blank lines collapse to one.
 */
export function unwrapParagraphs(lines: readonly string[]): string {
  const paragraphs: string[] = [];
  let current: string[] = [];
  const flush = (): void => {
    if (current.length > 0) paragraphs.push(current.join(' '));
    current = [];
  };
  for (const line of lines) {
    const trimmed = line.trim().replace(/[ \t]+/g, ' ');
    if (trimmed.length === 0) flush();
    else current.push(trimmed);
  }
  flush();
  return paragraphs.join('\n\n');
}

const CHAPTER_HEADING = /^\s*chapter\s+([ivxlc]+|\d+)\.?\s*$/i;
const VOLUME_HEADING = /^\s*volume\s+([ivxlc]+|\d+)\.?\s*$/i;
const END_MARK = /^\s*(finis|the end)\s*$/i;
/** An editor's note after the novel (Northanger Abbey's Signet edition): the book stops here. */
const BACK_MATTER = /^\s*a note on the text\s*$/i;

export interface NamedText {
  name: string;
  text: string;
}

/**
 * A novel given as lines (janeaustenr's form) to one document per chapter, named `<book>-NN`.
 * The front matter (title page) is kept as `<book>-00` only if it holds real prose (a preface);
 * volume headings and the closing "THE END"/"FINIS" line are dropped, and so is an editor's
 * "A NOTE ON THE TEXT" at the end.
 */
export function splitChapters(book: string, lines: readonly (string | null)[], minFrontMatter = 200): NamedText[] {
  const chapters: string[][] = [[]];
  for (const line of lines) {
    if (line !== null && BACK_MATTER.test(line)) break;
    if (line === null || VOLUME_HEADING.test(line) || END_MARK.test(line)) continue;
    if (CHAPTER_HEADING.test(line)) chapters.push([]);
    else chapters[chapters.length - 1]?.push(line);
  }
  const out: NamedText[] = [];
  chapters.forEach((chapter, i) => {
    const text = unwrapParagraphs(chapter);
    if (i === 0 && text.length < minFrontMatter) return;
    if (text.length > 0) out.push({ name: `${book}-${String(i).padStart(2, '0')}`, text: text + '\n' });
  });
  return out;
}

/** Normalises line endings and trims trailing spaces; ensures one final newline. */
export function normalizeText(text: string): string {
  return text.replace(/\r\n?/g, '\n').replace(/[ \t]+$/gm, '').replace(/\n*$/, '\n');
}
