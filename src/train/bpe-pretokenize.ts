// GPT-2's pre-tokenizer: the text is cut into "words" before BPE, and merges never cross a word boundary.
//
// The regex (GPT-2's encoder.py; llama.cpp's LLAMA_VOCAB_PRE_TYPE_GPT2, tokenizer.ggml.pre = "gpt-2"):
//
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// llama.cpp does not run this regex; it runs a hand-written matcher, unicode_regex_split_custom_gpt2()
// in src/unicode.cpp. `gpt2Split` below is a line-by-line port of that matcher, so that our encode()
// cuts words exactly where llama.cpp does, with llama.cpp's whitespace set (which is not JavaScript's \s:
// it has U+0085 and lacks U+FEFF) and its letter/number classes (Unicode categories L* and N*).

const LETTER = 1;
const NUMBER = 2;
const WHITESPACE = 4;
/** Set for every code point inside the text; llama.cpp's "flags.as_uint() != 0". */
const IN_RANGE = 8;

/** unicode_set_whitespace in llama.cpp's src/unicode-data.cpp. */
const LLAMA_WHITESPACE = new Set([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005,
  0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);

const LETTER_RE = /^\p{L}$/u;
const NUMBER_RE = /^\p{N}$/u;

function computeFlags(cp: number): number {
  const ch = String.fromCodePoint(cp);
  let flags = IN_RANGE;
  if (LETTER_RE.test(ch)) flags |= LETTER;
  if (NUMBER_RE.test(ch)) flags |= NUMBER;
  if (LLAMA_WHITESPACE.has(cp)) flags |= WHITESPACE;
  return flags;
}

let bmpFlags: Uint8Array | undefined;
const astralFlags = new Map<number, number>();

/** Character-class flags of a code point (BMP from a table built on first use, the rest memoised). */
function flagsOf(cp: number): number {
  if (cp < 0x10000) {
    if (!bmpFlags) {
      bmpFlags = new Uint8Array(0x10000);
      for (let c = 0; c < 0x10000; c++) {
        // Lone surrogates cannot be tested by regex; llama.cpp never sees them (they become U+FFFD in UTF-8).
        bmpFlags[c] = c >= 0xd800 && c <= 0xdfff ? IN_RANGE : computeFlags(c);
      }
    }
    return bmpFlags[cp] ?? IN_RANGE;
  }
  let flags = astralFlags.get(cp);
  if (flags === undefined) {
    flags = computeFlags(cp);
    astralFlags.set(cp, flags);
  }
  return flags;
}

const APOSTROPHE = 0x27;
const SPACE = 0x20;
const [s, t, m, d, r, e, v, l] = [...'stmdrevl'].map((c) => c.charCodeAt(0)) as [
  number, number, number, number, number, number, number, number,
];

/**
 * Splits text into GPT-2 pre-tokenizer words, exactly as llama.cpp's unicode_regex_split_custom_gpt2.
 * The words concatenate back to the input.
 */
export function gpt2Split(text: string): string[] {
  // Code points, and where each starts in the UTF-16 string (so words can be sliced out of `text`).
  const cps = new Int32Array(text.length);
  const at = new Int32Array(text.length + 1);
  let n = 0;
  for (let i = 0; i < text.length; ) {
    let cp = text.codePointAt(i) as number;
    const width = cp > 0xffff ? 2 : 1;
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd; // lone surrogate: UTF-8 encoding makes it U+FFFD
    cps[n] = cp;
    at[n] = i;
    n++;
    i += width;
  }
  at[n] = text.length;

  const words: string[] = [];
  const flagsAt = (pos: number): number => (pos < n ? flagsOf(cps[pos] as number) : 0);
  const cpAt = (pos: number): number => (pos < n ? (cps[pos] as number) : -1);
  let prevEnd = 0;
  /** Emits the word [prevEnd, end); returns its length in code points. */
  const addToken = (end: number): number => {
    const len = end - prevEnd;
    if (len > 0) words.push(text.slice(at[prevEnd], at[end]));
    prevEnd = end;
    return len;
  };

  for (let pos = 0; pos < n; ) {
    const cpt = cps[pos] as number;
    const flags = flagsOf(cpt);

    // regex: 's|'t|'re|'ve|'m|'ll|'d  (lower case only, as in GPT-2)
    if (cpt === APOSTROPHE && pos + 1 < n) {
      const next = cpAt(pos + 1);
      if (next === s || next === t || next === m || next === d) {
        pos += addToken(pos + 2);
        continue;
      }
      if (pos + 2 < n) {
        const nextNext = cpAt(pos + 2);
        if ((next === r && nextNext === e) || (next === v && nextNext === e) || (next === l && nextNext === l)) {
          pos += addToken(pos + 3);
          continue;
        }
      }
    }

    let flags2 = cpt === SPACE ? flagsAt(pos + 1) : flags;
    // regex: <space>?\p{L}+
    if (flags2 & LETTER) {
      if (cpt === SPACE) pos++;
      while (flags2 & LETTER) flags2 = flagsAt(++pos);
      addToken(pos);
      continue;
    }
    // regex: <space>?\p{N}+
    if (flags2 & NUMBER) {
      if (cpt === SPACE) pos++;
      while (flags2 & NUMBER) flags2 = flagsAt(++pos);
      addToken(pos);
      continue;
    }
    // regex: <space>?[^\s\p{L}\p{N}]+
    const isOther = (f: number): boolean => (f & (WHITESPACE | LETTER | NUMBER)) === 0 && f !== 0;
    if (isOther(flags2)) {
      if (cpt === SPACE) pos++;
      while (isOther(flags2)) flags2 = flagsAt(++pos);
      addToken(pos);
      continue;
    }

    let numWhitespaces = 0;
    while (flagsAt(pos + numWhitespaces) & WHITESPACE) numWhitespaces++;

    // regex: \s+(?!\S)  (all but the last whitespace when more text follows)
    if (numWhitespaces > 1 && cpAt(pos + numWhitespaces) !== -1) {
      pos += numWhitespaces - 1;
      addToken(pos);
      continue;
    }
    // regex: \s+
    if (numWhitespaces > 0) {
      pos += numWhitespaces;
      addToken(pos);
      continue;
    }
    // no match: a single code point
    addToken(++pos);
  }
  return words;
}

/** A piece of text between special tokens, or a special token itself. */
export type Fragment = { kind: 'text'; text: string } | { kind: 'special'; id: number };

/**
 * Cuts `text` at occurrences of special tokens, as llama.cpp's tokenizer_st_partition does: specials are
 * tried longest first, each one cutting every text fragment left from the previous ones.
 */
export function splitSpecial(text: string, specials: ReadonlyMap<string, number>): Fragment[] {
  let fragments: Fragment[] = text.length > 0 ? [{ kind: 'text', text }] : [];
  const ordered = [...specials].sort((a, b) => utf8Length(b[0]) - utf8Length(a[0]));
  for (const [special, id] of ordered) {
    if (special.length === 0) continue;
    const next: Fragment[] = [];
    for (const fragment of fragments) {
      if (fragment.kind === 'special') {
        next.push(fragment);
        continue;
      }
      let rest = fragment.text;
      for (let hit = rest.indexOf(special); hit >= 0; hit = rest.indexOf(special)) {
        if (hit > 0) next.push({ kind: 'text', text: rest.slice(0, hit) });
        next.push({ kind: 'special', id });
        rest = rest.slice(hit + special.length);
      }
      if (rest.length > 0) next.push({ kind: 'text', text: rest });
    }
    fragments = next;
  }
  return fragments;
}

const encoder = new TextEncoder();
function utf8Length(text: string): number {
  return encoder.encode(text).length;
}
