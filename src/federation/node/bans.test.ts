import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LogFields, Logger } from '../../util/log.ts';
import { Bans } from './bans.ts';
import { lanDataPlane, localTestDataPlane, validateDataPlane, wanDataPlane } from './dataplane-config.ts';

test('bans double with each failure up to the cap, are logged with their delay, and are forgotten after a quiet spell', () => {
  let now = 1_000_000;
  const logged: LogFields[] = [];
  const logger: Logger = { debug: () => {}, info: () => {}, error: () => {}, warn: (_m, f) => void logged.push(f ?? {}) };
  const bans = new Bans({ banBaseMs: 100, banFactor: 2, banMaxMs: 500, banForgetMs: 10_000 }, logger, () => now);
  assert.deepEqual([1, 2, 3, 4, 5].map(() => bans.ban('w', 'timeout')), [100, 200, 400, 500, 500]);
  assert.deepEqual(logged.map((f) => f.banMs), [100, 200, 400, 500, 500]);
  assert.ok(bans.has('w'));
  assert.deepEqual([...bans.active()], ['w']);
  now += 501;
  assert.ok(!bans.has('w'), 'a ban ends');
  assert.equal(bans.size, 0);
  assert.equal(bans.ban('w', 'again'), 500, 'a recent offender keeps its strikes');
  now += 20_000;
  assert.equal(bans.ban('w', 'much later'), 100, 'strikes are forgotten after banForgetMs');
});

test('the presets are valid; a config whose bans shrink is refused', () => {
  for (const c of [lanDataPlane(), wanDataPlane(), localTestDataPlane()]) validateDataPlane(c);
  assert.throws(() => validateDataPlane({ ...lanDataPlane(), banFactor: 0.5 }), /banFactor must be >= 1/);
  assert.throws(() => validateDataPlane({ ...lanDataPlane(), banMaxMs: 1 }), /banMaxMs/);
  assert.throws(() => validateDataPlane({ ...lanDataPlane(), callTimeoutMs: 0 }), /callTimeoutMs/);
});
