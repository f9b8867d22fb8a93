// --jobs: a fake bet (_parallel_fixture.ts) measured 2 seeds at a time in child processes writes the
// quantities, verdict and details of the same bet measured in this process, seed by seed; a seed's process
// that fails fails the run with its exit code and its stderr.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { BETS_DIR, parseBetArgs, resultPath, runBet } from './_common.ts';
import { bet } from './_parallel_fixture.ts';
import { SeedProcessError, measurementFromJson, measurementToJson } from './_parallel.ts';
import { ResultSchema } from './_schema.ts';

const file = join(BETS_DIR, '_parallel_fixture.ts');
const dir = mkdtempSync(join(tmpdir(), 'sharedllm-parallel-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('--jobs 2 over 3 seeds writes the result of a sequential run', { timeout: 60_000 }, async () => {
  const seq = await runBet(bet, { smoke: false, outDir: join(dir, 'seq') });
  const par = await runBet(bet, { smoke: false, outDir: join(dir, 'par'), jobs: 2, file });
  assert.deepEqual(par.seeds, [3, 1, 2]);
  assert.deepEqual(par.quantities, seq.quantities);
  assert.deepEqual(par.quantities.double?.perSeed, [6, 2, 4], 'perSeed in the order of the bet\'s seeds');
  assert.deepEqual(par.criteriaResults, seq.criteriaResults);
  assert.equal(par.verdict, seq.verdict);
  assert.deepEqual(par.details.seeds, [3, 1, 2]);
  assert.deepEqual(par.details.nanKept, [true, true, true], 'a NaN in extra reaches finish() as NaN');
  assert.deepEqual(seq.details.inThisProcess, [true, true, true]);
  assert.deepEqual(par.details.inThisProcess, [false, false, false], 'each seed was measured in a child process');
  assert.deepEqual(par.environment.threads, seq.environment.threads);
  assert.ok(par.notes.some((n) => n.includes('--jobs 2')), 'the result says its seeds shared the machine');
  ResultSchema.parse(JSON.parse(readFileSync(resultPath(join(dir, 'par'), bet), 'utf8')));
});

test('a seed whose process fails fails the run with its exit code and stderr, and stops the others', { timeout: 60_000 }, async () => {
  // Seeds 3 and 2 would take 10 minutes: the run ends when seed 1 fails, so they were stopped.
  process.env.FAIL_SEED = '1';
  process.env.FIXTURE_DELAY_MS = '600000';
  try {
    await assert.rejects(runBet(bet, { smoke: false, outDir: join(dir, 'fail'), jobs: 3, file }), (e: unknown) => {
      assert.ok(e instanceof SeedProcessError);
      assert.equal(e.seed, 1);
      assert.equal(e.exitCode, 3);
      assert.match(e.message, /seed 1 fails on purpose/);
      return true;
    });
  } finally {
    delete process.env.FAIL_SEED;
    delete process.env.FIXTURE_DELAY_MS;
  }
});

test('a measurement crosses as JSON with its NaN and infinities; a malformed one is refused', () => {
  const m = { values: { a: 1.5, b: Number.POSITIVE_INFINITY }, items: { a: [Number.NaN, 2] }, extra: { x: [Number.NEGATIVE_INFINITY], f: new Float32Array([1, 2]) } };
  const warnings: string[] = [];
  const back = measurementFromJson(measurementToJson(m, (w) => warnings.push(w)), 'test');
  assert.deepEqual(back, { ...m, extra: { x: [Number.NEGATIVE_INFINITY], f: [1, 2] } });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /typed array/);
  assert.throws(() => measurementFromJson('{"values":{"a":"1"}}', 'a file'), /a file is not a seed's measurement/);
});

test('--jobs is checked with the other flags; --seed-only needs --measurement-out', () => {
  assert.equal(parseBetArgs([]).jobs, 1);
  assert.equal(parseBetArgs(['--jobs', '3']).jobs, 3);
  assert.throws(() => parseBetArgs(['--jobs', '0']), /--jobs/);
  assert.throws(() => parseBetArgs(['--jobs', '1.5']), /--jobs/);
  assert.throws(() => parseBetArgs(['--job', '2']), /job/);
  assert.throws(() => parseBetArgs(['--seed-only', '1']), /--measurement-out/);
  assert.deepEqual(parseBetArgs(['--seed-only', '1', '--measurement-out', 'f.json']).seedOnly, { seed: 1, out: 'f.json' });
});
