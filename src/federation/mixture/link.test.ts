// Two mixture links over loopback TCP: a member borrows the other's specialist; a stranger is refused.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type TestSpecialists, loadTestSpecialists } from '../../model/mixture/testing.ts';
import { silentLogger } from '../../util/log.ts';
import { createEphemeralIdentity } from '../identity.ts';
import { localTestDataPlane } from '../node/dataplane-config.ts';
import { StaticMembership } from '../node/membership.ts';
import { pollUntil } from '../../util/poll.ts';
import { connect } from '../transport/rpc.ts';
import { MixtureLink } from './link.ts';

let t: TestSpecialists;
before(async () => {
  t = await loadTestSpecialists(1);
});
after(async () => {
  await t.dispose();
});

const member = (id: ReturnType<typeof createEphemeralIdentity>) => ({ nodeId: id.id, publicKey: id.publicKey, role: 'primary' as const, addrs: [], models: [] });

test("a member borrows the lender's specialists; a stranger gets none", async () => {
  const lenderId = createEphemeralIdentity();
  const borrowerId = createEphemeralIdentity();
  const strangerId = createEphemeralIdentity();
  const membership = new StaticMembership([member(lenderId), member(borrowerId)]);
  const common = { local: () => [], bans: localTestDataPlane(), logger: silentLogger, membership };
  const lender = await MixtureLink.start({ ...common, auth: { identity: lenderId, nodeId: lenderId.id }, nodeId: lenderId.id, peers: [], local: () => [t.specialists[0]!], listen: { host: '127.0.0.1', port: 0 } });
  const addr = `127.0.0.1:${lender.port}`;
  const borrower = await MixtureLink.start({ ...common, auth: { identity: borrowerId, nodeId: borrowerId.id }, nodeId: borrowerId.id, peers: [addr] });
  try {
    await pollUntil("the borrower lists the lender's specialist", () => borrower.remote().length > 0, { timeoutMs: 20_000 });
    assert.deepEqual(borrower.remote().map((s) => s.id), ['spec-1']);
    // A stranger (a valid key the coordinator does not list) is refused in HELLO.
    await assert.rejects(connect(addr, { session: 'stranger', auth: { identity: strangerId, nodeId: strangerId.id } }), /not a member/);
  } finally {
    await Promise.all([borrower.close(), lender.close()]);
  }
});
