import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server as NetServer } from 'node:net';
import { test } from 'node:test';
import { z } from 'zod';
import { waitFor } from '../coordinator/testing.ts';
import type { Candidate } from '../protocol.ts';
import { advertisable, chooseCandidate, compareProbes, isPrivateAddress, NoCandidateError } from './candidates.ts';
import { parseRelayUrl, relayUrl } from './address.ts';
import { listen } from './rpc.ts';
import type { Peer, TransportServer } from './rpc.ts';
import { relayRegister, startRelayServer } from './relay.ts';

const methods = { who: { schema: z.object({}), handler: () => ({ header: 'node-a' }) } };

/** A port where nothing listens (bound, then released). */
async function deadPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Accepts TCP and never answers: what a firewalled or NATed address looks like to a probe. */
async function blackHole(): Promise<{ port: number; server: NetServer }> {
  const server = createNetServer(() => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, server };
}

function cand(kind: Candidate['kind'], addr: string, priority = 10): Candidate {
  return { kind, addr, priority };
}

test('compareProbes: LAN before WAN before relay, then lower RTT, then higher priority', () => {
  const probes = [
    { candidate: cand('relay', 'r:1', 100), rttMs: 0.1 },
    { candidate: cand('wan', 'w:1', 1), rttMs: 9 },
    { candidate: cand('lan', 'l:2', 1), rttMs: 5 },
    { candidate: cand('lan', 'l:1', 1), rttMs: 3 },
    { candidate: cand('lan', 'l:3', 50), rttMs: 3 },
    { candidate: cand('wan', 'w:2', 1), rttMs: 2 },
  ];
  assert.deepEqual(probes.sort(compareProbes).map((p) => p.candidate.addr), ['l:3', 'l:1', 'l:2', 'w:2', 'w:1', 'r:1']);
});

test('an unreachable LAN candidate falls back to WAN, then to the relay', async () => {
  const node = await listen({ host: '127.0.0.1', port: 0, session: 'node-a', methods });
  const relay = await startRelayServer({ host: '127.0.0.1', port: 0 });
  const relayAddr = `127.0.0.1:${relay.port}`;
  const registration = await relayRegister({ relayAddr, nodeId: 'node-a', server: node });
  const hole = await blackHole();
  const refused = await deadPort();
  try {
    const lanDown = [cand('lan', `127.0.0.1:${refused}`), cand('lan', `127.0.0.1:${hole.port}`)];
    const wan = cand('wan', `127.0.0.1:${node.port}`);
    const viaRelay = cand('relay', relayAddr);

    // Deadlines are generous so a loaded CI machine does not time out the reachable candidates too.
    const first = await chooseCandidate([...lanDown, wan, viaRelay], { session: 'primary', nodeId: 'node-a', timeoutMs: 1_000 });
    assert.deepEqual(first.candidate, wan);
    assert.equal(first.peer.session, 'node-a');
    assert.equal((await first.peer.request('who', {})).header, 'node-a');
    assert.deepEqual(first.tried.map((t) => t.ok), [false, false, true, true]);
    assert.match(first.tried[0]!.error ?? '', /ECONNREFUSED|nothing listens/);
    assert.match(first.tried[1]!.error ?? '', /1000 ms|timed out/);
    first.peer.close();

    const second = await chooseCandidate([...lanDown, cand('wan', `127.0.0.1:${refused}`), viaRelay], { session: 'primary', nodeId: 'node-a', timeoutMs: 1_000 });
    assert.deepEqual(second.candidate, viaRelay);
    assert.equal(second.peer.remote, relayUrl(relayAddr, 'node-a'));
    assert.equal((await second.peer.request('who', {})).header, 'node-a');
    second.peer.close();

    await assert.rejects(chooseCandidate(lanDown, { session: 'primary', timeoutMs: 200 }), (error: unknown) => {
      assert.ok(error instanceof NoCandidateError);
      assert.equal(error.tried.length, 2);
      assert.match(error.hint, /relay/);
      return true;
    });
    await assert.rejects(chooseCandidate([viaRelay], { session: 'primary', timeoutMs: 200 }), /nodeId/);
    await assert.rejects(chooseCandidate([], { session: 'primary' }), NoCandidateError);
  } finally {
    await registration.close();
    await relay.close();
    await node.close();
    hole.server.close();
  }
});

test('all reachable: LAN wins whatever the RTTs; losers are closed; a slow worse kind is abandoned', async () => {
  const node = await listen({ host: '127.0.0.1', port: 0, session: 'node-a', methods });
  const relay = await startRelayServer({ host: '127.0.0.1', port: 0 });
  const relayAddr = `127.0.0.1:${relay.port}`;
  const registration = await relayRegister({ relayAddr, nodeId: 'node-a', server: node });
  const hole = await blackHole();
  try {
    const all = [cand('relay', relayAddr), cand('wan', `127.0.0.1:${node.port}`), cand('lan', `127.0.0.1:${node.port}`)];
    const choice = await chooseCandidate(all, { session: 'primary', nodeId: 'node-a', timeoutMs: 2_000 });
    assert.equal(choice.candidate.kind, 'lan');
    await waitFor('losers closed: the node keeps one connection', () => node.peers().length === 1);
    choice.peer.close();

    // A WAN candidate that hangs does not delay a LAN answer: it is abandoned, not waited for.
    const withHang = [cand('wan', `127.0.0.1:${hole.port}`), cand('lan', `127.0.0.1:${node.port}`)];
    const quick = await chooseCandidate(withHang, { session: 'primary', timeoutMs: 30_000 });
    assert.equal(quick.candidate.kind, 'lan');
    assert.equal(quick.tried[0]!.abandoned, true);
    quick.peer.close();
  } finally {
    await registration.close();
    await relay.close();
    await node.close();
    hole.server.close();
  }
});

