// The built-in chat formats of llama.cpp, one function per family, ported from `llm_chat_apply_template`
// (src/llama-chat.cpp). Each turns messages into the prompt text the model was trained on; the output is
// byte-for-byte what llama.cpp produces (the test runs llama.cpp's own golden cases).
//
// Quirks are kept on purpose, because matching llama.cpp matters more than tidiness: some formats trim
// message content (ASCII whitespace only, like C's isspace), some merge the system message into the first
// user turn, some never add the assistant prefix, and roles they do not know are dropped or passed through
// exactly as llama.cpp does.

export interface ChatMessage {
  readonly role: string;
  readonly content: string;
}

/** Text written before and after a message's content. */
export type Wrap = readonly [prefix: string, suffix: string];

/** Formats a conversation; `addAssistant` appends the prefix that makes the model answer. */
export type ChatFormat = (chat: readonly ChatMessage[], addAssistant: boolean) => string;

/** C++ `trim` from llama-chat.cpp: strips ASCII whitespace (space, \t, \n, \v, \f, \r) only. */
export function trimAscii(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && isAsciiSpace(s.charCodeAt(start))) start++;
  while (end > start && isAsciiSpace(s.charCodeAt(end - 1))) end--;
  return s.slice(start, end);
}

function isAsciiSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

/** C `toupper` over every character, ASCII letters only. */
export function upperAscii(s: string): string {
  return s.replace(/[a-z]/g, (c) => c.toUpperCase());
}

const chatml: ChatFormat = (chat, add) =>
  chat.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join('') + (add ? '<|im_start|>assistant\n' : '');

/** Mistral 'v7' and 'v7-tekken' (the only difference: v7 puts a space after each tag). */
function mistralV7(space: string): ChatFormat {
  return (chat) => {
    let out = '';
    for (const m of chat) {
      if (m.role === 'system') out += `[SYSTEM_PROMPT]${space}${m.content}[/SYSTEM_PROMPT]`;
      else if (m.role === 'user') out += `[INST]${space}${m.content}[/INST]`;
      else out += `${space}${m.content}</s>`;
    }
    return out;
  };
}

/** Mistral 'v1', 'v3' and 'v3-tekken': system text goes inside the next [INST] block. */
function mistralV1V3(variant: 'v1' | 'v3' | 'v3-tekken'): ChatFormat {
  const leading = variant === 'v1' ? ' ' : '';
  const trailing = variant === 'v3-tekken' ? '' : ' ';
  const trimAssistant = variant === 'v3';
  return (chat) => {
    let out = '';
    let insideTurn = false;
    for (const m of chat) {
      if (!insideTurn) {
        out += `${leading}[INST]${trailing}`;
        insideTurn = true;
      }
      if (m.role === 'system') out += `${m.content}\n\n`;
      else if (m.role === 'user') out += `${m.content}${leading}[/INST]`;
      else {
        out += `${trailing}${trimAssistant ? trimAscii(m.content) : m.content}</s>`;
        insideTurn = false;
      }
    }
    return out;
  };
}

/** Llama 2 and its variants: with <<SYS>>, with BOS inside the history, with stripped content. */
function llama2(variant: 'plain' | 'sys' | 'sys-bos' | 'sys-strip'): ChatFormat {
  const supportsSystem = variant !== 'plain';
  const bosInsideHistory = variant === 'sys-bos';
  const strip = variant === 'sys-strip';
  return (chat) => {
    let out = '[INST] ';
    let insideTurn = true; // the first [INST] is already written (BOS comes from the tokenizer)
    for (const m of chat) {
      const content = strip ? trimAscii(m.content) : m.content;
      if (!insideTurn) {
        insideTurn = true;
        out += bosInsideHistory ? '<s>[INST] ' : '[INST] ';
      }
      if (m.role === 'system') {
        // Without <<SYS>> support the system text still goes first, on its own line.
        out += supportsSystem ? `<<SYS>>\n${content}\n<</SYS>>\n\n` : `${content}\n`;
      } else if (m.role === 'user') {
        out += `${content} [/INST]`;
      } else {
        out += `${content}</s>`;
        insideTurn = false;
      }
    }
    return out;
  };
}

/** `<|role|>\n content <end>` style formats with an `<|assistant|>\n` prompt. */
function roleTagged(end: string, assistantPrompt: string): ChatFormat {
  return (chat, add) => chat.map((m) => `<|${m.role}|>\n${m.content}${end}`).join('') + (add ? assistantPrompt : '');
}

const gemma: ChatFormat = (chat, add) => {
  let out = '';
  let systemPrompt = '';
  for (const m of chat) {
    if (m.role === 'system') {
      // Gemma has no system role: the system text is prepended to the next user turn.
      systemPrompt += trimAscii(m.content);
      continue;
    }
    const role = m.role === 'assistant' ? 'model' : m.role;
    out += `<start_of_turn>${role}\n`;
    if (systemPrompt !== '' && role !== 'model') {
      out += `${systemPrompt}\n\n`;
      systemPrompt = '';
    }
    out += `${trimAscii(m.content)}<end_of_turn>\n`;
  }
  return out + (add ? '<start_of_turn>model\n' : '');
};

