// Chat template: messages to prompt text, exactly as llama.cpp's `llama_chat_apply_template` does it.
//
// llama.cpp does not run the GGUF's Jinja template here. It recognises the template family from marker
// strings in the Jinja source (`<|im_start|>` means chatml, `[INST]` a Mistral or Llama 2 variant, ...)
// and formats with built-in code (src/llama-chat.cpp: `llm_chat_detect_template`, then
// `llm_chat_apply_template`). This file ports the detection; chat-template-formats.ts ports the formats.
// A family name ('chatml', 'llama3', 'zephyr', ...) can be passed instead of a Jinja source to force one.
//
// Known consequences of the detection, kept because they are llama.cpp's behaviour:
// - A missing template means chatml (llama.cpp's default when a GGUF has none).
// - TinyLlama-1.1B-Chat's template ('<|user|>\n' + content + eos_token) has `<|user|>` and `<|assistant|>`
//   but neither `<|end|>` nor a literal `</s>`, so it is detected as 'glmedge' ("<|user|>\nHello<|assistant|>",
//   no `</s>` after turns), not 'zephyr'. Pass 'zephyr' explicitly to get "<|user|>\nHello<|endoftext|>\n".
// The output is template text: tokenize it with `Tokenizer.encodeWithSpecial` (special-token strings of
// the template become their ids), with BOS added as the tokenizer's `addBosDefault` says.
import { type ChatMessage, MAIN_CHAT_FORMATS } from './chat-template-formats.ts';
import { MORE_CHAT_FORMATS } from './chat-template-formats-more.ts';
import { ModelError } from './errors.ts';

export type { ChatMessage } from './chat-template-formats.ts';

/** Every family llama.cpp formats, keyed by llama.cpp's template name. */
const CHAT_FORMATS = { ...MAIN_CHAT_FORMATS, ...MORE_CHAT_FORMATS };

/** A chat format family, named as llama.cpp names it (plus 'dots1', which it detects but does not name). */
export type ChatTemplateName = keyof typeof CHAT_FORMATS;

/** The template names llama.cpp accepts in place of a Jinja source (`llama_chat_builtin_templates`). */
export const CHAT_TEMPLATE_NAMES = [
  'chatml', 'llama2', 'llama2-sys', 'llama2-sys-bos', 'llama2-sys-strip', 'mistral-v1', 'mistral-v3',
  'mistral-v3-tekken', 'mistral-v7', 'mistral-v7-tekken', 'phi3', 'phi4', 'falcon3', 'zephyr', 'monarch',
  'gemma', 'orion', 'openchat', 'vicuna', 'vicuna-orca', 'deepseek', 'deepseek2', 'deepseek3', 'deepseek-ocr',
  'command-r', 'llama3', 'chatglm3', 'chatglm4', 'glmedge', 'minicpm', 'exaone3', 'exaone4', 'exaone-moe',
  'rwkv-world', 'granite', 'granite-4.0', 'granite-4.1', 'gigachat', 'megrez', 'yandex', 'bailing',
  'bailing-think', 'bailing2', 'llama4', 'smolvlm', 'hunyuan-moe', 'gpt-oss', 'hunyuan-dense', 'hunyuan-vl',
  'kimi-k2', 'seed_oss', 'grok-2', 'pangu-embedded', 'solar-open',
] as const satisfies readonly ChatTemplateName[];

/** The template text could not be matched to any family llama.cpp knows. */
export class ChatTemplateError extends ModelError {}

const NAMES: ReadonlySet<string> = new Set(CHAT_TEMPLATE_NAMES);

/**
 * The family llama.cpp would use for a template (a Jinja source or a family name), or undefined when it
 * recognises none. A port of `llm_chat_detect_template`; the order of the checks matters.
 */
