// The less common chat formats of llama.cpp's `llm_chat_apply_template` (src/llama-chat.cpp), ported like
// the common ones in chat-template-formats.ts: EXAONE, RWKV World, Granite, GigaChat, Megrez, Yandex, Ling,
// Llama 4, SmolVLM, dots.llm1, Hunyuan, gpt-oss, Kimi K2, Seed-OSS, Grok 2, Pangu and Solar Open.
import { byRole, type ChatFormat, trimAscii, upperAscii, type Wrap } from './chat-template-formats.ts';

const rwkvWorld: ChatFormat = (chat) => {
  let out = '';
  chat.forEach((m, i) => {
    if (m.role === 'system') out += `System: ${trimAscii(m.content)}\n\n`;
    else if (m.role === 'user') {
      out += `User: ${trimAscii(m.content)}\n\n`;
      if (i === chat.length - 1) out += 'Assistant:';
    } else if (m.role === 'assistant') out += `Assistant: ${trimAscii(m.content)}\n\n`;
  });
  return out;
};

/** Granite 3.x writes the tool-call role as is; 4.0 and 4.1 turn it into an assistant turn. */
function granite(version: '3' | '4'): ChatFormat {
  return (chat, add) => {
    let out = '';
    for (const m of chat) {
      if (version === '3') {
        out += `<|start_of_role|>${m.role}<|end_of_role|>${m.role === 'assistant_tool_call' ? '<|tool_call|>' : ''}`;
      } else if (m.role === 'assistant_tool_call') {
        out += '<|start_of_role|>assistant<|end_of_role|><|tool_call|>';
      } else {
        out += `<|start_of_role|>${m.role}<|end_of_role|>`;
      }
      out += `${m.content}<|end_of_text|>\n`;
    }
    return out + (add ? '<|start_of_role|>assistant<|end_of_role|>' : '');
  };
}

const gigachat: ChatFormat = (chat, add) => {
  const first = chat[0];
  const hasSystem = first !== undefined && first.role === 'system';
  let out = hasSystem ? `<s>${first.content}<|message_sep|>` : '<s>';
  for (const m of chat.slice(hasSystem ? 1 : 0)) {
    if (m.role === 'user') {
      out += `user<|role_sep|>${m.content}<|message_sep|>available functions<|role_sep|>[]<|message_sep|>`;
    } else if (m.role === 'assistant') {
      out += `assistant<|role_sep|>${m.content}<|message_sep|>`;
    }
  }
  return out + (add ? 'assistant<|role_sep|>' : '');
};

function bailing(think: boolean): ChatFormat {
  return (chat, add) =>
    chat.map((m) => `<role>${m.role === 'user' ? 'HUMAN' : upperAscii(m.role)}</role>${m.content}`).join('') +
    (add ? `<role>ASSISTANT</role>${think ? '<think>' : ''}` : '');
}

const bailing2: ChatFormat = (chat, add) => {
  const hasSystem = chat[0]?.role === 'system';
  let out = hasSystem ? '' : '<role>SYSTEM</role>detailed thinking off<|role_end|>';
  for (const m of chat) out += `<role>${m.role === 'user' ? 'HUMAN' : upperAscii(m.role)}</role>${m.content}<|role_end|>`;
  return out + (add ? '<role>ASSISTANT</role>' : '');
};

const smolvlm: ChatFormat = (chat, add) => {
  let out = '<|im_start|>'; // SmolVLM uses <|im_start|> as BOS; the rest is not chatml
  for (const m of chat) {
    if (m.role === 'system') out += `${m.content}\n\n`;
    else if (m.role === 'user') out += `User: ${m.content}<end_of_utterance>\n`;
    else out += `Assistant: ${m.content}<end_of_utterance>\n`;
  }
  return out + (add ? 'Assistant:' : '');
};

/** Formats where anything that is not system or user counts as the assistant. */
function threeWay(system: Wrap, user: Wrap, other: Wrap, prompt: string): ChatFormat {
  return (chat, add) => {
    let out = '';
    for (const m of chat) {
      const [pre, post] = m.role === 'system' ? system : m.role === 'user' ? user : other;
      out += pre + m.content + post;
    }
    return out + (add ? prompt : '');
  };
}

/** Hunyuan-MoE: every role that is not system or assistant counts as the user; no assistant prompt. */
const hunyuanMoe: ChatFormat = (chat) => {
  let out = '';
  for (const m of chat) {
    if (m.role === 'system') out += `<|startoftext|>${m.content}<|extra_4|>`;
    else if (m.role === 'assistant') out += `${m.content}<|eos|>`;
    else out += `<|startoftext|>${m.content}<|extra_0|>`;
  }
  return out;
};

/** Grok 2 trims system and user content but not the assistant's. */
const grok2: ChatFormat = (chat, add) => {
  let out = '';
  for (const m of chat) {
    if (m.role === 'system') out += `System: ${trimAscii(m.content)}<|separator|>\n\n`;
    else if (m.role === 'user') out += `Human: ${trimAscii(m.content)}<|separator|>\n\n`;
    else if (m.role === 'assistant') out += `Assistant: ${m.content}<|separator|>\n\n`;
  }
  return out + (add ? 'Assistant:' : '');
};