test('within a kind: lower RTT wins, then higher priority (through the dial seam)', async () => {
  const rtts = new Map([
    ['10.0.0.1:1', 4],
    ['10.0.0.2:1', 2],
    ['10.0.0.3:1', 2],
  ]);
  const closed: string[] = [];
  const fakePeer = (addr: string) => Object.assign(new EventEmitter(), { remote: addr, rtt: async () => rtts.get(addr)!, close: () => closed.push(addr) }) as unknown as Peer;
  const dial = async (candidate: Candidate) => fakePeer(candidate.addr);
  const list = [cand('lan', '10.0.0.1:1', 90), cand('lan', '10.0.0.2:1', 5), cand('lan', '10.0.0.3:1', 50)];
  const choice = await chooseCandidate(list, { session: 's', dial });
  assert.equal(choice.candidate.addr, '10.0.0.3:1', 'RTT tie between .2 and .3: priority 50 beats 5');
  assert.equal(choice.rttMs, 2);
  assert.deepEqual(closed.sort(), ['10.0.0.1:1', '10.0.0.2:1']);
});

test('advertisable: a node claims only what it serves', () => {
  const interfaces = {
    lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true, netmask: '255.0.0.0', mac: '00:00:00:00:00:00', cidr: '127.0.0.1/8' }],
    eth0: [
      { address: '192.168.1.20', family: 'IPv4', internal: false, netmask: '255.255.255.0', mac: 'aa:bb:cc:dd:ee:ff', cidr: '192.168.1.20/24' },
      { address: 'fe80::1', family: 'IPv6', internal: false, netmask: 'ffff:ffff:ffff:ffff::', mac: 'aa:bb:cc:dd:ee:ff', cidr: 'fe80::1/64', scopeid: 2 },
    ],
  } as unknown as NonNullable<Parameters<typeof advertisable>[2]>['interfaces'];
  const env = { interfaces, relays: ['relay.example.com:7700'], hostname: 'box' };
  const candidates = [
    cand('lan', '192.168.1.20:7701'), // ok
    cand('lan', '127.0.0.1:7701'), // ok (loopback, same machine)
    cand('lan', '[fe80::1]:7701'), // not with an IPv4-only wildcard
    cand('lan', '192.168.1.99:7701'), // not ours
    cand('lan', '192.168.1.20:9999'), // wrong port
    cand('lan', 'box:7701'), // our host name: ok
    cand('lan', 'printer.lan:7701'), // a name we cannot check
    cand('wan', '203.0.113.7:443'), // ok (port forwarding may map ports)
    cand('wan', 'node.example.com:7701'), // ok
    cand('wan', '192.168.1.20:7701'), // private: that is a LAN candidate
    cand('relay', 'relay.example.com:7700'), // registered there: ok
    cand('relay', 'other-relay.example.com:7700'), // not registered
  ];
  const wildcard = advertisable(candidates, { host: '0.0.0.0', port: 7701 }, env);
  assert.deepEqual(
    wildcard.ok.map((c) => `${c.kind} ${c.addr}`),
    ['lan 192.168.1.20:7701', 'lan 127.0.0.1:7701', 'lan box:7701', 'wan 203.0.113.7:443', 'wan node.example.com:7701', 'relay relay.example.com:7700'],
  );
  assert.equal(wildcard.rejected.length, 6);
  for (const { reason } of wildcard.rejected) assert.ok(reason.length > 10);

  assert.deepEqual(advertisable([cand('lan', '[fe80::1]:7701')], { host: '::', port: 7701 }, env).ok.length, 1, ':: covers IPv6');
  const specific = advertisable(candidates.slice(0, 2), { host: '192.168.1.20', port: 7701 }, env);
  assert.deepEqual(specific.ok.map((c) => c.addr), ['192.168.1.20:7701'], 'bound to one address: loopback is not served');
  const loopbackOnly = advertisable([cand('wan', '203.0.113.7:7701'), cand('lan', 'localhost:7701')], { host: '127.0.0.1', port: 7701 }, env);
  assert.deepEqual(loopbackOnly.ok.map((c) => c.addr), ['localhost:7701'], 'a loopback-bound server has no WAN');
});

test('private address ranges and relay URLs', () => {
  for (const ip of ['10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.0.1', '169.254.1.1', '100.64.0.1', '127.0.0.1', '::1', 'fd00::1', 'fe80::1']) assert.equal(isPrivateAddress(ip), true, ip);
  for (const ip of ['8.8.8.8', '172.32.0.1', '203.0.113.7', '2001:db8::1']) assert.equal(isPrivateAddress(ip), false, ip);
  assert.equal(relayUrl('relay.lan:7700', 'node-1'), 'relay://relay.lan:7700/node-1');
  assert.deepEqual(parseRelayUrl('relay://[::1]:7700/node-1'), { relayAddr: '[::1]:7700', nodeId: 'node-1' });
  assert.throws(() => parseRelayUrl('http://x:1/n'), /relay:\/\//);
  assert.throws(() => parseRelayUrl('relay://x:1/'), /node id/);
  assert.throws(() => relayUrl('x', 'n'), /host:port/);
});