export function detectChatTemplate(template: string): ChatTemplateName | undefined {
  if (NAMES.has(template)) return template as ChatTemplateName;
  const has = (s: string): boolean => template.includes(s);

  if (has('<|im_start|>')) {
    if (has('<|im_sep|>')) return 'phi4';
    return has('<end_of_utterance>') ? 'smolvlm' : 'chatml'; // SmolVLM uses <|im_start|> as BOS only
  }
  if (template.startsWith('mistral') || has('[INST]')) {
    if (has('[SYSTEM_PROMPT]')) return 'mistral-v7';
    // The official 'v1' template, or 'v3' / 'v3-tekken' (which list tools).
    if (has("' [INST] ' + system_message") || has('[AVAILABLE_TOOLS]')) {
      if (has(' [INST]')) return 'mistral-v1';
      if (has('"[INST]"')) return 'mistral-v3-tekken';
      return 'mistral-v3';
    }
    // Llama 2 and its variants.
    if (has('content.strip()')) return 'llama2-sys-strip';
    if (has("bos_token + '[INST]")) return 'llama2-sys-bos';
    if (has('<<SYS>>')) return 'llama2-sys';
    return 'llama2';
  }
  if (has('<|assistant|>') && has('<|end|>')) return 'phi3';
  if (has('[gMASK]<sop>')) return 'chatglm4';
  if (has('<|assistant|>') && has('<|user|>')) {
    if (has('<|tool_declare|>')) return 'exaone-moe';
    return has('</s>') ? 'falcon3' : 'glmedge';
  }
  if (has("<|{{ item['role'] }}|>") && has('<|begin_of_image|>')) return 'glmedge';
  if (has('<|user|>') && has('<|endoftext|>')) return 'zephyr';
  if (has("bos_token + message['role']")) return 'monarch';
  if (has('<start_of_turn>')) return 'gemma';
  if (has("'\\n\\nAssistant: ' + eos_token")) return 'orion'; // OrionStarAI/Orion-14B-Chat
  if (has('GPT4 Correct ')) return 'openchat'; // openchat/openchat-3.5-0106
  if (has('USER: ') && has('ASSISTANT: ')) return has('SYSTEM: ') ? 'vicuna-orca' : 'vicuna';
  if (has('### Instruction:') && has('<|EOT|>')) return 'deepseek'; // deepseek-coder-33b-instruct
  if (has('<|START_OF_TURN_TOKEN|>') && has('<|USER_TOKEN|>')) return 'command-r';
  if (has('<|start_header_id|>') && has('<|end_header_id|>')) return 'llama3';
  if (has('[gMASK]sop')) return 'chatglm3';
  if (has('<用户>')) return 'minicpm';
  if (has("'Assistant: ' + message['content'] + eos_token")) return 'deepseek2';
  if (has('<｜Assistant｜>') && has('<｜User｜>') && has('<｜end▁of▁sentence｜>')) return 'deepseek3';
  if (has('[|system|]') && has('[|assistant|]') && has('[|endofturn|]')) return has('[|tool|]') ? 'exaone4' : 'exaone3';
  if (has('rwkv-world') || has("{{- 'User: ' + message['content']|trim + '\\n\\n' -}}")) return 'rwkv-world';
  if (has('<|start_of_role|>')) {
    if (has('<tool_call>') || has('<tools>')) return has('g4_default_system_message') ? 'granite-4.0' : 'granite-4.1';
    return 'granite';
  }
  if (has("message['role'] + additional_special_tokens[0] + message['content'] + additional_special_tokens[1]")) {
    return 'gigachat';
  }
  if (has('<|role_start|>')) return 'megrez';
  if (has(' Ассистент:')) return 'yandex';
  if (has('<role>ASSISTANT</role>') && has("'HUMAN'")) return 'bailing';
  if (has('<role>ASSISTANT</role>') && has('"HUMAN"') && has('<think>')) return 'bailing-think';
  if (has('<role>ASSISTANT</role>') && has('<role>HUMAN</role>') && has('<|role_end|>')) return 'bailing2';
  if (has('<|header_start|>') && has('<|header_end|>')) return 'llama4';
  if (has('<|endofuserprompt|>')) return 'dots1';
  if (has('<|extra_0|>') && has('<|extra_4|>')) return 'hunyuan-moe';
  if (has('<|start|>') && has('<|channel|>')) return 'gpt-oss';
  if (has('<｜hy_Assistant｜>') && has('<｜hy_begin▁of▁sentence｜>')) return 'hunyuan-vl';
  if (has('<｜hy_Assistant｜>') && has('<｜hy_place▁holder▁no▁3｜>')) return 'hunyuan-dense';
  if (has('<|im_assistant|>assistant<|im_middle|>')) return 'kimi-k2';
  if (has('<seed:bos>')) return 'seed_oss';
  if (has("'Assistant: '  + message['content'] + '<|separator|>")) return 'grok-2';
  if (has('[unused9]系统：[unused10]')) return 'pangu-embedded';
  if (has('<|begin|>') && has('<|end|>') && has('<|content|>')) return 'solar-open';
  return undefined;
}

/**
 * Formats a conversation into prompt text like llama.cpp's `llama_chat_apply_template`.
 * `template` is the GGUF's `tokenizer.chat_template` (or a family name); undefined or '' means chatml.
 * `addAssistant` appends the assistant prefix so the model answers next (some families have none).
 * Throws ChatTemplateError when the template matches no family.
 */
export function applyChatTemplate(
  template: string | undefined,
  messages: readonly ChatMessage[],
  addAssistant: boolean,
): string {
  const source = template === undefined || template === '' ? 'chatml' : template;
  const family = detectChatTemplate(source);
  if (family === undefined) {
    throw new ChatTemplateError(
      'unrecognised chat template',
      `a Jinja template of a known family or one of: ${CHAT_TEMPLATE_NAMES.join(', ')}`,
      JSON.stringify(source.length > 80 ? `${source.slice(0, 80)}...` : source),
      "Pass a family name (for example 'chatml') as the template.",
    );
  }
  return CHAT_FORMATS[family](messages, addAssistant);
}
