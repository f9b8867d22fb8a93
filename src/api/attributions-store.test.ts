// Both stores keep a trail for its owner only, forget it after the retention, and delete on request.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MixtureTrail } from '../model/mixture/trail.ts';
import { type AttributionStore, MemoryAttributionStore, SqliteAttributionStore } from './attributions-store.ts';

const trail: MixtureTrail = {
  mode: 'posterior',
  routed: [{ model: 'a', weight: 0.7 }, { model: 'b', weight: 0.3 }],
  notRouted: [],
  tokens: [{ token: 5, attribution: [{ model: 'a', share: 0.9 }, { model: 'b', share: 0.1 }], weights: [{ model: 'a', weight: 0.7 }, { model: 'b', weight: 0.3 }] }],
  dropped: [{ model: 'b', atToken: 1, reason: 'went away' }],
};

for (const [name, make] of [
  ['memory', (now: () => number) => new MemoryAttributionStore(3600, now)],
  ['sqlite', (now: () => number) => SqliteAttributionStore.open(':memory:', 3600, now)],
] as const) {
  test(`${name}: owner only, retention, deletion`, () => {
    let clock = 1_000_000;
    const store: AttributionStore = make(() => clock);
    try {
      store.put({ id: 'c1', owner: 'alice', model: 'mixture', created: clock, trails: [trail] });
      store.put({ id: 'c2', owner: 'alice', model: 'mixture', created: clock, trails: [trail, trail] });
      store.put({ id: 'c3', owner: 'bob', model: 'mixture', created: clock, trails: [trail] });
      assert.deepEqual(store.get('c1', 'alice')?.trails, [trail]);
      assert.equal(store.get('c1', 'bob'), undefined);
      assert.equal(store.delete('c1', 'bob'), false);
      assert.equal(store.delete('c1', 'alice'), true);
      assert.equal(store.get('c1', 'alice'), undefined);
      assert.equal(store.deleteOwner('alice'), 1);
      clock += 3601;
      assert.equal(store.get('c3', 'bob'), undefined, 'expired');
    } finally {
      store.close();
    }
  });
}
