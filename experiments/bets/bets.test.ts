// The research plane's checks: the verdict is mechanical, every bet runs in --smoke mode and writes a result
// the one schema accepts (into a temp folder, never results/), committed results are full runs that came
// after their bet's criteria in git history, and the rollup regenerates SUMMARY.md and its plots
// byte for byte.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { BETS_DIR, ROOT, RESULTS_DIR, resultPath, runBet } from './_common.ts';
import { listBets, loadBet } from './_catalogue.ts';
import { ResultSchema, type Criterion, type Quantity } from './_schema.ts';
import { bootstrapCI } from './_stats.ts';
import { judge } from './_verdict.ts';
import { readResults, rollup } from './00_rollup.ts';

const q = (mean: number): Quantity => ({ unit: '', description: '', perSeed: [mean], mean, ci95: [mean - 1, mean + 1] });
const c = (level: Criterion['level'], op: Criterion['op'], threshold: number, stat: Criterion['stat'] = 'mean'): Criterion => ({ level, quantity: 'x', stat, op, threshold, words: `x ${op} ${threshold}` });

test('the verdict follows the declared criteria: catastrophic first, then strict, lenient, fail', () => {
  const criteria = [c('strict', '<=', 1), c('lenient', '<=', 2), c('catastrophic', '>', 5)];
  assert.equal(judge(criteria, { x: q(0.5) }).verdict, 'strict');
  assert.equal(judge(criteria, { x: q(1.5) }).verdict, 'lenient');
  assert.equal(judge(criteria, { x: q(3) }).verdict, 'fail');
  assert.equal(judge(criteria, { x: q(6) }).verdict, 'catastrophic');
  // A criterion may read an end of the CI instead of the mean.
  assert.equal(judge([c('strict', '<=', 1, 'ci_high'), c('lenient', '<=', 2), c('catastrophic', '>', 5)], { x: q(0.5) }).verdict, 'lenient');
  assert.throws(() => judge(criteria, {}), /quantity 'x'/);
});

test('bootstrap CIs are seeded (same numbers every run) and contain the mean', () => {
  const values = [3, 1, 4, 1, 5, 9, 2, 6];
  const a = bootstrapCI(values);
  assert.deepEqual(bootstrapCI(values), a);
  assert.ok(a[0] <= 3.875 && 3.875 <= a[1]);
  assert.deepEqual(bootstrapCI([7]), [7, 7]);
});

test('every bet runs in --smoke mode and writes a result the schema accepts', { timeout: 240_000 }, async () => {
  const bets = listBets();
  assert.ok(bets.length > 0, 'no bets in the catalogue');
  const out = mkdtempSync(join(tmpdir(), 'sharedllm-bets-test-'));
  try {
    for (const entry of bets) {
      const bet = await loadBet(entry.id);
      const committed = existsSync(resultPath(RESULTS_DIR, bet)) ? readFileSync(resultPath(RESULTS_DIR, bet)) : undefined;
      const result = await runBet(bet, { smoke: true, outDir: out });
      assert.equal(result.mode, 'smoke');
      ResultSchema.parse(JSON.parse(readFileSync(resultPath(out, bet), 'utf8')));
      if (committed) assert.deepEqual(readFileSync(resultPath(RESULTS_DIR, bet)), committed, 'a smoke run touched results/');
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

function git(args: string[]): string | undefined {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

test('committed results are full runs whose bet (criteria) was committed before them', () => {
  const results = readResults();
  const shallow = git(['rev-parse', '--is-shallow-repository']);
  for (const r of results) {
    const betFile = relative(ROOT, join(BETS_DIR, `${r.bet}_${r.name}.ts`));
    const resultFile = relative(ROOT, resultPath(RESULTS_DIR, { id: r.bet, name: r.name }));
    assert.ok(existsSync(join(ROOT, betFile)), `${resultFile} has no bet file ${betFile}`);
    assert.ok(r.seeds.length >= 3, `${resultFile}: a full run has at least 3 seeds`);
    if (shallow !== 'false') continue; // no history to check (shallow clone, or no git)
    const added = (file: string) => git(['log', '--follow', '--diff-filter=A', '--format=%H', '--', file])?.split('\n').filter(Boolean).at(-1);
    const betCommit = added(betFile);
    // The result's own path, not followed: --follow also takes copies, and a result that repeats another bet's
    // numbers (a hardened replacement that confirms it) would be traced back to that older result.
    const resultCommit = git(['log', '--diff-filter=A', '--format=%H', '--', resultFile])?.split('\n').filter(Boolean).at(-1);
    if (resultCommit === undefined) continue; // not committed yet
    assert.ok(betCommit !== undefined, `${resultFile} is committed but its bet ${betFile} is not`);
    assert.notEqual(betCommit, resultCommit, `${resultFile} was committed together with its criteria: pre-register first`);
    assert.notEqual(git(['merge-base', '--is-ancestor', betCommit, resultCommit]), undefined, `${betFile} must be committed before ${resultFile}`);
  }
});

test('the rollup gives byte-identical files twice, and the committed SUMMARY.md and plots are up to date', { timeout: 60_000 }, async () => {
  const a = mkdtempSync(join(tmpdir(), 'sharedllm-rollup-a-'));
  const b = mkdtempSync(join(tmpdir(), 'sharedllm-rollup-b-'));
  try {
    const files = await rollup({ outDir: a });
    assert.deepEqual(await rollup({ outDir: b }), files);
    for (const f of files) assert.deepEqual(readFileSync(join(b, f)), readFileSync(join(a, f)), `${f} differs between two rollups`);
    if (readResults().length === 0) return;
    const committed = ['SUMMARY.md', ...readdirSync(join(BETS_DIR, 'plots')).map((f) => `plots/${f}`)].sort();
    assert.deepEqual(committed, [...files].sort(), 'plots/ holds other files than the rollup writes: run npm run bets:rollup');
    for (const f of files) assert.equal(readFileSync(join(BETS_DIR, f), 'utf8'), readFileSync(join(a, f), 'utf8'), `${f} is stale: run npm run bets:rollup`);
  } finally {
    rmSync(a, { recursive: true, force: true });
    rmSync(b, { recursive: true, force: true });
  }
});
