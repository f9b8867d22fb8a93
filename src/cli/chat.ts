// `sharedllm chat`: an interactive conversation in the terminal with a local model, using the model's
// chat template (formatted exactly as llama.cpp formats it).
import { createInterface } from 'node:readline/promises';
import { type CommandSpec, type Parsed } from './args.ts';
import { MODEL_FLAGS, SAMPLING_FLAGS, loadEngine, samplerOptions } from './engine.ts';
import type { ChatMessage } from '../model/chat-template.ts';

export const spec: CommandSpec = {
  name: 'chat',
  summary: "Chat with a local GGUF model in the terminal, using the model's chat template.",
  usage: 'sharedllm chat --model F [options]',
  flags: {
    ...MODEL_FLAGS,
    system: { type: 'string', arg: 'S', help: 'a system message to start the conversation with' },
    'n-predict': { type: 'number', short: 'n', default: 512, help: 'most tokens per answer' },
    ...SAMPLING_FLAGS,
  },
  examples: ['sharedllm chat --model models/sharedllm-tiny.gguf', 'Type /reset to start over, /exit or Ctrl-D to leave.'],
};

export async function run({ flags: f }: Parsed): Promise<number> {
  const { encodeChat } = await import('../model/chat-prompt.ts');
  const engine = await loadEngine(f);
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: Boolean(process.stdin.isTTY) });
  const messages: ChatMessage[] = f.system ? [{ role: 'system', content: f.system as string }] : [];
  process.stderr.write('Type a message; /reset starts over, /exit (or Ctrl-D) leaves.\n');
  try {
    for (;;) {
      let line: string;
      try {
        line = await rl.question('> ');
      } catch {
        break; // stdin closed
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
      const ids = encodeChat(engine.tokenizer, messages, true);
      const ac = new AbortController();
      const onSig = () => ac.abort();
      process.on('SIGINT', onSig); // `on`, not `once`: see shutdown.ts on node-llama-cpp's signal-exit
      let answer = '';
      const it = engine.generator.stream(ids, { ...samplerOptions(f), maxTokens: f['n-predict'] as number, signal: ac.signal });
      for (;;) {
        const r = await it.next();
        if (r.done) break;
        answer += r.value.text;
        process.stdout.write(r.value.text);
      }
      process.off('SIGINT', onSig);
      process.stdout.write('\n');
      messages.push({ role: 'assistant', content: answer.trim() });
    }
    return 0;
  } finally {
    rl.close();
    await engine.dispose();
  }
}
