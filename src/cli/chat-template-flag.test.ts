// --chat-template: a built-in family name, or a Jinja file whose family is recognised; anything else is a
// usage error before the model loads.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { UsageError } from './args.ts';
import { chatTemplateOverride } from './chat-template-flag.ts';
import { applyChatTemplate } from '../model/chat-template.ts';

const dir = mkdtempSync(join(tmpdir(), 'sharedllm-template-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a built-in name is used as is; none keeps the model\'s template', async () => {
  assert.equal(await chatTemplateOverride('chat', 'zephyr'), 'zephyr');
  assert.equal(await chatTemplateOverride('chat', undefined), undefined);
});

test('a Jinja file of a known family is read and formats like that family', async () => {
  const file = join(dir, 'chatml.jinja');
  writeFileSync(file, "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}");
  const source = await chatTemplateOverride('chat', file);
  assert.ok(source);
  const messages = [{ role: 'user', content: 'Hi' }];
  assert.equal(applyChatTemplate(source, messages, true), applyChatTemplate('chatml', messages, true));
});

test('an unknown name, a missing file or an unrecognised Jinja file is a usage error', async () => {
  await assert.rejects(chatTemplateOverride('chat', 'no-such'), (e: unknown) => e instanceof UsageError && /neither a built-in template nor a file/.test(e.message));
  await assert.rejects(chatTemplateOverride('chat', 'list'), (e: unknown) => e instanceof UsageError && /chatml, llama2/.test(e.message));
  const odd = join(dir, 'odd.jinja');
  writeFileSync(odd, '{{ messages }}');
  await assert.rejects(chatTemplateOverride('chat', odd), (e: unknown) => e instanceof UsageError && /no template family SharedLLM knows is recognised/.test(e.message));
});
