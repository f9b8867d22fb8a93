// The server's round keeper under faults, with a fake clock and no network: a stalled participant is dropped
// at the deadline, too few deltas extend the round, late deltas are discarded, newcomers join between rounds,
// and bad deltas (shape, dtype, size, NaN/Inf, empty shard, bad hash, future round) are refused while the
// round goes on. Every event is counted in the round's events (the metrics line).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { silentLogger } from '../../util/log.ts';
import { defaultDilocoConfig } from '../../train/diloco/config.ts';
import { DilocoServer } from '../../train/diloco/round.ts';
import { type WireTensor, encodeDelta } from '../../train/diloco/wire.ts';
import { type RoundEvents, RoundKeeper } from './rounds.ts';

const shapes = [{ name: 'a', ne: [4] }, { name: 'b', ne: [2, 3] }];
const init = new Map([['a', new Float32Array(4)], ['b', new Float32Array(6)]]);
const hash = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const settle = () => new Promise((resolve) => setImmediate(resolve));

function setup(o: { minReplicas?: number; rounds?: number } = {}) {
  let now = 0;
  const events: RoundEvents[] = [];
  const server = new DilocoServer({ ...defaultDilocoConfig(), compression: 'f16' }, shapes, init);
  const keeper = new RoundKeeper({ server, rounds: o.rounds ?? 5, minReplicas: o.minReplicas ?? 2, roundTimeoutMs: 1000, logger: silentLogger, finish: (e) => void events.push(e), now: () => now });
  const tensorsOf = (round: number, value = 0.1): WireTensor[] =>
    encodeDelta(new Map([['a', new Float32Array(4).fill(value)], ['b', new Float32Array(6).fill(value)]]), shapes, 'f16', round, 'x').tensors;
  /** Enrol, push every tensor, commit: what a participant does in a round. */
  const hand = (p: string, round: number, tensors = tensorsOf(round), shardTokens = 100) => {
    keeper.enrol(p, round, 40);
    for (const t of tensors) keeper.push(p, round, t, hash(t.data));
    return keeper.commit(p, round, { shardTokens, innerLoss: 3, computeMs: 5 });
  };
  return { keeper, server, events, hand, tensorsOf, advance: (ms: number) => (now += ms) };
}

test('a round completes once every enrolled participant handed in a delta, and the weights move', async () => {
  const { keeper, server, events, hand } = setup();
  assert.equal(hand('p1', 0).status, 'accepted');
  await settle();
  assert.equal(events.length, 0, 'p1 alone is below min replicas');
  assert.equal(hand('p2', 0).status, 'accepted');
  await settle();
  assert.equal(events.length, 1);
  assert.deepEqual(events[0]!.accepted.sort(), ['p1', 'p2']);
  assert.deepEqual(events[0]!.joined.sort(), ['p1', 'p2']);
  assert.equal(events[0]!.stepped, true);
  assert.equal(keeper.round, 1);
  assert.ok(server.params.get('a')![0]! < 0, 'the outer step subtracts the positive pseudo-gradient');
});

test('a participant that stalls is dropped at the deadline; the round completes with the others', async () => {
  const { keeper, events, hand, advance } = setup();
  keeper.enrol('stalled', 0, 40);
  hand('p1', 0);
  hand('p2', 0);
  await settle();
  assert.equal(events.length, 0, 'waits for the enrolled participant until the deadline');
  advance(1001);
  await keeper.tick();
  assert.equal(events.length, 1);
  assert.deepEqual(events[0]!.dropped, ['stalled']);
  assert.equal(events[0]!.accepted.length, 2);
});

test('too few deltas by the deadline extend the round (counted); the next delta completes it', async () => {
  const { keeper, events, hand, advance } = setup({ minReplicas: 2 });
  hand('p1', 0);
  keeper.enrol('p2', 0, 40);
  advance(1001);
  await keeper.tick();
  assert.equal(events.length, 0);
  advance(1001);
  await keeper.tick();
  assert.equal(keeper.round, 0, 'still waiting');
  hand('p3', 0);
  advance(1001);
  await keeper.tick();
  assert.equal(events.length, 1);
  assert.equal(events[0]!.extended, 2);
  assert.deepEqual(events[0]!.dropped, ['p2']);
});

