// `sharedllm generate --mixture a.gguf,b.gguf [--show-attribution]`: the continuation comes from a mixture of
// local specialists (src/model/mixture/). With --show-attribution each token is coloured by the specialist with
// the largest share of it (no colour when stdout is not a terminal or NO_COLOR is set), and a summary of the
// top specialists goes to stderr.
import { type FlagSpec, type Parsed, UsageError } from './args.ts';
import type { MixtureTrail } from '../model/mixture/trail.ts';
import { MIXTURE_MODES, type MixtureMode } from '../model/mixture/weights.ts';
import type { SamplerOptions } from '../model/sampler.ts';
import type { Tokenizer } from '../model/tokenizer.ts';

export const MIXTURE_FLAGS: Record<string, FlagSpec> = {
  mixture: { type: 'string', arg: 'F,F', help: 'generate with a mixture of these GGUF specialists (same tokenizer), instead of --model' },
  'mixture-k': { type: 'number', integer: true, min: 1, max: 64, default: 3, help: 'with --mixture: the router keeps this many specialists per prompt' },
  'mixture-mode': { type: 'string', choices: MIXTURE_MODES, default: 'posterior', help: 'with --mixture: mix by the posterior, uniformly, or use the top specialist only' },
  'mixture-stack': { type: 'string', choices: ['auto', 'off'], default: 'auto', help: 'with --mixture: auto steps specialists of one shape as one stacked model (one graph a token); off loads each apart' },
  'show-attribution': { type: 'boolean', default: false, help: 'with --mixture: colour each token by its top specialist (not when piped or NO_COLOR), summary on stderr' },
};

/** ANSI colours of the specialists, in --mixture order (cycled past 6). */
const PALETTE = ['31', '32', '34', '35', '36', '33'] as const;

/** The --mixture files, checked before any work: they exist, none twice, one tokenizer. Undefined without --mixture. */
export async function checkMixtureFlags(cmd: string, f: Parsed['flags']): Promise<string[] | undefined> {
  const list = f.mixture as string | undefined;
  if (list === undefined) {
    if (f['show-attribution'] === true) throw new UsageError('--show-attribution needs --mixture', cmd);
    return undefined;
  }
  if (f.model !== undefined) throw new UsageError('give --model or --mixture, not both', cmd);
  const files = list.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (files.length === 0) throw new UsageError('--mixture names no file: write --mixture a.gguf,b.gguf', cmd);
  const [{ openModelFile, ModelFileError }, { tokenizerHash }, { realpathSync }] = await Promise.all([
    import('../model/load.ts'),
    import('../federation/directory/model-facts.ts'),
    import('node:fs'),
  ]);
  const seen = new Set<string>();
  let first: { file: string; hash: string } | undefined;
  for (const file of files) {
    let hash: string;
    try {
      const gguf = openModelFile(file);
      try {
        hash = tokenizerHash(gguf);
      } finally {
        gguf.dispose();
      }
    } catch (e) {
      if (e instanceof ModelFileError) throw new UsageError(`${e.message.split(':')[0]}: ${file} (--mixture)`, cmd);
      throw e;
    }
    const real = realpathSync(file);
    if (seen.has(real)) throw new UsageError(`--mixture names ${file} twice: name each specialist once`, cmd);
    seen.add(real);
    if (first === undefined) first = { file, hash };
    else if (hash !== first.hash) throw new UsageError(`--mixture: ${file} has another tokenizer than ${first.file} (${hash} vs ${first.hash}): mix specialists of one base`, cmd);
  }
  return files;
}

/** Whether to colour: stdout is a terminal and NO_COLOR is unset or empty (no-color.org). */
export function useColour(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && (env.NO_COLOR ?? '') === '';
}

