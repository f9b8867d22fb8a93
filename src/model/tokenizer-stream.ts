// Turning generated tokens into text one token at a time.
//
// A token may end in the middle of a UTF-8 character (an emoji is often two or four tokens), so the text of
// a token cannot always be printed on its own. The decoder keeps the incomplete tail and emits it once the
// character is complete. The text is the plain concatenation of the token pieces, which is what llama.cpp's
// server streams (`common_token_to_piece` per token): no leading-space stripping, no space clean-up.

/** Gives the bytes of a token; the tokenizer provides it. */
export type TokenBytesFn = (id: number) => Uint8Array;

export class TokenStreamDecoder {
  readonly #bytesOf: TokenBytesFn;
  readonly #decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

  constructor(bytesOf: TokenBytesFn) {
    this.#bytesOf = bytesOf;
  }

  /** Adds one token; returns the characters it completed ('' while a character is still split). */
  push(id: number): string {
    return this.#decoder.decode(this.#bytesOf(id), { stream: true });
  }

  /** Ends the stream: returns what is left, with an incomplete character as U+FFFD, and starts afresh. */
  flush(): string {
    return this.#decoder.decode(); // a call without `stream` also resets the decoder
  }
}
