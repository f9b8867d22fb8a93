// `sharedllm generate`: stream a continuation of a prompt to stdout (the prompt itself is not echoed). With
// --chat-template, the prompt is one user message formatted with that template, and the answer is streamed.
import { type CommandSpec, type Parsed, UsageError } from './args.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import { CHAT_TEMPLATE_FLAG, chatTemplateOverride } from './chat-template-flag.ts';
import { MODEL_FLAGS, SAMPLING_FLAGS, loadEngine, maxTokensOf, samplerOptions } from './engine.ts';
import { MIXTURE_FLAGS, checkMixtureFlags } from './generate-mixture.ts';

export const spec: CommandSpec = {
  name: 'generate',
  summary: 'Continue a prompt with a local GGUF model, streaming the text to stdout.',
  usage: 'sharedllm generate --model F --prompt S [options]',
  flags: {
    ...MODEL_FLAGS,
    prompt: { type: 'string', arg: 'S', help: 'the text to continue', required: true },
    'n-predict': { type: 'number', integer: true, min: -1, unit: 'tokens', short: 'n', default: 128, help: 'tokens to generate; -1: until the model stops or the context is full' },
    'chat-template': { ...CHAT_TEMPLATE_FLAG, help: `send --prompt as one user message formatted with this chat template, not as raw text; ${CHAT_TEMPLATE_FLAG.help}` },
    ...SAMPLING_FLAGS,
    ...MIXTURE_FLAGS,
    model: { ...MODEL_FLAGS.model!, required: false, help: 'GGUF model file (or --mixture)' },
  },
  examples: [
    'sharedllm generate --model models/sharedllm-tiny.gguf --prompt "It was a dark and stormy night" --temp 0',
    'sharedllm generate --mixture code.gguf,prose.gguf --prompt "def main():" --show-attribution',
  ],
};

export async function run({ flags: f }: Parsed): Promise<number> {
  const template = await chatTemplateOverride('generate', f['chat-template'] as string | undefined);
  const mixture = await checkMixtureFlags('generate', f);
  if (mixture !== undefined) {
    const encode = async (tokenizer: Tokenizer) => template === undefined
      ? tokenizer.encode(f.prompt as string, { addBos: tokenizer.addBosDefault })
      : (await import('../model/chat-prompt.ts')).encodeChat(tokenizer, [{ role: 'user', content: f.prompt as string }], true, template);
    return (await import('./generate-mixture.ts')).runMixture('generate', mixture, f, encode, samplerOptions(f), maxTokensOf(f));
  }
  if (f.model === undefined) throw new UsageError('give --model F (or --mixture a.gguf,b.gguf)', 'generate');
  const engine = await loadEngine('generate', f);
  try {
    const text = f.prompt as string;
    const prompt = template === undefined
      ? engine.tokenizer.encode(text, { addBos: engine.tokenizer.addBosDefault })
      : (await import('../model/chat-prompt.ts')).encodeChat(engine.tokenizer, [{ role: 'user', content: text }], true, template);
    const ac = new AbortController();
    const onSig = () => ac.abort();
    process.on('SIGINT', onSig); // `on`, not `once`: see shutdown.ts on node-llama-cpp's signal-exit
    try {
      const it = engine.generator.stream(prompt, { ...samplerOptions(f), maxTokens: maxTokensOf(f), signal: ac.signal });
      for (;;) {
        const r = await it.next();
        if (r.done) break;
        if (r.value.text) process.stdout.write(r.value.text);
      }
    } finally {
      process.off('SIGINT', onSig);
    }
    process.stdout.write('\n');
    return 0;
  } finally {
    await engine.dispose();
  }
}
