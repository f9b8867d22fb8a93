// `sharedllm tokenize`: print the token ids of a text as one JSON array (llama.cpp's tokenizer).
import { type CommandSpec, type Parsed } from './args.ts';

export const spec: CommandSpec = {
  name: 'tokenize',
  summary: "Print a text's token ids as one JSON array, exactly as llama.cpp tokenizes it.",
  usage: 'sharedllm tokenize --model F --text S [--no-bos] [--special]',
  flags: {
    model: { type: 'string', arg: 'F', help: 'GGUF model (or vocab-only) file', required: true },
    text: { type: 'string', arg: 'S', help: 'the text', required: true },
    'no-bos': { type: 'boolean', default: false, help: "don't add the BOS token even where the model adds it" },
    special: { type: 'boolean', default: false, help: 'parse special-token text like <|im_start|> (off: user text never yields special tokens)' },
  },
};

export async function run({ flags: f }: Parsed): Promise<number> {
  // Imported here, not above: `sharedllm tokenize --help` must not load node-llama-cpp.
  const [{ openModelFile }, { Tokenizer }] = await Promise.all([import('../model/load.ts'), import('../model/tokenizer.ts')]);
  openModelFile(f.model as string).dispose(); // clear errors for a bad path or a non-GGUF file
  // node-llama-cpp's addon comes from the same platform package as ggml: without it, say which one to install
  // (node-llama-cpp itself would only say NoBinaryFoundError).
  const { chooseBins } = await import('../ggml/find.ts');
  chooseBins('off');
  const tok = await Tokenizer.load(f.model as string, { verbose: Boolean(f.verbose) });
  try {
    const opts = { addBos: f['no-bos'] ? false : tok.addBosDefault };
    const ids = f.special ? tok.encodeWithSpecial(f.text as string, opts) : tok.encode(f.text as string, opts);
    process.stdout.write(`${JSON.stringify(ids)}\n`);
    return 0;
  } finally {
    await tok.dispose();
  }
}
