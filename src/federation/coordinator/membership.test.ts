import assert from 'node:assert/strict';
import { test } from 'node:test';
import { localTestConfig } from '../config.ts';
import { FakeClock } from '../../util/clock.ts';
import { createEphemeralIdentity } from '../identity.ts';
import { Membership, MembershipError } from './membership.ts';
import type { MembershipErrorCode } from './membership.ts';
import { MemoryStore } from './memory-store.ts';
import { makeRegistration } from './testing.ts';

// suspect after 200 ms of silence, dead after 200 ms more, forgotten 1000 ms after that
const config = localTestConfig();

function setup() {
  const clock = new FakeClock();
  const store = new MemoryStore();
  const membership = new Membership({ store, clock, config });
  return { clock, store, membership };
}

function refusedWith(code: MembershipErrorCode) {
  return (error: unknown) => {
    assert.ok(error instanceof MembershipError, `expected a MembershipError, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.ok(error.hint.length > 0);
    return true;
  };
}

test('a registered node is alive; silence makes it suspect, then dead, then forgotten', () => {
  const { clock, membership } = setup();
  const reg = makeRegistration({ nodeId: 'w1' });
  const { transition } = membership.register(reg);
  assert.deepEqual(transition, { nodeId: 'w1', from: 'unknown', to: 'alive', incarnation: 1 });

  clock.advance(config.suspectTimeoutMs - 1);
  assert.deepEqual(membership.tick(), []);
  clock.advance(1);
  assert.deepEqual(membership.tick(), [{ nodeId: 'w1', from: 'alive', to: 'suspect', incarnation: 1 }]);
  assert.equal(membership.get('w1')!.state, 'suspect');

  clock.advance(config.deadTimeoutMs - 1);
  assert.deepEqual(membership.tick(), []);
  clock.advance(1);
  assert.deepEqual(membership.tick(), [{ nodeId: 'w1', from: 'suspect', to: 'dead', incarnation: 1 }]);

  clock.advance(config.reapTimeoutMs);
  assert.deepEqual(membership.tick(), [{ nodeId: 'w1', from: 'dead', to: 'reaped', incarnation: 1 }]);
  assert.equal(membership.get('w1'), undefined);
});

test('heartbeats keep a node alive and update its free memory and load', () => {
  const { clock, membership } = setup();
  membership.register(makeRegistration({ nodeId: 'w1' }));
  for (let i = 0; i < 10; i++) {
    clock.advance(config.heartbeatIntervalMs);
    membership.heartbeat({ nodeId: 'w1', incarnation: 1, freeMemoryBytes: 1000 + i, load: 0.5 });
    assert.deepEqual(membership.tick(), []);
  }
  const record = membership.get('w1')!;
  assert.equal(record.state, 'alive');
  assert.equal(record.freeMemoryBytes, 1009);
  assert.equal(record.load, 0.5);
  assert.equal(record.lastSeen, clock.now());
});

test('a heartbeat refutes suspicion', () => {
  const { clock, membership } = setup();
  membership.register(makeRegistration({ nodeId: 'w1' }));
  clock.advance(config.suspectTimeoutMs);
  membership.tick();
  assert.equal(membership.get('w1')!.state, 'suspect');

  const record = membership.heartbeat({ nodeId: 'w1', incarnation: 1, freeMemoryBytes: 1, load: 0 });
  assert.equal(record.state, 'alive');
  assert.equal(membership.get('w1')!.state, 'alive');
  assert.equal(membership.get('w1')!.stateChangedAt, clock.now());
  clock.advance(config.suspectTimeoutMs - 1); // a fresh lease: neither timer fires
  assert.deepEqual(membership.tick(), []);
  assert.equal(membership.get('w1')!.state, 'alive');
});

test('re-registering with a higher incarnation refutes suspicion and replaces the registration', () => {
  const { clock, membership } = setup();
  const identity = createEphemeralIdentity();
  membership.register(makeRegistration({ nodeId: 'w1', incarnation: 5, name: 'old' }, identity));
  clock.advance(config.suspectTimeoutMs);
  membership.tick();
  const { record, transition } = membership.register(makeRegistration({ nodeId: 'w1', incarnation: 6, name: 'new' }, identity));
  assert.deepEqual(transition, { nodeId: 'w1', from: 'suspect', to: 'alive', incarnation: 6 });
  assert.equal(record.registration.name, 'new');
  assert.equal(membership.get('w1')!.incarnation, 6);
});

test('updates with a lower incarnation are ignored (stale_incarnation) and change nothing', () => {
  const { clock, membership } = setup();
  const identity = createEphemeralIdentity();
  membership.register(makeRegistration({ nodeId: 'w1', incarnation: 10 }, identity));
  const before = membership.get('w1');
  clock.advance(5);

  assert.throws(() => membership.register(makeRegistration({ nodeId: 'w1', incarnation: 9 }, identity)), refusedWith('stale_incarnation'));
  assert.throws(() => membership.heartbeat({ nodeId: 'w1', incarnation: 9, freeMemoryBytes: 1, load: 0 }), refusedWith('stale_incarnation'));
  assert.throws(() => membership.leave({ nodeId: 'w1', incarnation: 9 }), refusedWith('stale_incarnation'));
  assert.deepEqual(membership.get('w1'), before);
});

test('re-registering with the same incarnation is an idempotent refresh', () => {
  const { clock, membership } = setup();
  const reg = makeRegistration({ nodeId: 'w1', incarnation: 3 });
  membership.register(reg);
  const registeredAt = membership.get('w1')!.registeredAt;
  clock.advance(50);
  membership.register(reg);
  const record = membership.get('w1')!;
  assert.equal(record.registeredAt, registeredAt);
  assert.equal(record.lastSeen, clock.now());
});

test('heartbeats that must lead to a re-registration answer unknown_node', () => {
  const { clock, membership } = setup();
  assert.throws(() => membership.heartbeat({ nodeId: 'ghost', incarnation: 1, freeMemoryBytes: 1, load: 0 }), refusedWith('unknown_node'));

  membership.register(makeRegistration({ nodeId: 'w1', incarnation: 1 }));
  // a newer process that has not registered yet
  assert.throws(() => membership.heartbeat({ nodeId: 'w1', incarnation: 2, freeMemoryBytes: 1, load: 0 }), refusedWith('unknown_node'));

  clock.advance(config.suspectTimeoutMs);
  membership.tick();
  clock.advance(config.deadTimeoutMs);
  membership.tick();
  assert.equal(membership.get('w1')!.state, 'dead');
  assert.throws(() => membership.heartbeat({ nodeId: 'w1', incarnation: 1, freeMemoryBytes: 1, load: 0 }), refusedWith('unknown_node'));
});

test('leave marks the node left at once (idempotent); it is forgotten after the reap timeout', () => {
  const { clock, membership } = setup();
  membership.register(makeRegistration({ nodeId: 'w1' }));
  assert.equal(membership.leave({ nodeId: 'w1', incarnation: 1 }).state, 'left');
  assert.equal(membership.leave({ nodeId: 'w1', incarnation: 1 }).state, 'left');
  assert.throws(() => membership.heartbeat({ nodeId: 'w1', incarnation: 1, freeMemoryBytes: 1, load: 0 }), refusedWith('unknown_node'));
  assert.throws(() => membership.leave({ nodeId: 'nobody', incarnation: 1 }), refusedWith('unknown_node'));

  clock.advance(config.suspectTimeoutMs); // timers for alive nodes do not touch a left node
  assert.deepEqual(membership.tick(), []);
  clock.advance(config.reapTimeoutMs);
  assert.deepEqual(membership.tick(), [{ nodeId: 'w1', from: 'left', to: 'reaped', incarnation: 1 }]);
});

test('a live node id cannot be taken by another key; a dead or left one can', () => {
  const { membership } = setup();
  membership.register(makeRegistration({ nodeId: 'w1', incarnation: 1 }));
  const intruder = makeRegistration({ nodeId: 'w1', incarnation: 2 });
  assert.throws(() => membership.register(intruder), refusedWith('identity_mismatch'));

  membership.leave({ nodeId: 'w1', incarnation: 1 });
  membership.register(intruder);
  assert.equal(membership.get('w1')!.registration.publicKey, intruder.publicKey);
});

test('restore() after a restart makes live nodes suspect with a full dead timeout to check in', () => {
  const { clock, store, membership } = setup();
  membership.register(makeRegistration({ nodeId: 'alive-one' }));
  membership.register(makeRegistration({ nodeId: 'left-one' }));
  membership.leave({ nodeId: 'left-one', incarnation: 1 });

  clock.advance(60_000); // the coordinator was down for a minute
  const restarted = new Membership({ store, clock, config });
  assert.deepEqual(restarted.restore(), [{ nodeId: 'alive-one', from: 'alive', to: 'suspect', incarnation: 1 }]);
  clock.advance(config.deadTimeoutMs - 1);
  assert.deepEqual(restarted.tick().filter((t) => t.to === 'dead'), []);
  restarted.heartbeat({ nodeId: 'alive-one', incarnation: 1, freeMemoryBytes: 1, load: 0 });
  assert.equal(restarted.get('alive-one')!.state, 'alive');
});

test('list() filters by role and state; counts() tallies states', () => {
  const { membership } = setup();
  membership.register(makeRegistration({ nodeId: 'p1', role: 'primary' }));
  membership.register(makeRegistration({ nodeId: 'w1' }));
  membership.register(makeRegistration({ nodeId: 'w2' }));
  membership.leave({ nodeId: 'w2', incarnation: 1 });
  assert.deepEqual(membership.list().map((r) => r.nodeId), ['p1', 'w1', 'w2']);
  assert.deepEqual(membership.list({ role: 'worker', state: 'alive' }).map((r) => r.nodeId), ['w1']);
  assert.deepEqual(membership.list({ role: 'primary' }).map((r) => r.nodeId), ['p1']);
  assert.deepEqual(membership.counts(), { total: 3, alive: 2, suspect: 0, dead: 0, left: 1 });
});
