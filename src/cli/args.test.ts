// The flag spec checks every value before a command runs: whole numbers, ranges, negative values, URLs; and
// every number flag of every command declares what it accepts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CORES, type CommandSpec, THREADS_PER_CORE_MAX, UsageError, parseCommand, renderHelp } from './args.ts';

const spec: CommandSpec = {
  name: 't',
  summary: 's',
  usage: 'u',
  flags: {
    threads: { type: 'number', integer: true, min: 1, max: 8, help: 'threads' },
    temp: { type: 'number', min: 0, max: 2, default: 0.8, help: 'temperature' },
    'n-predict': { type: 'number', short: 'n', integer: true, min: -1, unit: 'tokens', default: 16, help: 'tokens' },
    seed: { type: 'number', integer: true, min: -5, help: 'seed' },
    url: { type: 'url', schemes: ['http', 'https'], help: 'where' },
    name: { type: 'string', help: 'a name' },
  },
};

const parse = (...argv: string[]) => parseCommand(spec, argv).flags;
const refused = (argv: string[], message: RegExp) => assert.throws(() => parseCommand(spec, argv), (e: unknown) => e instanceof UsageError && message.test(e.message));

test('number flags: whole numbers and ranges', () => {
  assert.equal(parse('--threads', '4').threads, 4);
  refused(['--threads', '0'], /--threads must be between 1 and 8 \(got 0\)/);
  refused(['--threads', '1000'], /between 1 and 8/);
  refused(['--threads', '2.5'], /--threads needs a whole number \(got '2\.5'\)/);
  refused(['-n', '2.5'], /--n-predict needs a whole number/);
  refused(['--temp', '7'], /--temp must be between 0 and 2/);
  refused(['--temp', 'hot'], /--temp needs a number/);
  assert.equal(parse('--temp', '0.5').temp, 0.5);
  assert.equal(parse().temp, 0.8);
});

test('negative numbers are values, not options', () => {
  refused(['--temp', '-1'], /--temp must be between 0 and 2 \(got -1\)/);
  assert.equal(parse('--n-predict', '-1')['n-predict'], -1);
  assert.equal(parse('-n', '-1')['n-predict'], -1);
  assert.equal(parse('--seed', '-5').seed, -5);
  assert.equal(parse('--seed=-3').seed, -3);
  assert.equal(parse('--temp', '-0')['temp'], -0);
  // A string flag takes a negative-looking value too; an unknown option is still refused.
  assert.equal(parse('--name', '-1').name, '-1');
  refused(['--bogus', '-1'], /Unknown option '--bogus'/);
});

test('URL flags: a URL with one of the schemes', () => {
  assert.equal(parse('--url', 'http://10.0.0.1:8420').url, 'http://10.0.0.1:8420');
  refused(['--url', '10.0.0.1:8420'], /--url (needs a URL|must start with http:\/\/ or https:\/\/)/);
  refused(['--url', 'not a url'], /--url needs a URL/);
  refused(['--url', 'ftp://host:21'], /--url must start with http:\/\/ or https:\/\//);
});

test('--help shows the range and the unit of a number flag', () => {
  const help = renderHelp(spec);
  assert.match(help, /--threads N\s+threads \(whole, between 1 and 8\)/);
  assert.match(help, /-n, --n-predict N\s+tokens \(in tokens; whole, at least -1; default: 16\)/);
});

const COMMANDS = ['demo', 'generate', 'chat', 'tokenize', 'inspect', 'train', 'eval', 'coordinator', 'node', 'certs'];

test('every number flag of every command says whether it is whole and its smallest value', async () => {
  for (const name of COMMANDS) {
    const { spec: s } = (await import(`./${name}.ts`)) as { spec: CommandSpec };
    for (const [flag, f] of Object.entries(s.flags)) {
      if (f.type !== 'number') continue;
      assert.ok(f.min !== undefined, `${name} --${flag} declares its smallest value`);
      if (/threads|port|n-predict|ctx|steps|batch|seed|parallel|workers|layers|every|tokens|size/.test(flag)) {
        assert.equal(f.integer, true, `${name} --${flag} takes whole numbers`);
      }
      if (f.default !== undefined) {
        const d = f.default as number;
        assert.ok(d >= f.min! && (f.max === undefined || d <= f.max), `${name} --${flag}'s default ${d} is in its range`);
      }
    }
    if (s.flags.threads) assert.equal(s.flags.threads.max, CORES * THREADS_PER_CORE_MAX, `${name} --threads is capped by the cores`);
  }
});

test('safe defaults: the OpenAI API listens on this machine only unless --api-host says otherwise', async () => {
  const { spec: node } = (await import('./node.ts')) as { spec: CommandSpec };
  assert.equal(node.flags['api-host']?.default, '127.0.0.1');
  assert.equal(parseCommand(node, ['--role', 'primary', '--coordinator-url', 'http://h:1']).flags['api-host'], '127.0.0.1');
});
