// src/http sits low in the layers (see the header of index.ts): it may import node's modules and src/util
// only, so that the coordinator (federation/) and the API (api/) can both use it without an upward import.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

test('src/http imports only node:, its own files and src/util', () => {
  const sources = readdirSync(here).filter((name) => name.endsWith('.ts') && !name.endsWith('.test.ts'));
  assert.ok(sources.includes('index.ts'));
  let imports = 0;
  for (const name of sources) {
    const text = readFileSync(join(here, name), 'utf8');
    for (const match of text.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+'([^']+)'/gms)) {
      const target = match[1]!;
      imports++;
      const allowed = target.startsWith('node:') || /^\.\/[\w-]+\.ts$/.test(target) || /^\.\.\/util\/[\w-]+\.ts$/.test(target);
      assert.ok(allowed, `${name} imports '${target}': src/http may import node:, ./ and ../util/ only`);
    }
  }
  assert.ok(imports > 20, `the import scan found only ${imports} imports: is the pattern still right?`);
});
