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
import { Alternatives, type Factory, type GrammarNode, JsonArray, JsonNumber, JsonString, Literal, MAX_INT_DIGITS, Sequence, Whitespace } from './sampler-grammar.ts';
import type { ConstraintVocabulary } from './sampler-json.ts';
import { feedToken, firstBytes, jsonTokenTable } from './sampler-json.ts';

/** A schema this compiler cannot enforce. */
export class SchemaError extends ModelError {}

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
    firstByteOk ??= firstBytes(state);
    return feedToken(state, t.bytes, firstByteOk);
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
