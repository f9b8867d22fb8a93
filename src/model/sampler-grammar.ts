// The byte automata that JSON Schema grammars are built from (sampler-schema.ts compiles a schema into a
// tree of them): literals, whitespace, JSON strings and numbers, alternatives, sequences and arrays.
// Contract: feed() returning false leaves a node unusable, so a parent asks `canEnd` BEFORE feeding a byte
// that the child may refuse (a number ends at the first byte that cannot continue it).
/** One automaton: fed bytes, it says whether the text so far is still a prefix of its language. */
export interface GrammarNode {
  /** Consumes one byte; false (and the node is then unusable) when no text of the language continues so. */
  feed(c: number): boolean;
  /** The text so far is a whole text of the language (it may still continue, as a number may). */
  readonly canEnd: boolean;
  /** The fewest characters that make the text so far whole. */
  cost(): number;
  clone(): GrammarNode;
  /** Inside the characters of a string: any byte but '"', '\\' and control characters leaves the node as it is. */
  inString(): boolean;
}

export type Factory = () => GrammarNode;

/** Whitespace runs the grammar accepts between tokens of structure (indentation). */
const MAX_WHITESPACE_RUN = 16;

export class Literal implements GrammarNode {
  constructor(
    private readonly text: Uint8Array,
    private at = 0,
  ) {}
  feed(c: number): boolean {
    return this.text[this.at] === c && ++this.at > 0;
  }
  get canEnd(): boolean {
    return this.at === this.text.length;
  }
  cost(): number {
    return this.text.length - this.at;
  }
  inString(): boolean {
    return false;
  }
  clone(): GrammarNode {
    return new Literal(this.text, this.at);
  }
}

export class Whitespace implements GrammarNode {
  constructor(private run = 0) {}
  feed(c: number): boolean {
    return (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) && ++this.run <= MAX_WHITESPACE_RUN;
  }
  readonly canEnd = true;
  cost(): number {
    return 0;
  }
  inString(): boolean {
    return false;
  }
  clone(): GrammarNode {
    return new Whitespace(this.run);
  }
}

/** A JSON string: '"', characters and escapes, '"'. */
export class JsonString implements GrammarNode {
  constructor(
    private state: 'open' | 'in' | 'escape' | 'closed' = 'open',
    private hex = 0,
  ) {}
  feed(c: number): boolean {
    switch (this.state) {
      case 'open':
        if (c !== 0x22) return false;
        this.state = 'in';
        return true;
      case 'in':
        if (this.hex > 0) {
          if (!isHex(c)) return false;
          this.hex--;
          return true;
        }
        if (c === 0x22) this.state = 'closed';
        else if (c === 0x5c) this.state = 'escape';
        else if (c < 0x20) return false;
        return true;
      case 'escape':
        this.state = 'in';
        if (c === 0x75) this.hex = 4; // \u
        else if (!'"\\/bfnrt'.includes(String.fromCharCode(c))) return false;
        return true;
      default:
        return false;
    }
  }
  get canEnd(): boolean {
    return this.state === 'closed';
  }
  cost(): number {
    return this.state === 'open' ? 2 : this.state === 'escape' ? 2 : this.state === 'in' ? this.hex + 1 : 0;
  }
  inString(): boolean {
    return this.state === 'in' && this.hex === 0;
  }
  clone(): GrammarNode {
    return new JsonString(this.state, this.hex);
  }
}

/**
 * Digits a number may have before the point, and in its exponent: within them every number is finite and an
 * integer is exact in a double (JSON.parse would turn 1e999 into Infinity).
 */
export const MAX_INT_DIGITS = 15;
const MAX_EXP_DIGITS = 2;

/** A JSON number (an integer when `integer`). States: where the text stands in JSON's number syntax. */
export class JsonNumber implements GrammarNode {
  constructor(
    private readonly integer: boolean,
    private readonly negative: boolean, // whether a '-' may start it
    private state: 'start' | 'sign' | 'zero' | 'int' | 'dot' | 'frac' | 'e' | 'esign' | 'exp' = 'start',
    private digits = 0, // in the current run (integer part or exponent)
  ) {}
  feed(c: number): boolean {
    const digit = c >= 0x30 && c <= 0x39;
    const s = this.state;
    if ((s === 'start' || s === 'sign') && digit) {
      this.state = c === 0x30 ? 'zero' : 'int';
      this.digits = 1;
    } else if (s === 'start' && c === 0x2d && this.negative) this.state = 'sign';
    else if (s === 'int' && digit) return ++this.digits <= MAX_INT_DIGITS;
    else if (s === 'frac' && digit) return true;
    else if (s === 'exp' && digit) return ++this.digits <= MAX_EXP_DIGITS;
    else if ((s === 'int' || s === 'zero') && c === 0x2e && !this.integer) this.state = 'dot';
    else if (s === 'dot' && digit) this.state = 'frac';
    else if ((s === 'int' || s === 'zero' || s === 'frac') && (c === 0x65 || c === 0x45) && !this.integer) this.state = 'e';
    else if (s === 'e' && (c === 0x2b || c === 0x2d)) this.state = 'esign';
    else if ((s === 'e' || s === 'esign') && digit) {
      this.state = 'exp';
      this.digits = 1;
    } else return false;
    return true;
  }
  get canEnd(): boolean {
    return this.state === 'zero' || this.state === 'int' || this.state === 'frac' || this.state === 'exp';
  }
  cost(): number {
    return this.canEnd ? 0 : 1;
  }
  inString(): boolean {
    return false;
  }
  clone(): GrammarNode {
    return new JsonNumber(this.integer, this.negative, this.state, this.digits);
  }
}

