// Grammar-constrained sampling for JSON (OpenAI's `response_format: { type: 'json_object' }`): the sampler
// may only choose tokens that keep the text a prefix of one JSON object, and the end-of-generation token
// only once the object is complete.
//
// The grammar is a pushdown automaton over bytes (JsonState): a stack of open containers and the state
// inside the current value. A token is allowed when its bytes, fed one by one, keep the automaton alive.
// Checking all the vocabulary costs one pass over every token's bytes, so the sampler first tries the token
// it would pick anyway and masks the vocabulary only when that token is refused (llama.cpp's order).
//
// The output always parses, even when the token budget runs out: a token is allowed only if what is left
// of the budget still covers the shortest way to close the object (closeCost, one token per character;
// byte-level and byte-fallback vocabularies have a token for every character), so near the end the object
// closes itself.
import type { TokenConstraint } from './sampler.ts';

/** Where the automaton is. Values after the stack's top container decide what may come next. */
const enum Mode {
  Top, // before the object: '{' only
  Value, // a value must come (after ':' or ',' in an array)
  ValueOrClose, // after '[': a value or ']'
  KeyOrClose, // after '{': a key or '}'
  Key, // after ',' in an object: a key
  Colon, // after a key: ':'
  CommaOrClose, // after a value in a container
  String, // inside a string (key or value)
  Escape, // after '\' in a string
  Unicode, // inside \uXXXX
  NumSign, // after '-'
  NumZero, // a leading 0
  NumInt, // integer digits
  NumDot, // after '.'
  NumFrac, // fraction digits
  NumExp, // after 'e'
  NumExpSign, // after 'e+' / 'e-'
  NumExpDigits, // exponent digits
  Literal, // inside true / false / null
  Done, // the object is complete
}

/** Whitespace in a row that the grammar accepts (pretty-printing indents; more is a model stuck on spaces). */
const MAX_WHITESPACE_RUN = 16;

class JsonState {
  stack = ''; // open containers, '{' or '['
  mode = Mode.Top;
  isKey = false; // the string being read is an object key
  pending = ''; // the rest of a literal, or hex digits left (as their count in `hex`)
  hex = 0;
  whitespace = 0;

  clone(): JsonState {
    const s = new JsonState();
    s.stack = this.stack;
    s.mode = this.mode;
    s.isKey = this.isKey;
    s.pending = this.pending;
    s.hex = this.hex;
    s.whitespace = this.whitespace;
    return s;
  }

  /** Feeds one byte; false when no JSON object starts with the text so far. */
  feed(c: number): boolean {
    const ch = String.fromCharCode(c);
    switch (this.mode) {
      case Mode.String:
        if (c === 0x22) return this.endString();
        if (c === 0x5c) this.mode = Mode.Escape;
        else if (c < 0x20) return false;
        return true;
      case Mode.Escape:
        if (ch === 'u') {
          this.mode = Mode.Unicode;
          this.hex = 4;
          return true;
        }
        if (!'"\\/bfnrt'.includes(ch)) return false;
        this.mode = Mode.String;
        return true;
      case Mode.Unicode:
        if (!/[0-9a-fA-F]/.test(ch)) return false;
        if (--this.hex === 0) this.mode = Mode.String;
        return true;
      case Mode.Literal:
        if (ch !== this.pending[0]) return false;
        this.pending = this.pending.slice(1);
        if (this.pending === '') this.endValue();
        return true;
      case Mode.NumSign:
        if (ch === '0') this.mode = Mode.NumZero;
        else if (isDigit(c)) this.mode = Mode.NumInt;
        else return false;
        return true;
      case Mode.NumZero:
      case Mode.NumInt:
        if (isDigit(c) && this.mode === Mode.NumInt) return true;
        if (ch === '.') this.mode = Mode.NumDot;
        else if (ch === 'e' || ch === 'E') this.mode = Mode.NumExp;
        else return this.endNumber(c);
        return true;
      case Mode.NumDot:
        if (!isDigit(c)) return false;
        this.mode = Mode.NumFrac;
        return true;
      case Mode.NumFrac:
        if (isDigit(c)) return true;
        if (ch === 'e' || ch === 'E') {
          this.mode = Mode.NumExp;
          return true;
        }
        return this.endNumber(c);
      case Mode.NumExp:
        if (ch === '+' || ch === '-') this.mode = Mode.NumExpSign;
        else if (isDigit(c)) this.mode = Mode.NumExpDigits;
        else return false;
        return true;
      case Mode.NumExpSign:
        if (!isDigit(c)) return false;
        this.mode = Mode.NumExpDigits;
        return true;
      case Mode.NumExpDigits:
        return isDigit(c) || this.endNumber(c);
      default:
        return this.structural(c);
    }
  }

