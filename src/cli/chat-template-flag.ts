// --chat-template: for a model whose GGUF template is mis-detected (or missing), name the family to use, or
// give a Jinja file whose family SharedLLM recognises (chats are formatted as llama.cpp formats them: by family,
// see src/model/chat-template.ts). Checked before the model loads.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { type FlagSpec, UsageError } from './args.ts';

export const CHAT_TEMPLATE_FLAG: FlagSpec = {
  type: 'string',
  arg: 'NAME|F',
  help: "use this chat template instead of the model's: a built-in name (chatml, llama3, zephyr, mistral-v7, gemma, phi3, ... see `sharedllm chat --chat-template list`) or a Jinja file",
};

/** The template to use (a family name or a Jinja source), or undefined for the model's own. */
export async function chatTemplateOverride(cmd: string, value: string | undefined): Promise<string | undefined> {
  if (value === undefined) return undefined;
  // Imported here: `--help` stays light.
  const { CHAT_TEMPLATE_NAMES, detectChatTemplate } = await import('../model/chat-template.ts');
  const names: readonly string[] = CHAT_TEMPLATE_NAMES;
  if (names.includes(value)) return value;
  if (value === 'list') throw new UsageError(`--chat-template takes one of: ${names.join(', ')}, or a Jinja file`, cmd);
  if (!existsSync(value) || statSync(value).isDirectory()) {
    throw new UsageError(`--chat-template '${value}' is neither a built-in template nor a file (built-in: ${names.join(', ')})`, cmd);
  }
  const source = readFileSync(value, 'utf8');
  if (detectChatTemplate(source) === undefined) {
    throw new UsageError(`--chat-template ${value}: no template family SharedLLM knows is recognised in this Jinja file; pass a built-in name instead (${names.join(', ')})`, cmd);
  }
  return source;
}
