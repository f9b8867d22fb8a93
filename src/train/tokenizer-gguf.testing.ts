// Test support: llama.cpp's own tokenizer (through node-llama-cpp, CPU only, prebuilt binaries) loaded
// from a vocab-only GGUF, to check our tokenizer against the reference.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getLlama, LlamaLogLevel, resolveChatWrapper, type Llama, type LlamaModel, type Token } from 'node-llama-cpp';
import { writeGguf } from '../gguf/writer.ts';
import type { BpeTokenizer } from './bpe.ts';
import { vocabOnlyGgufMetadata, type TokenizerGgufOptions } from './tokenizer-gguf.ts';

export interface ReferenceTokenizer {
  /** llama.cpp's tokenization (no BOS added); `special` parses special-token texts. */
  tokenize(text: string, special?: boolean): number[];
  /** llama.cpp's llama_detokenize (remove_special = false); `special` renders special tokens. */
  detokenize(ids: readonly number[], special?: boolean): string;
  /** The chat wrapper node-llama-cpp picks for the file's chat template, e.g. 'ChatML'. */
  chatWrapperName(): string;
  /** llama.cpp's logs while loading, for error messages. */
  readonly logs: readonly string[];
  dispose(): Promise<void>;
}

/** Loads a GGUF with node-llama-cpp in vocab-only mode. */
export async function loadReferenceTokenizer(modelPath: string): Promise<ReferenceTokenizer> {
  const logs: string[] = [];
  const llama: Llama = await getLlama({
    gpu: false,
    build: 'never',
    logLevel: LlamaLogLevel.warn,
    // node-llama-cpp tries to simulate a full load to estimate memory and warns that a vocab-only file
    // has no tensors; keep such messages for error reports instead of printing them.
    logger: (level, message) => logs.push(`${level}: ${message.trim()}`),
  });
  let model: LlamaModel;
  try {
    model = await llama.loadModel({ modelPath, vocabOnly: true, gpuLayers: 0 });
  } catch (error) {
    await llama.dispose();
    throw new Error(`llama.cpp could not load ${modelPath}: ${(error as Error).message}\n${logs.join('\n')}`);
  }
  return {
    tokenize: (text, special = false) => Array.from(model.tokenize(text, special), Number),
    detokenize: (ids, special = false) => model.detokenize(ids as Token[], special),
    chatWrapperName: () => resolveChatWrapper(model).wrapperName,
    logs,
    dispose: async () => {
      await model.dispose();
      await llama.dispose();
    },
  };
}

/** Writes `tokenizer` as a vocab-only GGUF in a temp dir and loads it with llama.cpp. */
export async function referenceForTokenizer(
  tokenizer: BpeTokenizer,
  options: TokenizerGgufOptions = {},
): Promise<ReferenceTokenizer & { path: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'sharedllm-vocab-'));
  const path = join(dir, 'vocab.gguf');
  writeGguf(path, { metadata: vocabOnlyGgufMetadata(tokenizer, options) });
  try {
    const reference = await loadReferenceTokenizer(path);
    return {
      ...reference,
      path,
      dispose: async () => {
        await reference.dispose();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Held-out texts that stress a byte-level BPE tokenizer and GPT-2's pre-tokenizer: accents, CJK, emoji
 * (ZWJ sequences, skin tones, flags), code, whitespace runs (spaces, tabs, CR/LF, Unicode spaces, a
 * trailing run), numbers in several scripts, contractions, special-token look-alikes, control characters.
 */
export const VARIED_TEXTS: readonly string[] = [
  'Hello, world! The quick brown fox jumps over the lazy dog.',
  'café naïve résumé Ångström Zoë façade coöperate señor Straße ĳ œuvre',
  '漢字とひらがな、カタカナ。中文测试：你好，世界！한국어 텍스트',
  'emoji 😀👍🏽 family 👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵 hearts ❤️‍🔥 ✨',
  'def square(x):\n\treturn x ** 2  # comment\n\nconst a = { b: [1, 2, 3] };\nif (a.b[0] !== 1) throw new Error("no");\n',
  'a  b   c\t\t\n\n\n   \r\n  end   ',
  '   leading spaces and trailing tabs\t\t',
  'numbers 3.14159 1,000,000 2024-01-01 0xFF 1e-9 ١٢٣ ४५६ Ⅻ ½ ²',
  "I'm you're they've we'll he'd it's DON'T 'tis rock'n'roll o'clock 'quoted'",
  'special look-alikes <|endoftext|> and <|im_start|>user\nhi<|im_end|>',
  'math 𝐀𝐁𝐂 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 and e\u0301 combining, a\u0308\u0304 stacked',
  'مرحبا بالعالم שלום עולם नमस्ते दुनिया Привет, мир! Γειά σου κόσμε',
  'spaces:\u00a0nbsp\u2003em\u3000ideographic\u0085nel\u2028ls bom\ufeffzwj\u200dzwsp\u200b.',
  'controls \u0001\u0002\u001f\u007f and a bell\u0007 and form feed\f end',
  '     \n\n',
  "x  .  ,  ' s  ? !  're 've 'm",
];
