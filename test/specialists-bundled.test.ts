// The specialists committed under models/specialists/: each manifest is signed by its publisher key over the
// RFC-0006 fields, names its file's sha256 and size, and shares the bundled base's tokenizer.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseEntry } from '../src/federation/directory/entry.ts';
import { modelFacts } from '../src/federation/directory/model-facts.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const DIR = join(ROOT, 'models/specialists');

test('every bundled specialist has a valid signed manifest that matches its file and the base tokenizer', () => {
  const manifests = readdirSync(DIR).filter((f) => f.endsWith('.manifest.json'));
  assert.ok(manifests.length >= 3, `expected at least 3 specialists in ${DIR}`);
  const base = modelFacts(join(ROOT, 'models/sharedllm-tiny.gguf'));
  for (const file of manifests) {
    const parsed = parseEntry(JSON.parse(readFileSync(join(DIR, file), 'utf8')));
    assert.ok(parsed.ok, `${file}: ${parsed.ok ? '' : parsed.reason}`);
    const manifest = parsed.entry;
    assert.equal(manifest.kind, 'manifest');
    if (manifest.kind !== 'manifest') continue;
    const facts = modelFacts(join(DIR, `${manifest.modelId}.gguf`));
    assert.equal(manifest.contentHash, facts.contentHash, file);
    assert.equal(manifest.fileBytes, facts.fileBytes, file);
    assert.equal(manifest.tokenizerHash, base.tokenizerHash, `${file}: the base's tokenizer`);
    assert.equal(facts.tokenizerHash, base.tokenizerHash, `${manifest.modelId}.gguf: the base's tokenizer`);
  }
});