/** One of several grammars: the ones still alive. */
export class Alternatives implements GrammarNode {
  constructor(private alive: GrammarNode[]) {}
  feed(c: number): boolean {
    this.alive = this.alive.filter((n) => n.feed(c));
    return this.alive.length > 0;
  }
  get canEnd(): boolean {
    return this.alive.some((n) => n.canEnd);
  }
  cost(): number {
    return Math.min(...this.alive.map((n) => n.cost()));
  }
  inString(): boolean {
    return this.alive.every((n) => n.inString());
  }
  clone(): GrammarNode {
    return new Alternatives(this.alive.map((n) => n.clone()));
  }
}

/** Grammars one after the other; a child that refuses a byte but may end passes it to the next one. */
export class Sequence implements GrammarNode {
  constructor(
    private readonly parts: readonly Factory[],
    private readonly restCost: readonly number[], // restCost[i]: the fewest characters of parts i.. from fresh
    private at = 0,
    private current: GrammarNode | undefined = undefined,
  ) {}
  static of(parts: readonly Factory[]): Sequence {
    const restCost = new Array<number>(parts.length + 1).fill(0);
    for (let i = parts.length - 1; i >= 0; i--) restCost[i] = restCost[i + 1]! + parts[i]!().cost();
    return new Sequence(parts, restCost);
  }
  private node(): GrammarNode | undefined {
    if (this.current === undefined && this.at < this.parts.length) this.current = this.parts[this.at]!();
    return this.current;
  }
  feed(c: number): boolean {
    for (let node = this.node(); node !== undefined; node = this.node()) {
      // A refused byte leaves the node unusable, so ask whether it could end before feeding it.
      const couldEnd = node.canEnd;
      if (node.feed(c)) return true;
      if (!couldEnd) return false;
      this.at++;
      this.current = undefined;
    }
    return false;
  }
  get canEnd(): boolean {
    return this.at >= this.parts.length || ((this.node()?.canEnd ?? true) && this.restCost[this.at + 1] === 0 && this.restNullable());
  }
  private restNullable(): boolean {
    for (let i = this.at + 1; i < this.parts.length; i++) if (!this.parts[i]!().canEnd) return false;
    return true;
  }
  cost(): number {
    return this.at >= this.parts.length ? 0 : (this.node()?.cost() ?? 0) + this.restCost[this.at + 1]!;
  }
  inString(): boolean {
    return this.node()?.inString() ?? false;
  }
  clone(): GrammarNode {
    return new Sequence(this.parts, this.restCost, this.at, this.current?.clone());
  }
}

/** '[' items separated by ',' ']' with whitespace around. */
export class JsonArray implements GrammarNode {
  constructor(
    private readonly item: Factory,
    private state: 'open' | 'first' | 'item' | 'after' | 'closed' = 'open',
    private inner: GrammarNode | undefined = undefined,
    private ws = 0,
  ) {}
  feed(c: number): boolean {
    const space = c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
    switch (this.state) {
      case 'open':
        if (c !== 0x5b) return false;
        this.state = 'first';
        return true;
      case 'first':
        if (space) return ++this.ws <= MAX_WHITESPACE_RUN;
        if (c === 0x5d) return this.close();
        return this.startItem(c);
      case 'item': {
        const couldEnd = this.inner!.canEnd;
        if (this.inner!.feed(c)) return true;
        if (!couldEnd) return false;
        this.state = 'after';
        this.ws = 0;
        return this.feed(c);
      }
      case 'after':
        if (space) return ++this.ws <= MAX_WHITESPACE_RUN;
        if (c === 0x5d) return this.close();
        if (c !== 0x2c) return false;
        // After ',' an item must come (whitespace first, if any).
        this.state = 'item';
        this.inner = Sequence.of([() => new Whitespace(), this.item]);
        return true;
      default:
        return false;
    }
  }
  private startItem(c: number): boolean {
    const node = this.item();
    if (!node.feed(c)) return false;
    this.inner = node;
    this.state = 'item';
    return true;
  }
  private close(): boolean {
    this.state = 'closed';
    return true;
  }
  get canEnd(): boolean {
    return this.state === 'closed';
  }
  cost(): number {
    if (this.state === 'open') return 2;
    if (this.state === 'item') return this.inner!.cost() + 1;
    return this.state === 'closed' ? 0 : 1;
  }
  inString(): boolean {
    return this.state === 'item' && this.inner!.inString();
  }
  clone(): GrammarNode {
    return new JsonArray(this.item, this.state, this.inner?.clone(), this.ws);
  }
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}