const hunyuanDense: ChatFormat = (chat) => {
  let out = '';
  chat.forEach((m, i) => {
    if (i === 0 && m.role === 'system') out += `${m.content}<｜hy_place▁holder▁no▁3｜>`;
    if (m.role === 'assistant') out += `<｜hy_Assistant｜>${m.content}<｜hy_place▁holder▁no▁2｜>`;
    else if (m.role === 'user') out += `<｜hy_User｜>${m.content}<｜hy_Assistant｜>`;
  });
  return out;
};

const hunyuanVl: ChatFormat = (chat) => {
  let out = '<｜hy_begin▁of▁sentence｜>';
  chat.forEach((m, i) => {
    if (i === 0 && m.role === 'system') {
      out += `${m.content}<｜hy_place▁holder▁no▁3｜>`;
      return;
    }
    if (m.role === 'user') out += `${m.content}<｜hy_User｜>`;
    else if (m.role === 'assistant') out += `${m.content}<｜hy_Assistant｜>`;
  });
  return out;
};

const kimiK2: ChatFormat = (chat, add) => {
  const prefixes: Readonly<Record<string, string>> = {
    system: '<|im_system|>system<|im_middle|>',
    user: '<|im_user|>user<|im_middle|>',
    assistant: '<|im_assistant|>assistant<|im_middle|>',
    tool: '<|im_system|>tool<|im_middle|>',
  };
  const turns = chat.map((m) => `${prefixes[m.role] ?? ''}${m.content}<|im_end|>`).join('');
  return turns + (add ? '<|im_assistant|>assistant<|im_middle|>' : '');
};

const panguEmbed: ChatFormat = (chat, add) => {
  const names: Readonly<Record<string, string>> = {
    system: '系统',
    user: '用户',
    assistant: '助手',
    tool: '工具',
    function: '方法',
  };
  let out = '';
  chat.forEach((m, i) => {
    if (i === 0 && m.role !== 'system') out += '[unused9]系统：[unused10]';
    const name = names[m.role];
    if (name !== undefined) out += `[unused9]${name}：${m.content}[unused10]`;
  });
  return out + (add ? '[unused9]助手：' : '');
};

/** The less common families, keyed by llama.cpp's template name. */
export const MORE_CHAT_FORMATS = {
  exaone3: byRole(
    { system: ['[|system|]', '[|endofturn|]\n'], user: ['[|user|]', '\n'], assistant: ['[|assistant|]', '[|endofturn|]\n'] },
    '[|assistant|]',
    trimAscii,
  ),
  exaone4: byRole(
    {
      system: ['[|system|]', '[|endofturn|]\n'],
      user: ['[|user|]', '\n'],
      assistant: ['[|assistant|]', '[|endofturn|]\n'],
      tool: ['[|tool|]', '[|endofturn|]\n'],
    },
    '[|assistant|]',
    trimAscii,
  ),
  'exaone-moe': byRole(
    {
      system: ['<|system|>\n', '<|endofturn|>\n'],
      user: ['<|user|>\n', '<|endofturn|>\n'],
      assistant: ['<|assistant|>\n', '<|endofturn|>\n'],
      tool: ['<|tool|>\n', '<|endofturn|>\n'],
    },
    '<|assistant|>\n',
    trimAscii,
  ),
  'rwkv-world': rwkvWorld,
  granite: granite('3'),
  'granite-4.0': granite('4'),
  'granite-4.1': granite('4'),
  gigachat,
  megrez: (chat, add) =>
    chat.map((m) => `<|role_start|>${m.role}<|role_end|>${m.content}<|turn_end|>`).join('') +
    (add ? '<|role_start|>assistant<|role_end|>' : ''),
  yandex: byRole({ user: [' Пользователь: ', '\n\n'], assistant: [' Ассистент: ', '\n\n'] }, ' Ассистент:[SEP]'),
  bailing: bailing(false),
  'bailing-think': bailing(true),
  bailing2,
  llama4: (chat, add) =>
    chat.map((m) => `<|header_start|>${m.role}<|header_end|>\n\n${trimAscii(m.content)}<|eot|>`).join('') +
    (add ? '<|header_start|>assistant<|header_end|>\n\n' : ''),
  smolvlm,
  dots1: threeWay(
    ['<|system|>', '<|endofsystem|>'],
    ['<|userprompt|>', '<|endofuserprompt|>'],
    ['<|response|>', '<|endofresponse|>'],
    '<|response|>',
  ),
  'hunyuan-moe': hunyuanMoe,
  'gpt-oss': (chat, add) =>
    chat.map((m) => `<|start|>${m.role}<|message|>${m.content}${m.role === 'assistant' ? '<|return|>' : '<|end|>'}`).join('') +
    (add ? '<|start|>assistant' : ''),
  'hunyuan-dense': hunyuanDense,
  'hunyuan-vl': hunyuanVl,
  'kimi-k2': kimiK2,
  seed_oss: (chat, add) =>
    chat.map((m) => `<seed:bos>${m.role}\n${m.role === 'assistant' ? trimAscii(m.content) : m.content}<seed:eos>`).join('') +
    (add ? '<seed:bos>assistant\n' : ''),
  'grok-2': grok2,
  'pangu-embedded': panguEmbed,
  'solar-open': (chat, add) =>
    chat.map((m) => `<|begin|>${m.role}<|content|>${m.content}<|end|>`).join('') + (add ? '<|begin|>assistant' : ''),
} as const satisfies Record<string, ChatFormat>;
