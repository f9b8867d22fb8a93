// Mixture links over loopback TCP: a member borrows the other's specialist (named by --mixture-peer or found
// in the directory); a stranger is refused; a lender the directory names is dropped and banned when its
// address does not answer, answers as another node, or sends a wrong-length distribution.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, test } from 'node:test';
import { getGgml } from '../../ggml/runtime.ts';
import { MixtureGenerator } from '../../model/mixture/generator.ts';
import { type TestSpecialists, loadTestSpecialists } from '../../model/mixture/testing.ts';
import { silentLogger } from '../../util/log.ts';
import { defineMethods } from '../dataplane.ts';
import { createEphemeralIdentity } from '../identity.ts';
import { localTestDataPlane } from '../node/dataplane-config.ts';
import { StaticMembership } from '../node/membership.ts';
import { pollUntil } from '../../util/poll.ts';
import { connect, listen } from '../transport/rpc.ts';
import type { Lender } from './discovery.ts';
import { MixtureLink } from './link.ts';
import { MixtureService } from './serve.ts';

let t: TestSpecialists;
before(async () => {
  t = await loadTestSpecialists(2);
});
after(async () => {
  await t.dispose();
});

type Identity = ReturnType<typeof createEphemeralIdentity>;
const member = (id: Identity) => ({ nodeId: id.id, publicKey: id.publicKey, role: 'primary' as const, addrs: [], models: [] });
const common = (membership?: StaticMembership) => ({ local: () => [], bans: localTestDataPlane(), logger: silentLogger, ...(membership ? { membership } : {}) });

/** A primary lending spec-2 at 127.0.0.1:<port>. */
const lender = (id: Identity, membership?: StaticMembership) =>
  MixtureLink.start({ ...common(membership), auth: { identity: id, nodeId: id.id }, nodeId: id.id, peers: [], local: () => [t.specialists[1]!], listen: { host: '127.0.0.1', port: 0 } });

/** A primary that borrows from `peers` and from whatever `discover` returns at each tick. */
const borrower = (id: Identity, o: { peers?: string[]; discover?: () => readonly Lender[]; membership?: StaticMembership }) =>
  MixtureLink.start({ ...common(o.membership), auth: { identity: id, nodeId: id.id }, nodeId: id.id, peers: o.peers ?? [], ...(o.discover ? { discover: o.discover } : {}) });

/** A loopback port nothing listens on. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  assert.ok(address !== null && typeof address === 'object');
  return address.port;
}

test("a member borrows the lender's specialists; a stranger gets none", async () => {
  const lenderId = createEphemeralIdentity();
  const borrowerId = createEphemeralIdentity();
  const strangerId = createEphemeralIdentity();
  const membership = new StaticMembership([member(lenderId), member(borrowerId)]);
  const l = await lender(lenderId, membership);
  const addr = `127.0.0.1:${l.port}`;
  const b = await borrower(borrowerId, { peers: [addr], membership });
  try {
    await pollUntil("the borrower lists the lender's specialist", () => b.remote().length > 0, { timeoutMs: 20_000 });
    assert.deepEqual(b.remote().map((s) => s.id), ['spec-2']);
    // A stranger (a valid key the coordinator does not list) is refused in HELLO.
    await assert.rejects(connect(addr, { session: 'stranger', auth: { identity: strangerId, nodeId: strangerId.id } }), /not a member/);
  } finally {
    await Promise.all([b.close(), l.close()]);
  }
});

test('a lender found in the directory is linked while the directory names it, and dropped when it no longer does', async () => {
  const lenderId = createEphemeralIdentity();
  const l = await lender(lenderId);
  let named: Lender[] = [{ nodeId: lenderId.id, addr: `127.0.0.1:${l.port}`, modelIds: ['spec-2'] }];
  const b = await borrower(createEphemeralIdentity(), { discover: () => named });
  try {
    await pollUntil('the borrower lists the discovered specialist', () => b.remote().length > 0, { timeoutMs: 20_000 });
    assert.deepEqual(b.remote().map((s) => s.id), ['spec-2']);
    assert.deepEqual(b.linked().map((x) => [x.nodeId, x.discovered]), [[lenderId.id, true]]);
    named = []; // the lender withdrew its serving records
    await pollUntil('the withdrawn lender is dropped', () => b.linked().length === 0, { timeoutMs: 20_000 });
    assert.deepEqual(b.remote(), []);
    assert.equal(b.bans.has(lenderId.id), false, 'a withdrawal is no failure');
  } finally {
    await Promise.all([b.close(), l.close()]);
  }
});

test('a lender whose address does not answer, or answers as another node, is banned and lends nothing', async () => {
  const ghostId = createEphemeralIdentity();
  const claimedId = createEphemeralIdentity();
  const realId = createEphemeralIdentity();
  const l = await lender(realId);
  // The record of `claimedId` names the address where `realId` lends: HELLO proves the mismatch.
  const named: Lender[] = [
    { nodeId: ghostId.id, addr: `127.0.0.1:${await deadPort()}`, modelIds: ['spec-9'] },
    { nodeId: claimedId.id, addr: `127.0.0.1:${l.port}`, modelIds: ['spec-2'] },
  ];
  const b = await borrower(createEphemeralIdentity(), { discover: () => named });
  try {
    await pollUntil('both lenders banned', () => b.bans.has(ghostId.id) && b.bans.has(claimedId.id), { timeoutMs: 20_000 });
    assert.deepEqual(b.remote(), []);
    assert.equal(b.bans.has(realId.id), false);
  } finally {
    await Promise.all([b.close(), l.close()]);
  }
});

test('a discovered lender answering a wrong-length distribution is dropped mid-answer and banned', async () => {
  const lenderId = createEphemeralIdentity();
  const honest = new MixtureService({ specialists: () => [t.specialists[1]!], logger: silentLogger });
  const methods = honest.methods();
  const server = await listen({
    host: '127.0.0.1', port: 0, session: lenderId.id, auth: { identity: lenderId, nodeId: lenderId.id }, logger: silentLogger,
    methods: defineMethods({
      ...methods,
      mixture_step: async (req, ctx) => {
        const answer = await methods.mixture_step!(req, ctx);
        return { ...answer, payload: answer.payload!.subarray(2) }; // one value short
      },
    }),
  });
  const b = await borrower(createEphemeralIdentity(), { discover: () => [{ nodeId: lenderId.id, addr: `127.0.0.1:${server.port}`, modelIds: ['spec-2'] }] });
  try {
    await pollUntil('the borrower lists the discovered specialist', () => b.remote().length > 0, { timeoutMs: 20_000 });
    const mixture = new MixtureGenerator([t.specialists[0]!, ...b.remote()], t.tokenizer, getGgml({ gpu: 'off' }), { minWeight: 0 });
    const it = mixture.stream(t.tokenizer.encode('The weather today is'), { maxTokens: 4, temperature: 0 });
    let r = await it.next();
    while (r.done !== true) r = await it.next();
    assert.equal(r.value.tokens.length, 4, 'the answer finishes from the local specialist');
    assert.equal(r.value.trail.dropped[0]?.model, 'spec-2');
    assert.match(r.value.trail.dropped[0]?.reason ?? '', /malformed/);
    assert.ok(b.bans.has(lenderId.id));
    assert.deepEqual(b.remote(), [], 'a banned lender is offered to no new mixture');
  } finally {
    await b.close();
    await honest.close();
    await server.close();
  }
});
