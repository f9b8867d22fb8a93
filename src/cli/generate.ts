// `sharedllm generate`: stream a continuation of a prompt to stdout (the prompt itself is not echoed).
import { type CommandSpec, type Parsed } from './args.ts';
import { MODEL_FLAGS, SAMPLING_FLAGS, loadEngine, samplerOptions } from './engine.ts';

export const spec: CommandSpec = {
  name: 'generate',
  summary: 'Continue a prompt with a local GGUF model, streaming the text to stdout.',
  usage: 'sharedllm generate --model F --prompt S [options]',
  flags: {
    ...MODEL_FLAGS,
    prompt: { type: 'string', arg: 'S', help: 'the text to continue', required: true },
    'n-predict': { type: 'number', short: 'n', default: 128, help: 'tokens to generate' },
    ...SAMPLING_FLAGS,
  },
  examples: ['sharedllm generate --model models/sharedllm-tiny.gguf --prompt "It was a dark and stormy night" --temp 0'],
};

export async function run({ flags: f }: Parsed): Promise<number> {
  const engine = await loadEngine(f);
  try {
    const prompt = engine.tokenizer.encode(f.prompt as string, { addBos: engine.tokenizer.addBosDefault });
    const ac = new AbortController();
    const onSig = () => ac.abort();
    process.on('SIGINT', onSig); // `on`, not `once`: see shutdown.ts on node-llama-cpp's signal-exit
    const it = engine.generator.stream(prompt, { ...samplerOptions(f), maxTokens: f['n-predict'] as number, signal: ac.signal });
    for (;;) {
      const r = await it.next();
      if (r.done) break;
      if (r.value.text) process.stdout.write(r.value.text);
    }
    process.stdout.write('\n');
    process.off('SIGINT', onSig);
    return 0;
  } finally {
    await engine.dispose();
  }
}