/** Streams the mixture's continuation of `text` to stdout. */
export async function runMixture(cmd: string, files: readonly string[], f: Parsed['flags'], encode: (tokenizer: Tokenizer) => Promise<number[]>, sampling: SamplerOptions, maxTokens: number): Promise<number> {
  const [{ Tokenizer }, { getGgml }, mixture, { loadLocalSpecialists }, { tokenizerHash }, { openModelFile }] = await Promise.all([
    import('../model/tokenizer.ts'), import('../ggml/runtime.ts'), import('../model/mixture/index.ts'), import('../model/mixture/load-local.ts'),
    import('../federation/directory/model-facts.ts'), import('../model/load.ts'),
  ]);
  const gpu = f.gpu as 'auto' | 'off';
  const ggml = getGgml({ gpu, ...(f.threads !== undefined ? { threads: f.threads as number } : {}) });
  const tokenizer = await Tokenizer.load(files[0]!);
  let loaded: { dispose(): void } | undefined;
  try {
    const hashOf = (file: string) => {
      const gguf = openModelFile(file);
      try {
        return tokenizerHash(gguf);
      } finally {
        gguf.dispose();
      }
    };
    const local = await loadLocalSpecialists(files.map((file) => ({ path: file, id: file.split('/').pop()!.replace(/\.gguf$/i, ''), tokenizerHash: hashOf(file) })), ggml, {
      gpu, ...(f['ctx-size'] !== undefined ? { nCtx: f['ctx-size'] as number } : {}), stack: f['mixture-stack'] as 'auto' | 'off',
      log: (m) => process.stderr.write(`${m}\n`),
    });
    loaded = local;
    const specialists = local.specialists;
    const generator = new mixture.MixtureGenerator(specialists, tokenizer, ggml, { k: f['mixture-k'] as number, mode: f['mixture-mode'] as MixtureMode });
    const show = f['show-attribution'] === true;
    const colour = show && useColour(process.stdout);
    const colourOf = new Map(specialists.map((s, i) => [s.id, PALETTE[i % PALETTE.length]!]));
    const topCounts = new Map<string, number>();
    const ac = new AbortController();
    const onSig = () => ac.abort();
    process.on('SIGINT', onSig);
    let trail: MixtureTrail | undefined;
    try {
      const it = generator.stream(await encode(tokenizer), { ...sampling, maxTokens, signal: ac.signal });
      for (;;) {
        const r = await it.next();
        if (r.done) {
          trail = r.value.trail;
          break;
        }
        const top = r.value.attribution?.reduce((a, b) => (b.share > a.share ? b : a));
        if (top !== undefined) topCounts.set(top.model, (topCounts.get(top.model) ?? 0) + 1);
        if (!r.value.text) continue;
        process.stdout.write(colour && top !== undefined ? `\x1b[${colourOf.get(top.model)}m${r.value.text}\x1b[0m` : r.value.text);
      }
    } finally {
      process.off('SIGINT', onSig);
    }
    process.stdout.write('\n');
    if (show && trail !== undefined) writeSummary(trail, topCounts, colour ? colourOf : undefined);
    return 0;
  } catch (e) {
    if (e instanceof mixture.TokenizerMismatchError) throw new UsageError(e.message, cmd);
    throw e;
  } finally {
    await tokenizer.dispose();
    loaded?.dispose();
  }
}

function writeSummary(trail: MixtureTrail, topCounts: ReadonlyMap<string, number>, colours: ReadonlyMap<string, string> | undefined): void {
  const total = [...topCounts.values()].reduce((a, b) => a + b, 0) || 1;
  const name = (m: string) => (colours ? `\x1b[${colours.get(m)}m${m}\x1b[0m` : m);
  const routed = trail.routed.map((r) => `${name(r.model)} ${(100 * (topCounts.get(r.model) ?? 0) / total).toFixed(0)}% of tokens (prompt weight ${r.weight.toFixed(3)})`);
  process.stderr.write(`attribution (${trail.mode}): ${routed.join(', ')}\n`);
  if (trail.notRouted.length > 0) process.stderr.write(`not routed: ${trail.notRouted.map((r) => `${r.model} (${r.weight.toExponential(1)})`).join(', ')}\n`);
  for (const d of trail.dropped) process.stderr.write(`dropped: ${d.model} after ${d.atToken} tokens: ${d.reason}\n`);
}
