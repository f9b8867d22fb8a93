// A fake bet for _parallel.test.ts (not in the catalogue: its name starts with `_`): each seed's values follow
// from the seed in milliseconds, so that a --jobs run can be compared with a sequential one. Its extra holds
// a NaN (which JSON cannot hold) and the measuring process's pid. FAIL_SEED=S in the environment makes seed S
// fail, as a seed's process that crashes; FIXTURE_DELAY_MS=N makes every seed take N ms (a long seed to stop).
import { z } from 'zod';
import { defineBet, isMain, runFromCli } from './_common.ts';

const Extra = z.object({ seed: z.number(), nan: z.nan(), pid: z.number() });

export const bet = defineBet<{ delayMs: number }>({
  id: '99',
  name: 'parallel_fixture',
  hypothesis: 'A fixture: seeds measured in child processes give the numbers of seeds measured in one process.',
  notClaimed: 'Anything: this is a test fixture.',
  run: 'node --import tsx experiments/bets/_parallel_fixture.ts --jobs 2',
  seeds: [3, 1, 2],
  threads: 1,
  criteria: [
    { level: 'strict', quantity: 'double', stat: 'mean', op: '>=', threshold: 4, words: 'double >= 4' },
    { level: 'lenient', quantity: 'double', stat: 'mean', op: '>=', threshold: 2, words: 'double >= 2' },
    { level: 'catastrophic', quantity: 'double', stat: 'mean', op: '<', threshold: 0, words: 'double < 0' },
  ],
  controls: [{ name: 'none', description: 'a fixture' }],
  quantities: {
    double: { unit: '', description: 'twice the seed' },
    inverse: { unit: '', description: 'one over the seed' },
  },
  sizes: { full: { delayMs: 20 }, smoke: { delayMs: 1 } },
  measure: async ({ seed, sizes, log }) => {
    log(`measuring seed ${seed}`);
    if (process.env.FAIL_SEED === String(seed)) {
      process.stderr.write(`fixture: seed ${seed} fails on purpose\n`);
      process.exit(3);
    }
    await new Promise((resolve) => setTimeout(resolve, Number(process.env.FIXTURE_DELAY_MS ?? sizes.delayMs)));
    return { values: { double: 2 * seed, inverse: 1 / seed }, items: { inverse: [1 / seed, 1 / (seed + 1)] }, extra: { seed, nan: Number.NaN, pid: process.pid } };
  },
  finish: (runs) => {
    const extras = runs.map((r) => Extra.parse(r.measurement.extra));
    return {
      details: { seeds: extras.map((e) => e.seed), nanKept: extras.map((e) => Number.isNaN(e.nan)), inThisProcess: extras.map((e) => e.pid === process.pid) },
    };
  },
});

if (isMain(import.meta.url)) await runFromCli(bet);