  /** Outside strings, numbers and literals: whitespace, punctuation, the start of a value. */
  private structural(c: number): boolean {
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
      if (this.mode === Mode.Done) return false;
      // Before the object, one space (a tokenizer's word-initial space); inside, indentation.
      return ++this.whitespace <= (this.mode === Mode.Top ? 1 : MAX_WHITESPACE_RUN);
    }
    this.whitespace = 0;
    const ch = String.fromCharCode(c);
    switch (this.mode) {
      case Mode.Top:
        if (ch !== '{') return false;
        this.stack += '{';
        this.mode = Mode.KeyOrClose;
        return true;
      case Mode.KeyOrClose:
      case Mode.Key:
        if (ch === '"') {
          this.mode = Mode.String;
          this.isKey = true;
          return true;
        }
        return this.mode === Mode.KeyOrClose && ch === '}' && this.close('{');
      case Mode.Colon:
        if (ch !== ':') return false;
        this.mode = Mode.Value;
        return true;
      case Mode.CommaOrClose: {
        const top = this.stack.at(-1);
        if (ch === ',') {
          this.mode = top === '{' ? Mode.Key : Mode.Value;
          return true;
        }
        return (ch === '}' && top === '{' && this.close('{')) || (ch === ']' && top === '[' && this.close('['));
      }
      case Mode.ValueOrClose:
        if (ch === ']') return this.close('[');
        return this.startValue(ch);
      case Mode.Value:
        return this.startValue(ch);
      default:
        return false; // Done
    }
  }

  private startValue(ch: string): boolean {
    if (ch === '{') {
      this.stack += '{';
      this.mode = Mode.KeyOrClose;
    } else if (ch === '[') {
      this.stack += '[';
      this.mode = Mode.ValueOrClose;
    } else if (ch === '"') {
      this.mode = Mode.String;
      this.isKey = false;
    } else if (ch === '-') this.mode = Mode.NumSign;
    else if (ch === '0') this.mode = Mode.NumZero;
    else if (ch >= '1' && ch <= '9') this.mode = Mode.NumInt;
    else if (ch === 't' || ch === 'f' || ch === 'n') {
      this.mode = Mode.Literal;
      this.pending = (ch === 't' ? 'true' : ch === 'f' ? 'false' : 'null').slice(1);
    } else return false;
    return true;
  }

  private endString(): boolean {
    if (this.isKey) this.mode = Mode.Colon;
    else this.endValue();
    return true;
  }

  /** A number ends at the first byte that cannot continue it; that byte belongs to what follows. */
  private endNumber(c: number): boolean {
    this.endValue();
    return this.structural(c);
  }

  private close(open: '{' | '['): boolean {
    if (this.stack.at(-1) !== open) return false;
    this.stack = this.stack.slice(0, -1);
    this.endValue();
    return true;
  }

  private endValue(): void {
    this.mode = this.stack === '' ? Mode.Done : Mode.CommaOrClose;
  }

  /** The fewest characters that complete the object from here. */
  closeCost(): number {
    return this.stack.length + this.modeCost();
  }

  private modeCost(): number {
    const inString = this.isKey ? 3 : 1; // '":0' or '"'
    switch (this.mode) {
      case Mode.Top:
        return 2; // '{}'
      case Mode.Value:
      case Mode.NumSign:
      case Mode.NumDot:
      case Mode.NumExp:
      case Mode.NumExpSign:
        return 1; // a digit
      case Mode.Key:
        return 4; // '"":0'
      case Mode.Colon:
        return 2; // ':0'
      case Mode.String:
        return inString;
      case Mode.Escape:
        return 1 + inString;
      case Mode.Unicode:
        return this.hex + inString;
      case Mode.Literal:
        return this.pending.length;
      default:
        return 0; // a container may close, a number may end, or the object is done
    }
  }

  get done(): boolean {
    return this.mode === Mode.Done;
  }

  get inString(): boolean {
    return this.mode === Mode.String;
  }
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** What the constraint needs of a tokenizer. */
export interface ConstraintVocabulary {
  readonly vocabSize: number;
  tokenBytes(id: number): Uint8Array;
  isEndOfGeneration(id: number): boolean;
  isControl(id: number): boolean;
}