test('a late delta for a round that is over is discarded and counted; a newcomer joins between rounds', async () => {
  const { keeper, events, hand, tensorsOf } = setup();
  hand('p1', 0);
  hand('p2', 0);
  await settle();
  const late = tensorsOf(0)[0]!;
  assert.throws(() => keeper.push('slow', 0, late, hash(late.data)), (e: Error & { code?: string }) => e.code === 'late_round');
  assert.equal(keeper.commit('slow', 0, { shardTokens: 100 }).status, 'late');
  assert.throws(() => keeper.enrol('slow', 0, 40), (e: Error & { code?: string }) => e.code === 'stale_round');
  hand('p1', 1);
  hand('p3', 1);
  await settle();
  assert.equal(events.length, 2);
  assert.deepEqual(events[1]!.late, [{ participant: 'slow', round: 0 }], 'counted once');
  assert.deepEqual(events[1]!.joined, ['p3'], 'a late delta alone is not a join');
});

test('bad deltas are refused with a reason and counted; the job goes on with the good ones', async () => {
  const { keeper, events, hand, tensorsOf } = setup({ minReplicas: 1 });
  const good = tensorsOf(0);
  const cases: [string, WireTensor[], number, string][] = [
    ['shape', [{ ...good[0]!, ne: [5] }, good[1]!], 100, 'shape'],
    ['dtype', [{ ...good[0]!, dtype: 'bf16' }, good[1]!], 100, 'dtype'],
    ['size', [{ ...good[0]!, data: good[0]!.data.subarray(2) }, good[1]!], 100, 'size'],
    ['nan', tensorsOf(0, Number.NaN), 100, 'non-finite'],
    ['inf', tensorsOf(0, Number.POSITIVE_INFINITY), 100, 'non-finite'],
    ['missing', [good[0]!], 100, 'missing'],
    ['empty', good, 0, 'empty-shard'],
  ];
  for (const [who, tensors, shard] of cases) {
    const r = hand(who, 0, tensors, shard);
    assert.equal(r.status, 'refused', who);
    assert.match(r.reason!, new RegExp(`delta from ${who} refused`));
  }
  await settle();
  assert.equal(events.length, 0, 'refused deltas do not count towards min replicas');
  hand('ok', 0);
  await settle();
  assert.equal(events.length, 1);
  assert.deepEqual(events[0]!.accepted, ['ok']);
  assert.deepEqual(events[0]!.refused.map((r) => r.code), cases.map((c) => c[3]));
  assert.equal(keeper.commit('ok', 3, { shardTokens: 1 }).status, 'refused', 'a delta for a future round');
});

test('a tensor whose bytes fail their hash is refused (sent again by the participant) and counted', async () => {
  const { keeper, events, hand, tensorsOf } = setup({ minReplicas: 1 });
  const t = tensorsOf(0)[0]!;
  keeper.enrol('p1', 0, 40);
  assert.throws(() => keeper.push('p1', 0, t, '0'.repeat(64)), (e: Error & { code?: string }) => e.code === 'bad_hash');
  hand('p1', 0);
  await settle();
  assert.equal(events[0]!.hashMismatches, 1);
  assert.deepEqual(events[0]!.accepted, ['p1']);
});

test('after the last round the keeper is done and answers no round', async () => {
  const { keeper, hand } = setup({ minReplicas: 1, rounds: 1 });
  hand('p1', 0);
  await settle();
  assert.equal(keeper.state, 'done');
  await keeper.waitUntilDone();
  assert.throws(() => keeper.enrol('p1', 1, 40), /not open/);
});

test('a long poll is answered at once when the open round holds no delta of the caller (a restarted server lost it)', async () => {
  const { keeper, hand } = setup({ minReplicas: 2 });
  hand('p1', 0);
  assert.equal(keeper.handedIn('p1'), true);
  assert.equal(keeper.handedIn('p2'), false);
  // p1 handed in round 0: its poll for a round after 0 waits (here: until the short timeout)...
  let answered = false;
  const wait = keeper.waitForRound(0, 50, 'p1').then(() => (answered = true));
  await settle();
  assert.equal(answered, false);
  await wait;
  // ...while p2, which thinks it handed in round 0 to a server that lost it, is answered at once.
  await keeper.waitForRound(0, 60_000, 'p2');
});
