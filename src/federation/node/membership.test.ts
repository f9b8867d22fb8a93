// CoordinatorMembership: members by nodeId AND key, from a cached coordinator list; a node that registered a
// moment ago is found after one refresh; strangers share refreshes; a coordinator outage keeps the last list.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createEphemeralIdentity } from '../identity.ts';
import type { NodeView } from '../protocol.ts';
import { CoordinatorMembership, StaticMembership, memberOf } from './membership.ts';

function view(role: 'primary' | 'worker', extra: Partial<NodeView> = {}): NodeView {
  const identity = createEphemeralIdentity();
  return {
    nodeId: identity.id, publicKey: identity.publicKey, role, state: 'alive', incarnation: 1, name: 'n', threads: 1, backend: 'cpu', freeMemoryBytes: 0,
    models: [{ hash: `sha256:${'a'.repeat(64)}`, name: 'm', nLayers: 2 }], version: '1', load: 0, lastSeen: 0, stateChangedAt: 0, registeredAt: 0,
    candidates: [{ kind: 'lan', addr: '10.0.0.2:7701', priority: 100 }, { kind: 'relay', addr: '10.0.0.1:8421', priority: 10 }],
    ...extra,
  };
}

test('members are matched by nodeId and key; hop addresses and model hashes come from the registration', async () => {
  const nodes = [view('primary'), view('worker'), view('worker', { state: 'dead' })];
  let calls = 0;
  let down = false;
  const membership = new CoordinatorMembership({ listNodes: async () => { calls += 1; if (down) throw new Error('coordinator down'); return nodes; } }, { ttlMs: 60_000, minRefreshMs: 10 });
  const [p, w, dead] = nodes as [NodeView, NodeView, NodeView];
  assert.equal((await membership.member(p.nodeId, p.publicKey))?.role, 'primary');
  assert.deepEqual((await membership.find(w.nodeId))?.addrs, ['10.0.0.2:7701', `relay://10.0.0.1:8421/${w.nodeId}`]);
  assert.deepEqual(memberOf(p).models, ['a'.repeat(64)]);
  assert.equal(calls, 1, 'served from the cache');
  assert.equal(await membership.member(p.nodeId, w.publicKey), undefined, 'another key under that nodeId is no member');
  assert.equal(await membership.member(dead.nodeId, dead.publicKey), undefined, 'dead nodes are no members');

  // A node that registers now is found on the next look; strangers asking at once share one refresh.
  const late = view('primary');
  nodes.push(late);
  const before = calls;
  const [found, ...strangers] = await Promise.all([membership.member(late.nodeId, late.publicKey), membership.find('nobody-1'), membership.find('nobody-2')]);
  assert.equal(found?.nodeId, late.nodeId);
  assert.deepEqual(strangers, [undefined, undefined]);
  assert.equal(calls - before, 1, 'one refresh for all of them');

  // The coordinator goes away: the last list stands.
  down = true;
  assert.equal((await membership.find('nobody-3')), undefined);
  assert.equal((await membership.member(p.nodeId, p.publicKey))?.nodeId, p.nodeId);
});

test('StaticMembership: add, remove, key must match', async () => {
  const identity = createEphemeralIdentity();
  const m = new StaticMembership([{ nodeId: 'p', publicKey: identity.publicKey, role: 'primary', addrs: [], models: [] }]);
  assert.equal((await m.member('p', identity.publicKey))?.role, 'primary');
  assert.equal(await m.member('p', createEphemeralIdentity().publicKey), undefined);
  m.remove('p');
  assert.equal(await m.find('p'), undefined);
});
