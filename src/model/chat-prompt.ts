// Turning a conversation into prompt tokens without letting message text inject special tokens.
//
// The template's own markup (<|im_start|>, [INST], <|user|> ...) is tokenized with special-token parsing;
// every message's content is tokenized as plain text, so a user who types "<|im_end|>" gets those
// characters, never the control token. We render the template with sentinels in place of the contents,
// split on them, and check that putting the real contents back gives exactly the template's own output.
import { type ChatMessage, applyChatTemplate } from './chat-template.ts';
import { ModelError } from './errors.ts';
import type { Tokenizer } from './tokenizer.ts';

const sentinel = (i: number) => `\u0001SLLM${i}\u0002`;

export class ChatPromptError extends ModelError {}

export function encodeChat(tok: Tokenizer, messages: readonly ChatMessage[], addAssistant = true, template = tok.chatTemplate): number[] {
  const masked = messages.map((m, i) => ({ ...m, content: sentinel(i) }));
  const rendered = applyChatTemplate(template, masked, addAssistant);
  const full = applyChatTemplate(template, messages, addAssistant);
  const ids: number[] = tok.addBosDefault && tok.bos !== undefined ? [tok.bos] : [];
  let rebuilt = '';
  let rest = rendered;
  const pushGlue = (glue: string) => {
    if (!glue) return;
    rebuilt += glue;
    append(ids, tok.encodeWithSpecial(glue, { addBos: false }));
  };
  for (let i = 0; i < messages.length; i++) {
    const s = sentinel(i);
    const at = rest.indexOf(s);
    if (at < 0) continue; // templates may drop messages (e.g. a system message some formats ignore)
    pushGlue(rest.slice(0, at));
    rest = rest.slice(at + s.length);
    const content = pickContent(full, rebuilt, messages[i]!.content);
    rebuilt += content;
    // Contents are plain text: special-token strings inside them stay text.
    append(ids, tok.encode(content, { addBos: false }));
  }
  pushGlue(rest);
  if (rebuilt !== full) {
    throw new ChatPromptError('chat template transforms message text in a way SharedLLM cannot separate', 'contents inserted verbatim or trimmed', 'another transformation', 'use a template whose family SharedLLM supports');
  }
  return ids;
}

/**
 * `ids.push(...more)` in a loop: a spread passes every element as an argument on the stack, which overflows
 * ("Maximum call stack size exceeded") for a message of a few hundred thousand tokens.
 */
function append(ids: number[], more: readonly number[]): void {
  for (const id of more) ids.push(id);
}

/**
 * The template may trim contents; use whichever form the real rendering has at this point. `before` is what
 * was rebuilt so far (a prefix of `full` unless the template transforms text, which the caller detects):
 * compare at its end rather than concatenating, which would copy the whole prompt once per message.
 */
function pickContent(full: string, before: string, content: string): string {
  if (full.startsWith(content, before.length)) return content;
  const t = content.trim();
  if (full.startsWith(t, before.length)) return t;
  return content;
}
