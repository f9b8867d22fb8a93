// `sharedllm chat`: an interactive conversation in the terminal with a local model, using the model's
// chat template (formatted exactly as llama.cpp formats it), or the one --chat-template names.
// Ctrl-C during an answer stops it and returns to the prompt; Ctrl-C at the prompt (or a second one) leaves.
import { createInterface } from 'node:readline/promises';
import { type CommandSpec, type Parsed } from './args.ts';
import { CHAT_TEMPLATE_FLAG, chatTemplateOverride } from './chat-template-flag.ts';
import { MODEL_FLAGS, SAMPLING_FLAGS, loadEngine, maxTokensOf, samplerOptions } from './engine.ts';
import { AnswerInterrupts } from './interrupt.ts';
import type { ChatMessage } from '../model/chat-template.ts';

export const spec: CommandSpec = {
  name: 'chat',
  summary: "Chat with a local GGUF model in the terminal, using the model's chat template.",
  usage: 'sharedllm chat --model F [options]',
  flags: {
    ...MODEL_FLAGS,
    system: { type: 'string', arg: 'S', help: 'a system message to start the conversation with' },
    'n-predict': { type: 'number', integer: true, min: -1, unit: 'tokens', short: 'n', default: 512, help: 'most tokens per answer; -1: until the model stops or the context is full' },
    'chat-template': CHAT_TEMPLATE_FLAG,
    ...SAMPLING_FLAGS,
  },
  examples: ['sharedllm chat --model models/sharedllm-tiny.gguf', 'Type /reset to start over, /exit or Ctrl-D to leave; Ctrl-C stops an answer.'],
};

export async function run({ flags: f }: Parsed): Promise<number> {
  const template = await chatTemplateOverride('chat', f['chat-template'] as string | undefined);
  const { encodeChat } = await import('../model/chat-prompt.ts');
  const engine = await loadEngine('chat', f);
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: Boolean(process.stdin.isTTY) });
  const leave = new AbortController();
  const interrupts = new AnswerInterrupts(() => leave.abort());
  interrupts.attach(rl);
  const messages: ChatMessage[] = f.system ? [{ role: 'system', content: f.system as string }] : [];
  process.stderr.write('Type a message; /reset starts over, /exit (or Ctrl-D) leaves, Ctrl-C stops an answer.\n');
  try {
    while (!leave.signal.aborted) {
      let line: string;
      try {
        line = await rl.question('> ', { signal: leave.signal });
      } catch {
        break; // stdin closed, or Ctrl-C at the prompt
      }
      const text = line.trim();
      if (text === '/exit' || text === '/quit') break;
      if (text === '/reset') {
        messages.splice(f.system ? 1 : 0);
        process.stderr.write('(conversation cleared)\n');
        continue;
      }
      if (!text) continue;
      messages.push({ role: 'user', content: text });
      const ids = encodeChat(engine.tokenizer, messages, true, template ?? engine.tokenizer.chatTemplate);
      const signal = interrupts.answering();
      let answer = '';
      try {
        const it = engine.generator.stream(ids, { ...samplerOptions(f), maxTokens: maxTokensOf(f), signal });
        for (;;) {
          const r = await it.next();
          if (r.done) break;
          answer += r.value.text;
          process.stdout.write(r.value.text);
        }
      } finally {
        interrupts.answered();
      }
      process.stdout.write('\n');
      // A stopped answer stays in the conversation as far as it got, as in other chat tools.
      if (signal.aborted) process.stderr.write('(stopped; Ctrl-C again to leave)\n');
      messages.push({ role: 'assistant', content: answer.trim() });
    }
    return 0;
  } finally {
    interrupts.dispose();
    rl.close();
    await engine.dispose();
  }
}
