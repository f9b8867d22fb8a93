// `npm run bench`: SharedLLM's performance against its references, measured in the same run, medians and
// ratios printed. A benchmark, not a test: nothing here fails on a number.
//   npm run bench                      everything
//   npm run bench -- --only engine     one section (engine, federation, train, diloco, mixture, mixture-deep, adapters)
//   npm run bench -- --runs 5 --threads 2
//   --fed-threads N   threads per process in the federation section (default: cores / 3, at least 1)
//   --fed-cpus 0-1    and pin every process's threads to these cores (sharedllm node --cpus)
import { parseArgs } from 'node:util';
import { defaultThreads } from '../src/ggml/runtime.ts';
import { benchEngine } from './engine.ts';
import { log } from './stats.ts';

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    runs: { type: 'string', default: '3' },
    threads: { type: 'string' },
    'fed-threads': { type: 'string' },
    'fed-cpus': { type: 'string' },
    types: { type: 'string', default: 'Q8_0,Q4_0' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  // The header comment above is the usage text.
  console.log(`Usage: npm run bench -- [options]
  --only S          sections to run, comma-separated: engine, federation, train, diloco, mixture, mixture-deep, adapters (default: all)
  --runs N          runs per measurement, medians reported (default 3)
  --threads N       compute threads for engine and train (default: this machine's default)
  --fed-threads N   threads per process in the federation section (default: cores / 3, at least 1)
  --fed-cpus LIST   pin every federation process's threads to these cores, e.g. 0-1
  --types LIST      quantisations for the engine section (default Q8_0,Q4_0)
A benchmark, not a test: it prints medians and ratios against the reference measured in the same run.`);
  process.exit(0);
}
const runs = Number(values.runs);
const threads = values.threads ? Number(values.threads) : defaultThreads();
/** Sections are separate files, loaded only when run. */
const section = (name: string) => `./${name}.ts`;
const want = (s: string) => !values.only || values.only.split(',').includes(s);

const sections: [string, () => Promise<unknown>][] = [
  ['engine', () => benchEngine({ types: values.types!.split(',') as never, runs, threads, decodeTokens: 128, promptTokens: 512 })],
  ['federation', async () => (await import(section('federation'))).benchFederation({
    runs,
    ...(values['fed-threads'] ? { threads: Number(values['fed-threads']) } : {}),
    ...(values['fed-cpus'] ? { cpus: (await import('../src/cli/node.ts')).parseCpuList(values['fed-cpus']) } : {}),
  })],
  ['train', async () => (await import(section('train'))).benchTrain({ threads })],
  ['diloco', async () => (await import(section('diloco'))).benchDiloco({ threads: 1 })],
  ['mixture', async () => (await import(section('mixture'))).benchMixture({ runs, threads })],
  ['mixture-deep', async () => (await import(section('mixture-deep'))).benchMixtureDeep({ runs: Math.max(runs, 5), threads })],
  ['adapters', async () => (await import(section('adapters'))).benchAdapters({ threads, runs })],
];

log(`# SharedLLM benchmarks (${new Date().toISOString()}, ${threads} threads, ${runs} runs, medians)`);
for (const [name, fn] of sections) {
  if (!want(name)) continue;
  try {
    await fn();
  } catch (e) {
    const err = e as Error;
    if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') log(`\n## ${name}: not available yet (${err.message.split('\n')[0]})`);
    else throw e;
  }
}
process.exit(0);
