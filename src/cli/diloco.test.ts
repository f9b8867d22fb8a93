// `sharedllm diloco`: its help teaches both actions, and every bad flag is refused before any work (exit 2,
// one line saying what was wrong), in-process through main().
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderHelp } from './args.ts';
import { spec } from './diloco.ts';
import { main } from './main.ts';

async function run(...argv: string[]): Promise<{ code: number; err: string }> {
  let err = '';
  const w = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string) => ((err += s), true)) as typeof process.stderr.write;
  try {
    return { code: await main(argv), err };
  } finally {
    process.stderr.write = w;
  }
}

const URL = ['--coordinator-url', 'http://127.0.0.1:1'];
const SERVE = ['diloco', 'serve', ...URL, '--init', 'package.json', '--out', '/tmp', '--rounds', '2', '--inner-steps', '5'];

test('diloco --help shows both actions with every option', async () => {
  const help = renderHelp(spec);
  for (const s of ['diloco serve', 'diloco join', '--aggregator', '--min-replicas', '--round-timeout', '--compress', '--corpus', '--job', 'Examples:']) assert.ok(help.includes(s), s);
});

test('bad flags are refused before any work, with what was wrong', async () => {
  const cases: [string[], RegExp][] = [
    [['diloco', ...URL], /which action\? one of serve, join/],
    [['diloco', 'train', ...URL], /got 'train'/],
    [['diloco', 'join', ...URL], /missing --corpus/],
    [['diloco', 'join', '--corpus', 'test/fixtures/prose'], /missing --coordinator-url/],
    [['diloco', 'join', ...URL, '--corpus', '/no/such/dir'], /--corpus \/no\/such\/dir does not exist/],
    [['diloco', 'join', ...URL, '--corpus', 'test/fixtures/prose', '--job', 'XYZ'], /--job needs a job id/],
    [['diloco', 'join', ...URL, '--corpus', 'test/fixtures/prose', '--rounds', '3'], /--rounds is a diloco serve option/],
    [['diloco', 'serve', ...URL, '--out', '/tmp', '--rounds', '2', '--inner-steps', '5'], /missing --init/],
    [[...SERVE, '--rounds', '0'], /--rounds must be between 1/],
    [[...SERVE, '--aggregator', 'mode'], /--aggregator must be one of mean, median, trimmed-mean, centered-clip, krum/],
    [[...SERVE, '--compress', 'q4'], /--compress must be one of f16, int8, f32/],
    [[...SERVE, '--outer-momentum', '1'], /--outer-momentum must be between 0 and 0.999/],
    [[...SERVE, '--aggregator', 'trimmed-mean', '--assumed-byzantine', '1', '--min-replicas', '2'], /--min-replicas must be more than 2/],
    [[...SERVE, '--aggregator', 'krum', '--assumed-byzantine', '1', '--min-replicas', '3'], /--min-replicas must be at least 4/],
    [[...SERVE, '--init', '/no/such.gguf'], /--init \/no\/such.gguf is not a file/],
    [[...SERVE, '--out', 'package.json'], /--out package.json is a file/],
    [[...SERVE, '--lan-addr', '10.0.0.1:9999'], /must end with the --rpc-port 50060/],
    [[...SERVE, '--corpus', 'x'], /--corpus is a diloco join option/],
  ];
  for (const [argv, re] of cases) {
    const r = await run(...argv);
    assert.equal(r.code, 2, `${argv.join(' ')}: ${r.err}`);
    assert.match(r.err, re, argv.join(' '));
    assert.equal(r.err.trim().split('\n').length, 1, 'one line');
  }
});
