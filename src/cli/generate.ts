// `sharedllm generate`: stream a continuation of a prompt to stdout (the prompt itself is not echoed). With
// --chat-template, the prompt is one user message formatted with that template, and the answer is streamed.
// With --adapter, a norm adapter's gains apply to this request's sequence (as the server applies them per
// request); a LoRA adapter is merged into a temporary copy of the model, which is deleted afterwards.
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
    adapter: { type: 'string', arg: 'A.gguf', help: 'generate with this adapter (from `sharedllm adapter train`; made for this --model)' },
    'n-predict': { type: 'number', integer: true, min: -1, unit: 'tokens', short: 'n', default: 128, help: 'tokens to generate; -1: until the model stops or the context is full' },
    'chat-template': { ...CHAT_TEMPLATE_FLAG, help: `send --prompt as one user message formatted with this chat template, not as raw text; ${CHAT_TEMPLATE_FLAG.help}` },
    ...SAMPLING_FLAGS,
    ...MIXTURE_FLAGS,
    model: { ...MODEL_FLAGS.model!, required: false, help: 'GGUF model file (or --mixture)' },
  },
  examples: [
    'sharedllm generate --model models/sharedllm-tiny.gguf --prompt "It was a dark and stormy night" --temp 0',
    'sharedllm generate --model models/sharedllm-tiny.gguf --adapter me.gguf --prompt "Dear friend," --temp 0',
    'sharedllm generate --mixture code.gguf,prose.gguf --prompt "def main():" --show-attribution',
  ],
};

export async function run({ flags: f }: Parsed): Promise<number> {
  const template = await chatTemplateOverride('generate', f['chat-template'] as string | undefined);
  const mixture = await checkMixtureFlags('generate', f);
  if (mixture !== undefined && f.adapter !== undefined) throw new UsageError('--adapter applies to one --model, not to a --mixture: give one or the other', 'generate');
  if (mixture !== undefined) {
    const encode = async (tokenizer: Tokenizer) => template === undefined
      ? tokenizer.encode(f.prompt as string, { addBos: tokenizer.addBosDefault })
      : (await import('../model/chat-prompt.ts')).encodeChat(tokenizer, [{ role: 'user', content: f.prompt as string }], true, template);
    return (await import('./generate-mixture.ts')).runMixture('generate', mixture, f, encode, samplerOptions(f), maxTokensOf(f));
  }
  if (f.model === undefined) throw new UsageError('missing --model: give --model F (or --mixture a.gguf,b.gguf)', 'generate');
  const adapter = f.adapter === undefined ? undefined : await loadAdapter(f.model as string, f.adapter as string);
  const engine = await loadEngine('generate', adapter?.modelPath ? { ...f, model: adapter.modelPath } : f);
  try {
    const text = f.prompt as string;
    const prompt = template === undefined
      ? engine.tokenizer.encode(text, { addBos: engine.tokenizer.addBosDefault })
      : (await import('../model/chat-prompt.ts')).encodeChat(engine.tokenizer, [{ role: 'user', content: text }], true, template);
    const ac = new AbortController();
    const onSig = () => ac.abort();
    process.on('SIGINT', onSig); // `on`, not `once`: see shutdown.ts on node-llama-cpp's signal-exit
    try {
      const it = engine.generator.stream(prompt, { ...samplerOptions(f), maxTokens: maxTokensOf(f), signal: ac.signal, ...(adapter?.normOverrides ? { normOverrides: adapter.normOverrides } : {}) });
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
    adapter?.cleanup();
  }
}

interface LoadedAdapter {
  /** A norm adapter: its gains, per sequence. */
  normOverrides?: Map<string, Float32Array>;
  /** A LoRA adapter: the temporary merged model to load instead of --model. */
  modelPath?: string;
  cleanup(): void;
}

/** Read and check the adapter before any model is loaded (another base's adapter is refused here). */
async function loadAdapter(model: string, path: string): Promise<LoadedAdapter> {
  const { existsSync, mkdtempSync, rmSync } = await import('node:fs');
  if (!existsSync(path)) throw new UsageError(`--adapter ${path}: no such file`, 'generate');
  const { checkModelFlags } = await import('./engine.ts');
  await checkModelFlags('generate', model, undefined);
  const { readAdapter, adapterBaseOf, normOverrides } = await import('../train/adapter/index.ts');
  const adapter = readAdapter(path, adapterBaseOf(model));
  if (adapter.kind === 'norm') return { normOverrides: normOverrides(adapter), cleanup: () => undefined };
  const [{ exportMerged }, { tmpdir }, { join }] = await Promise.all([import('../train/adapter/export.ts'), import('node:os'), import('node:path')]);
  const dir = mkdtempSync(join(tmpdir(), 'sharedllm-merged-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  try {
    const merged = join(dir, 'merged.gguf');
    await exportMerged(model, adapter, merged);
    return { modelPath: merged, cleanup };
  } catch (e) {
    cleanup();
    throw e;
  }
}
