// Grammar-constrained sampling for a JSON Schema (OpenAI's `response_format: { type: 'json_schema' }`): the
// text is one JSON value that validates against the schema.
//
// The schema compiles to a tree of small byte automata (GrammarNode): literals, strings, numbers, choices
// among literals (enum, const, booleans), alternatives (anyOf, a list of types), arrays and objects. An
// object is written with every property of the schema, in the schema's order (what OpenAI's strict mode
// asks of a schema: every property required), so it validates whether or not a property is required.
// Keywords that constrain values in ways these automata do not check (pattern, minimum, minItems, ...) are
// refused by compileSchema rather than ignored: the output must validate.
//
// As in sampler-json.ts, a token is allowed only if the budget left covers the shortest completion
// (cost(), in characters, one token per character), so the value is complete when max_tokens runs out.
import type { TokenConstraint } from './sampler.ts';
import { ModelError } from './errors.ts';
import type { ConstraintVocabulary } from './sampler-json.ts';
import { jsonTokenTable } from './sampler-json.ts';

/** A schema this compiler cannot enforce. */
export class SchemaError extends ModelError {}

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

type Factory = () => GrammarNode;

/** Whitespace runs the grammar accepts between tokens of structure (indentation). */
const MAX_WHITESPACE_RUN = 16;

