// GPT-2's byte-to-unicode table: every byte gets a printable character, so a byte-level token can be
// stored as ordinary text (in tokenizer.json, and in GGUF's tokenizer.ggml.tokens / merges).
//
// Printable Latin-1 bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') map to themselves; the other 68 bytes (control
// characters, space, DEL, NBSP, soft hyphen) map to U+0100, U+0101, ... in byte order. So the space
// byte 0x20 is 'Ġ' (U+0120) and '\n' is 'Ċ' (U+010A). Same table as unicode_byte_to_utf8_map() in
// llama.cpp's src/unicode.cpp and bytes_to_unicode() in GPT-2's encoder.py.

function buildByteToChar(): string[] {
  const table: (string | undefined)[] = new Array(256);
  const printable = (b: number): boolean =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let next = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = String.fromCodePoint(printable(b) ? b : 256 + next++);
  }
  return table as string[];
}

/** Byte value -> its one-character stand-in. */
export const BYTE_TO_CHAR: readonly string[] = buildByteToChar();

/** One-character stand-in -> byte value. */
export const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

/** Raw bytes to their byte-level token text (one character per byte). */
export function bytesToTokenText(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += BYTE_TO_CHAR[b];
  return out;
}

/** Byte-level token text back to raw bytes, or null when some character is not a byte stand-in. */
export function tokenTextToBytes(text: string): Uint8Array | null {
  const out: number[] = [];
  for (const ch of text) {
    const b = CHAR_TO_BYTE.get(ch);
    if (b === undefined) return null;
    out.push(b);
  }
  return Uint8Array.from(out);
}
