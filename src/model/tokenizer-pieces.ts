// The bytes each token stands for, computed the way llama.cpp's `llama_vocab::token_to_piece` does
// (src/llama-vocab.cpp, with `special = false`).
//
// llama.cpp's detokenizer returns a string per call, and a single token may hold only part of a UTF-8
// character (SPM byte tokens like `<0xF0>`, BPE tokens that split an emoji), so a string per token loses
// bytes. Streaming needs the raw bytes of each token; this file derives them from the vocabulary text,
// the token attributes llama.cpp computed, and the vocabulary type. The tokenizer test checks the result
// against llama.cpp's own detokenizer for every token of every test vocabulary.

/** The token attributes that decide how a token turns into bytes (llama.cpp's `llama_token_attr`). */
export interface PieceAttributes {
  readonly unknown: boolean;
  readonly control: boolean;
  readonly userDefined: boolean;
  readonly normal: boolean;
  readonly byte: boolean;
}

/** How a vocabulary spells its tokens. */
export type PieceStyle =
  /** SentencePiece style (SPM, UGM, WPM, and BPE vocabularies that escape whitespace): `▁` is a space. */
  | 'sentencepiece'
  /** GPT-2 byte-level BPE: every byte is spelled as one printable code point. */
  | 'byte-level';

const SPM_SPACE = '\u2581'; // ▁
const utf8 = new TextEncoder();
const EMPTY = new Uint8Array(0);

/**
 * The bytes of one token as plain text: control and unknown tokens give no bytes (llama.cpp prints them
 * only when asked for special tokens), user-defined tokens give their text, normal tokens their unescaped
 * text, byte tokens (`<0xNN>`) their one byte.
 */
export function pieceBytes(text: string, attr: PieceAttributes, style: PieceStyle): Uint8Array {
  if (attr.unknown || attr.control) return EMPTY;
  if (attr.userDefined) return utf8.encode(text);
  if (attr.normal) {
    if (style === 'sentencepiece') return utf8.encode(text.replaceAll(SPM_SPACE, ' '));
    return decodeByteLevel(text);
  }
  if (attr.byte) return Uint8Array.of(byteTokenValue(text));
  return EMPTY;
}

/** The byte of an SPM byte token: `<0x0A>` is 10 (llama.cpp reads the two hex digits at offset 3). */
function byteTokenValue(text: string): number {
  const value = Number.parseInt(text.slice(3, 5), 16);
  return Number.isNaN(value) ? 0 : value & 0xff;
}

/**
 * GPT-2's byte-to-unicode table, reversed: printable Latin-1 bytes stand for themselves, the other 68 bytes
 * are spelled as U+0100 upwards in byte order (llama.cpp's `unicode_utf8_to_byte_map`).
 */
const byteLevelDecoder: ReadonlyMap<number, number> = (() => {
  const map = new Map<number, number>();
  const printable = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  for (let b = 0; b < 256; b++) if (printable(b)) map.set(b, b);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!printable(b)) {
      map.set(256 + n, b);
      n++;
    }
  }
  return map;
})();

/** llama.cpp's `llama_decode_text`: map every code point back to its byte. */
function decodeByteLevel(text: string): Uint8Array {
  const out: number[] = [];
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    const byte = byteLevelDecoder.get(cp);
    if (byte !== undefined) {
      out.push(byte);
    } else {
      // Same marker llama.cpp writes for a code point outside the table.
      const hex = Array.from(utf8.encode(ch), (b) => b.toString(16).padStart(2, '0')).join('');
      for (const b of utf8.encode(`[UNK_BYTE_0x${hex}${text}]`)) out.push(b);
    }
  }
  return Uint8Array.from(out);
}
