// `sharedllm inspect`: what a GGUF file holds: architecture, sizes, quantisation, a tensor summary.
import { type CommandSpec, type Parsed, UsageError } from './args.ts';
import { formatBytes } from './progress.ts';

export const spec: CommandSpec = {
  name: 'inspect',
  summary: 'Describe a GGUF file: architecture, sizes, quantisation and a tensor summary.',
  usage: 'sharedllm inspect F [--tensors] [--json]',
  positionals: ['F'],
  flags: {
    tensors: { type: 'boolean', default: false, help: 'list every tensor' },
    json: { type: 'boolean', default: false, help: 'print JSON instead of text' },
  },
};

export async function run({ flags: f, positionals }: Parsed): Promise<number> {
  const path = positionals[0];
  if (!path) throw new UsageError('which file? usage: sharedllm inspect F', 'inspect');
  // Imported here, not above, so that `sharedllm inspect --help` starts fast.
  const [{ openModelFile }, { isSupportedArchitecture, readHParams }] = await Promise.all([import('../model/load.ts'), import('../model/hparams.ts')]);
  const file = openModelFile(path);
  try {
    const md = file.metadata;
    const arch = md.getString('general.architecture', '(none)');
    const byType = new Map<string, { count: number; bytes: number; params: number }>();
    let params = 0;
    for (const t of file.tensorInfos) {
      const n = t.dims.reduce((a, b) => a * b, 1);
      params += n;
      const e = byType.get(t.typeName) ?? { count: 0, bytes: 0, params: 0 };
      e.count++;
      e.bytes += t.byteSize;
      e.params += n;
      byType.set(t.typeName, e);
    }
    const h = isSupportedArchitecture(arch) ? readHParams(md) : undefined;
    const info = {
      file: path,
      ggufVersion: file.version,
      architecture: arch,
      supported: Boolean(h),
      name: md.getString('general.name', ''),
      parameters: params,
      size: file.size,
      hparams: h,
      tokenizer: { model: md.getString('tokenizer.ggml.model', ''), pre: md.getString('tokenizer.ggml.pre', ''), tokens: md.has('tokenizer.ggml.tokens') ? md.getStringArray('tokenizer.ggml.tokens').length : 0 },
      chatTemplate: md.has('tokenizer.chat_template'),
      types: Object.fromEntries([...byType].map(([k, v]) => [k, v])),
      tensors: f.tensors ? file.tensorInfos.map((t) => ({ name: t.name, type: t.typeName, dims: t.dims, bytes: t.byteSize })) : undefined,
    };
    if (f.json) {
      process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
      return 0;
    }
    const out: string[] = [];
    out.push(`${path}: GGUF v${file.version}, ${formatBytes(file.size)}`);
    out.push(`architecture  ${arch}${h ? '' : '  (not supported by SharedLLM: llama, qwen2, phi3 are)'}${info.name ? `  "${info.name}"` : ''}`);
    out.push(`parameters    ${(params / 1e6).toFixed(1)}M in ${file.tensorInfos.length} tensors`);
    if (h) {
      out.push(`layers        ${h.nLayer}   embedding ${h.nEmbd}   ffn ${h.nFf}   heads ${h.nHead} (kv ${h.nHeadKv}, size ${h.headDim})`);
      out.push(`vocabulary    ${h.nVocab}   context ${h.nCtxTrain}   rope base ${h.ropeFreqBase}   rms eps ${Number(h.rmsEps.toPrecision(4))}`);
    }
    out.push(`tokenizer     ${info.tokenizer.model || '-'} (pre ${info.tokenizer.pre || '-'}), ${info.tokenizer.tokens} tokens, chat template: ${info.chatTemplate ? 'yes' : 'no'}`);
    out.push('quantisation');
    for (const [k, v] of [...byType].sort((a, b) => b[1].bytes - a[1].bytes)) {
      out.push(`  ${k.padEnd(8)} ${String(v.count).padStart(5)} tensors  ${(v.params / 1e6).toFixed(1).padStart(8)}M params  ${formatBytes(v.bytes).padStart(10)}  (${bitsPerWeight(v)} bits/weight)`);
    }
    if (f.tensors) for (const t of file.tensorInfos) out.push(`  ${t.name.padEnd(32)} ${t.typeName.padEnd(6)} [${t.dims.join(', ')}]`);
    process.stdout.write(`${out.join('\n')}\n`);
    return 0;
  } finally {
    file.dispose();
  }
}

function bitsPerWeight(v: { bytes: number; params: number }): string {
  return ((v.bytes * 8) / Math.max(1, v.params)).toFixed(2);
}