/**
 * A TokenConstraint for one generation: the text is one JSON object, complete within `maxTokens` tokens.
 * Control tokens are never allowed; end-of-generation tokens only once the object is complete.
 */
export function jsonObjectConstraint(vocabulary: ConstraintVocabulary, maxTokens: number): TokenConstraint {
  const tokens = jsonTokenTable(vocabulary);
  let state = new JsonState();
  let used = 0;
  // Which first bytes the current state takes: most tokens are refused on their first byte without a clone.
  let firstByteOk: Uint8Array | undefined;
  const after = (token: number): JsonState | undefined => {
    const t = tokens[token];
    if (t === undefined || t.kind === 'control') return undefined;
    if (t.kind === 'end') return state.done ? state : undefined;
    // Inside a string, a token of plain characters leaves the state as it is.
    if (t.plain && state.inString) return state;
    firstByteOk ??= firstBytes(state);
    return feedToken(state, t.bytes, firstByteOk);
  };
  return {
    allows(token: number): boolean {
      if (state.done) return tokens[token]?.kind === 'end';
      const next = after(token);
      return next !== undefined && next.closeCost() <= maxTokens - used - 1;
    },
    accept(token: number): void {
      const next = after(token) ?? state;
      state = next === state ? state.clone() : next;
      firstByteOk = undefined;
      used++;
    },
  };
}

export interface TokenInfo {
  bytes: Uint8Array;
  kind: 'text' | 'end' | 'control';
  /** Only characters a string may hold as they are (no '"', '\\' or control characters). */
  plain: boolean;
}

/** Every token's bytes and kind, read once per vocabulary; undefined for a token with no bytes. */
const tableCache = new WeakMap<ConstraintVocabulary, (TokenInfo | undefined)[]>();
export function jsonTokenTable(vocabulary: ConstraintVocabulary): (TokenInfo | undefined)[] {
  let table = tableCache.get(vocabulary);
  if (table !== undefined) return table;
  table = [];
  for (let id = 0; id < vocabulary.vocabSize; id++) {
    const kind = vocabulary.isEndOfGeneration(id) ? 'end' : vocabulary.isControl(id) ? 'control' : 'text';
    let bytes: Uint8Array;
    try {
      bytes = vocabulary.tokenBytes(id);
    } catch {
      table.push(kind === 'text' ? undefined : { bytes: new Uint8Array(0), kind, plain: false });
      continue;
    }
    if (kind === 'text' && bytes.length === 0) {
      table.push(undefined);
      continue;
    }
    table.push({ bytes, kind, plain: bytes.every((c) => c >= 0x20 && c !== 0x22 && c !== 0x5c) });
  }
  tableCache.set(vocabulary, table);
  return table;
}

/** A grammar state that takes one byte at a time (JSON values, schema grammars). */
interface ByteState<S> {
  clone(): S;
  feed(c: number): boolean;
}

/** Which first bytes `state` can take at all (1) or not (0): a filter computed once per state. */
export function firstBytes<S extends ByteState<S>>(state: S): Uint8Array {
  const ok = new Uint8Array(256);
  for (let c = 0; c < 256; c++) ok[c] = state.clone().feed(c) ? 1 : 0;
  return ok;
}

/** The state after a token's bytes, or undefined when the grammar refuses one of them. */
export function feedToken<S extends ByteState<S>>(state: S, bytes: Uint8Array, firstByteOk: Uint8Array): S | undefined {
  if (bytes.length > 0 && firstByteOk[bytes[0]!] === 0) return undefined;
  const next = state.clone();
  for (const c of bytes) if (!next.feed(c)) return undefined;
  return next;
}