const orion: ChatFormat = (chat) => {
  let out = '';
  let systemPrompt = '';
  for (const m of chat) {
    if (m.role === 'system') {
      systemPrompt += m.content;
    } else if (m.role === 'user') {
      out += 'Human: ';
      if (systemPrompt !== '') {
        out += `${systemPrompt}\n\n`;
        systemPrompt = '';
      }
      out += `${m.content}\n\nAssistant: </s>`;
    } else {
      out += `${m.content}</s>`;
    }
  }
  return out;
};

const openchat: ChatFormat = (chat, add) => {
  let out = '';
  for (const m of chat) {
    if (m.role === 'system') out += `${m.content}<|end_of_turn|>`;
    else out += `GPT4 Correct ${upperAscii(m.role.slice(0, 1))}${m.role.slice(1)}: ${m.content}<|end_of_turn|>`;
  }
  return out + (add ? 'GPT4 Correct Assistant:' : '');
};

function vicuna(orca: boolean): ChatFormat {
  return (chat, add) => {
    let out = '';
    for (const m of chat) {
      if (m.role === 'system') out += orca ? `SYSTEM: ${m.content}\n` : `${m.content}\n\n`;
      else if (m.role === 'user') out += `USER: ${m.content}\n`;
      else if (m.role === 'assistant') out += `ASSISTANT: ${m.content}</s>\n`;
    }
    return out + (add ? 'ASSISTANT:' : '');
  };
}

/** Formats where each known role maps to a fixed prefix and suffix; unknown roles are dropped. */
export function byRole(
  parts: Readonly<Record<string, Wrap>>,
  assistantPrompt: string,
  transform: (content: string) => string = (c) => c,
): ChatFormat {
  return (chat, add) => {
    let out = '';
    for (const m of chat) {
      const part = parts[m.role];
      if (part) out += part[0] + transform(m.content) + part[1];
    }
    return out + (add ? assistantPrompt : '');
  };
}

const llama3: ChatFormat = (chat, add) =>
  chat.map((m) => `<|start_header_id|>${m.role}<|end_header_id|>\n\n${trimAscii(m.content)}<|eot_id|>`).join('') +
  (add ? '<|start_header_id|>assistant<|end_header_id|>\n\n' : '');

const minicpm: ChatFormat = (chat) =>
  chat.map((m) => (m.role === 'user' ? `<用户>${trimAscii(m.content)}<AI>` : trimAscii(m.content))).join('');

/** The common families, keyed by llama.cpp's template name (the rest: chat-template-formats-more.ts). */
export const MAIN_CHAT_FORMATS = {
  chatml,
  llama2: llama2('plain'),
  'llama2-sys': llama2('sys'),
  'llama2-sys-bos': llama2('sys-bos'),
  'llama2-sys-strip': llama2('sys-strip'),
  'mistral-v1': mistralV1V3('v1'),
  'mistral-v3': mistralV1V3('v3'),
  'mistral-v3-tekken': mistralV1V3('v3-tekken'),
  'mistral-v7': mistralV7(' '),
  'mistral-v7-tekken': mistralV7(''),
  phi3: roleTagged('<|end|>\n', '<|assistant|>\n'),
  phi4: (chat, add) =>
    chat.map((m) => `<|im_start|>${m.role}<|im_sep|>${m.content}<|im_end|>`).join('') +
    (add ? '<|im_start|>assistant<|im_sep|>' : ''),
  falcon3: roleTagged('\n', '<|assistant|>\n'),
  zephyr: roleTagged('<|endoftext|>\n', '<|assistant|>\n'),
  monarch: (chat, add) =>
    chat.map((m, i) => `${i === 0 ? '' : '<s>'}${m.role}\n${m.content}</s>\n`).join('') + (add ? '<s>assistant\n' : ''),
  gemma,
  orion,
  openchat,
  vicuna: vicuna(false),
  'vicuna-orca': vicuna(true),
  deepseek: byRole(
    { system: ['', ''], user: ['### Instruction:\n', '\n'], assistant: ['### Response:\n', '\n<|EOT|>\n'] },
    '### Response:\n',
  ),
  deepseek2: byRole(
    { system: ['', '\n\n'], user: ['User: ', '\n\n'], assistant: ['Assistant: ', '<｜end▁of▁sentence｜>'] },
    'Assistant:',
  ),
  deepseek3: byRole(
    { system: ['', '\n\n'], user: ['<｜User｜>', ''], assistant: ['<｜Assistant｜>', '<｜end▁of▁sentence｜>'] },
    '<｜Assistant｜>',
  ),
  'deepseek-ocr': (chat) => chat.map((m) => m.content).join(''),
  'command-r': byRole(
    {
      system: ['<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>', '<|END_OF_TURN_TOKEN|>'],
      user: ['<|START_OF_TURN_TOKEN|><|USER_TOKEN|>', '<|END_OF_TURN_TOKEN|>'],
      assistant: ['<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>', '<|END_OF_TURN_TOKEN|>'],
    },
    '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>',
    trimAscii,
  ),
  llama3,
  chatglm3: (chat, add) => '[gMASK]sop' + chat.map((m) => `<|${m.role}|>\n ${m.content}`).join('') + (add ? '<|assistant|>' : ''),
  chatglm4: (chat, add) =>
    '[gMASK]<sop>' + chat.map((m) => `<|${m.role}|>\n${m.content}`).join('') + (add ? '<|assistant|>\n' : ''),
  glmedge: (chat, add) => chat.map((m) => `<|${m.role}|>\n${m.content}`).join('') + (add ? '<|assistant|>' : ''),
  minicpm,
} as const satisfies Record<string, ChatFormat>;