class Literal implements GrammarNode {
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

class Whitespace implements GrammarNode {
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
class JsonString implements GrammarNode {
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
const MAX_INT_DIGITS = 15;
const MAX_EXP_DIGITS = 2;

/** A JSON number (an integer when `integer`). States: where the text stands in JSON's number syntax. */
class JsonNumber implements GrammarNode {
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
class Alternatives implements GrammarNode {
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
class Sequence implements GrammarNode {
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
class JsonArray implements GrammarNode {
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

const encoder = new TextEncoder();
const literal = (text: string): Factory => {
  const bytes = encoder.encode(text);
  return () => new Literal(bytes);
};
const choice = (texts: string[]): Factory => {
  const parts = texts.map(literal);
  return () => new Alternatives(parts.map((f) => f()));
};

/** Keywords that constrain values beyond what the automata check: refused, never silently ignored. */
const UNSUPPORTED = ['pattern', 'format', 'minLength', 'maxLength', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf', 'minItems', 'maxItems', 'uniqueItems', 'contains', 'patternProperties', 'allOf', 'not', 'if', 'then', 'else', 'minProperties', 'maxProperties', 'dependentRequired', 'dependentSchemas', 'prefixItems'];

type Schema = Record<string, unknown>;

/** Compiles a JSON Schema (the subset above) into a grammar; throws SchemaError naming what it cannot do. */
export function compileSchema(schema: unknown): Factory {
  if (!isSchema(schema)) throw new SchemaError('the JSON schema is not an object', 'an object such as { type: "object", properties: {...} }', typeof schema, 'send a JSON Schema object');
  const definitions = { ...asSchemaMap(schema.$defs), ...asSchemaMap(schema.definitions) };
  const compiled = new Map<string, Factory>();
  const compiling = new Set<string>();
  const compile = (s: unknown, where: string): Factory => {
    if (!isSchema(s)) throw new SchemaError(`${where} is not a schema`, 'an object', JSON.stringify(s) ?? typeof s, 'fix the schema');
    const bad = UNSUPPORTED.find((k) => k in s);
    if (bad !== undefined) throw new SchemaError(`${where} uses '${bad}', which constrained sampling does not enforce`, `no '${bad}'`, bad, `remove '${bad}' (check it after generation instead)`);
    if (typeof s.$ref === 'string') {
      const name = /^#\/(?:\$defs|definitions)\/(.+)$/.exec(s.$ref)?.[1];
      const target = name === undefined ? undefined : definitions[name];
      if (name === undefined || target === undefined) throw new SchemaError(`${where}: $ref ${s.$ref} is not found`, "'#/$defs/<name>' of this schema", s.$ref, 'define it under $defs');
      // Compiled once, eagerly: a schema that refers to itself would be an endless grammar here.
      if (compiling.has(name)) throw new SchemaError(`${where}: $ref ${s.$ref} is recursive`, 'a schema without cycles', s.$ref, 'unroll the recursion to a fixed depth');
      let f = compiled.get(name);
      if (f === undefined) {
        compiling.add(name);
        compiled.set(name, (f = compile(target, `$defs.${name}`)));
        compiling.delete(name);
      }
      return f;
    }
    if (Array.isArray(s.enum)) return choice(s.enum.map((v) => JSON.stringify(v)));
    if ('const' in s) return choice([JSON.stringify(s.const)]);
    const union = Array.isArray(s.anyOf) ? s.anyOf : Array.isArray(s.oneOf) ? s.oneOf : undefined;
    if (union !== undefined) {
      if (Array.isArray(s.oneOf)) throw new SchemaError(`${where} uses 'oneOf'`, 'anyOf', 'oneOf', "use 'anyOf' (oneOf's exclusivity is not enforced)");
      const parts = union.map((u, i) => compile(u, `${where}.anyOf[${i}]`));
      return () => new Alternatives(parts.map((f) => f()));
    }
    if (Array.isArray(s.type)) {
      const parts = s.type.map((t) => compile({ ...s, type: t }, where));
      return () => new Alternatives(parts.map((f) => f()));
    }
    switch (s.type) {
      case 'string':
        return () => new JsonString();
      case 'number':
      case 'integer': {
        const integer = s.type === 'integer';
        const negative = numberBounds(s, integer, where);
        return () => new JsonNumber(integer, negative);
      }
      case 'boolean':
        return choice(['true', 'false']);
      case 'null':
        return literal('null');
      case 'array': {
        const item = compile(s.items ?? {}, `${where}.items`);
        return () => new JsonArray(item);
      }
      case 'object':
        return objectGrammar(s, where, compile);
      default:
        throw new SchemaError(`${where} has no type`, "a 'type' (string, number, integer, boolean, null, array, object), 'enum', 'const' or 'anyOf'", JSON.stringify(s.type) ?? 'none', 'give every value a type');
    }
  };
  return compile(schema, 'schema');
}

/**
 * The bounds a number schema may have: none tighter than the numbers the automaton writes anyway (zod's
 * int() gives the safe-integer range), or a minimum of 0 (no minus sign). Returns whether '-' may start it.
 */
function numberBounds(s: Schema, integer: boolean, where: string): boolean {
  const widest = integer ? 10 ** MAX_INT_DIGITS - 1 : 1e115;
  const { minimum, maximum } = s;
  const check = (ok: boolean, keyword: string) => {
    if (!ok) throw new SchemaError(`${where} uses '${keyword}: ${String(s[keyword])}', which constrained sampling does not enforce`, `no ${keyword}, a ${keyword} beyond ±${widest}, or minimum 0`, String(s[keyword]), `remove '${keyword}' (check it after generation instead)`);
  };
  check(maximum === undefined || (typeof maximum === 'number' && maximum >= widest), 'maximum');
  check(minimum === undefined || (typeof minimum === 'number' && (minimum <= -widest || minimum === 0)), 'minimum');
  return minimum !== 0;
}

/** '{' "key": value, ... '}' with every property, in order; whitespace around the punctuation. */
function objectGrammar(s: Schema, where: string, compile: (s: unknown, where: string) => Factory): Factory {
  const properties = asSchemaMap(s.properties);
  const ws = () => new Whitespace();
  const parts: Factory[] = [literal('{'), ws];
  Object.entries(properties).forEach(([key, value], i) => {
    if (i > 0) parts.push(literal(','), ws);
    parts.push(literal(JSON.stringify(key)), ws, literal(':'), ws, compile(value, `${where}.properties.${key}`), ws);
  });
  parts.push(literal('}'));
  return () => Sequence.of(parts);
}

function isSchema(s: unknown): s is Schema {
  return typeof s === 'object' && s !== null && !Array.isArray(s);
}

function asSchemaMap(value: unknown): Record<string, unknown> {
  return isSchema(value) ? value : {};
}

/** A TokenConstraint for one generation: one value of the grammar, complete within `maxTokens` tokens. */
export function grammarConstraint(vocabulary: ConstraintVocabulary, maxTokens: number, grammar: Factory): TokenConstraint {
  const tokens = jsonTokenTable(vocabulary);
  let state = grammar();
  let used = 0;
  // Which first bytes the current state takes: most tokens are refused on their first byte.
  let firstByteOk: Uint8Array | undefined;
  // Inside a string, a token of plain characters leaves the state as it is (most of a vocabulary).
  let inString: boolean | undefined;
  const after = (token: number): GrammarNode | undefined => {
    const t = tokens[token];
    if (t === undefined || t.kind !== 'text') return undefined;
    inString ??= state.inString();
    if (inString && t.plain) return state;
    if (firstByteOk === undefined) {
      firstByteOk = new Uint8Array(256);
      for (let c = 0; c < 256; c++) firstByteOk[c] = state.clone().feed(c) ? 1 : 0;
    }
    if (firstByteOk[t.bytes[0]!] === 0) return undefined;
    const next = state.clone();
    for (const c of t.bytes) if (!next.feed(c)) return undefined;
    return next;
  };
  return {
    allows(token: number): boolean {
      if (tokens[token]?.kind === 'end') return state.canEnd;
      const next = after(token);
      return next !== undefined && next.cost() <= maxTokens - used - 1;
    },
    accept(token: number): void {
      const next = after(token) ?? state;
      state = next === state ? state.clone() : next;
      firstByteOk = undefined;
      inString = undefined;
      used++;
    },
  };
}
