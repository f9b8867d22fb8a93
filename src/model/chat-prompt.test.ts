// encodeChat at sizes a client can send: one message of hundreds of thousands of tokens (a spread into
// push() overflowed the stack there) and tens of thousands of messages (comparing by concatenation copied
// the whole prompt once per message). GPT-2's vocabulary has no chatml tokens, so the markup is plain text
// and the tokens decode back to exactly the rendered conversation.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { encodeChat } from './chat-prompt.ts';
import { type ChatMessage, applyChatTemplate } from './chat-template.ts';
import { Tokenizer } from './tokenizer.ts';
import { vocabPath } from './testing/vocab.ts';

let tok: Tokenizer;

before(async () => {
  tok = await Tokenizer.load(vocabPath('gpt-2'));
});

after(async () => {
  await tok?.dispose();
});

function roundTrips(messages: ChatMessage[]): number[] {
  const ids = encodeChat(tok, messages, true, 'chatml');
  assert.equal(tok.decode(ids), applyChatTemplate('chatml', messages, true));
  return ids;
}

test('a message of 200k tokens encodes (no stack overflow)', () => {
  const ids = roundTrips([{ role: 'user', content: 'x '.repeat(200_000) }]);
  assert.ok(ids.length >= 200_000, `${ids.length} tokens`);
});

test('20,000 messages encode, each in its place', () => {
  const messages: ChatMessage[] = Array.from({ length: 20_000 }, (_, i) => ({ role: i % 2 === 0 ? 'user' : 'assistant', content: `message ${i}` }));
  const ids = roundTrips(messages);
  assert.ok(ids.length > 20_000 * 4, `${ids.length} tokens`);
});
