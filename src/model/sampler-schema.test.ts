// JSON Schema grammars: constrained random walks always end in a value that parses and validates, at every
// budget from the shortest value up; what the automata cannot enforce is refused.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { createSampler } from './sampler.ts';
import type { ConstraintVocabulary } from './sampler-json.ts';
import { SchemaError, compileSchema, grammarConstraint } from './sampler-schema.ts';
import { Mt19937 } from './sampler-rng.ts';

/** Every printable ASCII character, some longer pieces, an end token (0) and a control token (1). */
const PIECES = ['<eos>', '<ctl>', ...Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)), '\n', '{"', '"}', '":', '","', 'true', 'null', '12', '3.5', 'é', '\\n', 'name', 'tags'];
const encoder = new TextEncoder();
const vocabulary: ConstraintVocabulary = {
  vocabSize: PIECES.length,
  tokenBytes: (id) => encoder.encode(id <= 1 ? '' : PIECES[id]!),
  isEndOfGeneration: (id) => id === 0,
  isControl: (id) => id === 1,
};

const SCHEMA = {
  type: 'object',
  properties: {
    name: { type: 'string', description: 'descriptions are fine' },
    age: { type: 'integer' },
    tags: { type: 'array', items: { enum: ['a', 'b', 'ab'] } },
    nested: { $ref: '#/$defs/Nested' },
  },
  required: ['name', 'age', 'tags', 'nested'],
  additionalProperties: false,
  $defs: { Nested: { type: 'object', properties: { ok: { type: 'boolean' }, v: { type: ['number', 'null'] }, k: { const: 'x' } } } },
};
const Valid = z.strictObject({
  name: z.string(),
  age: z.number().int(),
  tags: z.array(z.enum(['a', 'b', 'ab'])),
  nested: z.strictObject({ ok: z.boolean(), v: z.number().nullable(), k: z.literal('x') }),
});

describe('JSON Schema grammar', () => {
  test('random constrained walks parse and validate at every budget', () => {
    const grammar = compileSchema(SCHEMA);
    const shortest = grammar().cost();
    assert.equal(shortest, '{"name":"","age":0,"tags":[],"nested":{"ok":true,"v":0,"k":"x"}}'.length);
    const rng = new Mt19937(3);
    for (let run = 0; run < 60; run++) {
      const budget = shortest + run * 3;
      const sampler = createSampler({ temperature: 1, topK: 0, topP: 1, minP: 0, seed: run, constraint: grammarConstraint(vocabulary, budget, grammar) });
      const logits = new Float32Array(PIECES.length);
      let text = '';
      for (let i = 0; i < budget; i++) {
        for (let t = 0; t < logits.length; t++) logits[t] = rng.nextDouble() * 3;
        const token = sampler.sample(logits);
        if (token === 0) break;
        text += PIECES[token];
      }
      const parsed = Valid.safeParse(JSON.parse(text));
      assert.ok(parsed.success, `${text}: ${parsed.error?.message}`);
    }
  });

  test('keywords it cannot enforce, recursion and untyped values are refused', () => {
    assert.throws(() => compileSchema({ type: 'string', pattern: '^a' }), SchemaError);
    assert.throws(() => compileSchema({ type: 'array', items: { type: 'string' }, minItems: 1 }), /minItems/);
    assert.throws(() => compileSchema({ $ref: '#/$defs/T', $defs: { T: { type: 'object', properties: { t: { $ref: '#/$defs/T' } } } } }), /recursive/);
    assert.throws(() => compileSchema({ type: 'object', properties: { x: {} } }), /has no type/);
    assert.throws(() => compileSchema({ oneOf: [{ type: 'string' }] }), /anyOf/);
    assert.throws(() => compileSchema({ type: 'integer', minimum: 1 }), /minimum/);
    assert.throws(() => compileSchema({ type: 'number', maximum: 100 }), /maximum/);
  });

  test("zod's int() bounds are accepted; minimum 0 forbids the minus sign", () => {
    const feedAll = (grammar: ReturnType<typeof compileSchema>, text: string) => {
      const node = grammar();
      return [...encoder.encode(text)].every((c) => node.feed(c));
    };
    const safe = compileSchema({ type: 'integer', minimum: -9007199254740991, maximum: 9007199254740991 });
    assert.ok(feedAll(safe, '-12'));
    assert.ok(!feedAll(safe, '1234567890123456'), 'at most 15 digits: always a safe integer');
    const natural = compileSchema({ type: 'integer', minimum: 0 });
    assert.ok(feedAll(natural, '12'));
    assert.ok(!feedAll(natural, '-1'));
  });
});
