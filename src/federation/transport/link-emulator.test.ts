// The WAN link emulator forwards every byte in order, adds at least the latency it was given, holds bytes
// to its bandwidth, stalls and drops on demand. Timing checks are lower bounds (a byte can never arrive
// before its schedule) plus a generous upper bound that only catches a hang: never a tight window.
import assert from 'node:assert/strict';
import { type Server, type Socket, connect, createServer } from 'node:net';
import { after, before, test } from 'node:test';
import { TokenBucket } from './link-emulator-wire.ts';
import { type LinkEmulator, startLinkEmulator } from './link-emulator.ts';

const HANG_MS = 10_000;
let echo: Server;
let echoAddr: string;
const serverSockets = new Set<Socket>();

before(async () => {
  echo = createServer((s) => {
    serverSockets.add(s);
    s.on('close', () => serverSockets.delete(s));
    s.on('error', () => undefined);
    s.pipe(s);
  });
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  echoAddr = `127.0.0.1:${(echo.address() as { port: number }).port}`;
});
after(() => new Promise<void>((resolve) => echo.close(() => resolve())));

function dial(link: LinkEmulator): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(link.port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/** Write `data`, resolve with the ms until the same number of bytes came back (and the bytes). */
function roundTrip(s: Socket, data: Buffer): Promise<{ ms: number; got: Buffer }> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let n = 0;
    const t0 = performance.now();
    const timer = setTimeout(() => reject(new Error(`no echo within ${HANG_MS} ms (${n} of ${data.length} bytes)`)), HANG_MS);
    const onData = (d: Buffer) => {
      parts.push(d);
      n += d.length;
      if (n >= data.length) {
        clearTimeout(timer);
        s.off('data', onData);
        resolve({ ms: performance.now() - t0, got: Buffer.concat(parts) });
      }
    };
    s.on('data', onData);
    s.write(data);
  });
}

test('the token bucket spends its burst, then paces bytes at the rate, one chunk after another', () => {
  const bucket = new TokenBucket(() => ({ bytesPerSecond: 1000, burstBytes: 100 }));
  assert.equal(bucket.reserve(100, 0), 0); // the burst goes at once
  assert.equal(bucket.reserve(500, 0), 500); // then 500 bytes at 1000 B/s
  assert.equal(bucket.reserve(100, 0), 600); // queued behind the previous chunk
  assert.equal(bucket.reserve(50, 10_000), 10_000); // idle long enough: tokens again
  const unlimited = new TokenBucket(() => ({}));
  assert.equal(unlimited.reserve(1 << 20, 5), 5);
});

test('bytes arrive in order and intact through a link with latency and jitter', async () => {
  const link = await startLinkEmulator({ target: echoAddr, shape: { latencyMs: 5, jitterMs: 5 }, seed: 7 });
  const s = await dial(link);
  const data = Buffer.from(Array.from({ length: 20_000 }, (_, i) => i % 251));
  const { got } = await roundTrip(s, data);
  assert.deepEqual(got, data);
  const stats = link.stats();
  assert.equal(stats.forwardBytes, data.length);
  assert.equal(stats.backwardBytes, data.length);
  s.destroy();
  await link.close();
});

test('a round trip takes at least twice the one-way latency', async () => {
  const link = await startLinkEmulator({ target: echoAddr, shape: { latencyMs: 30 } });
  const s = await dial(link);
  await roundTrip(s, Buffer.from('warm'));
  const { ms } = await roundTrip(s, Buffer.from('ping'));
  assert.ok(ms >= 2 * 30 - 3, `round trip ${ms.toFixed(1)} ms < 2 x 30 ms`);
  link.setShape({ latencyMs: 0 });
  const fast = await roundTrip(s, Buffer.from('ping'));
  assert.ok(fast.ms < HANG_MS);
  s.destroy();
  await link.close();
});

test('the bandwidth cap holds a large transfer back', async () => {
  // 200 KB each way at 1 MB/s with a 16 KB burst: at least ~0.18 s for the forward direction alone.
  const link = await startLinkEmulator({ target: echoAddr, shape: { bytesPerSecond: 1_000_000 } });
  const s = await dial(link);
  const { ms, got } = await roundTrip(s, Buffer.alloc(200_000, 1));
  assert.equal(got.length, 200_000);
  assert.ok(ms >= 170, `200 KB at 1 MB/s took only ${ms.toFixed(1)} ms`);
  s.destroy();
  await link.close();
});

test('stall holds bytes until resume; the connection stays open', async () => {
  const link = await startLinkEmulator({ target: echoAddr });
  const s = await dial(link);
  await roundTrip(s, Buffer.from('warm'));
  link.stall();
  let got = 0;
  s.on('data', (d: Buffer) => (got += d.length));
  s.write('held');
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(got, 0, 'bytes went through a stalled link');
  assert.equal(link.state, 'stalled');
  assert.equal(s.destroyed, false);
  link.resume();
  const t0 = performance.now();
  while (got < 4 && performance.now() - t0 < HANG_MS) await new Promise((r) => setTimeout(r, 10));
  assert.equal(got, 4);
  s.destroy();
  await link.close();
});

test('drop closes both sides; down refuses new connections until up', async () => {
  const link = await startLinkEmulator({ target: echoAddr });
  const s = await dial(link);
  await roundTrip(s, Buffer.from('warm'));
  assert.equal(serverSockets.size, 1);
  const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
  link.drop();
  await closed;
  const t0 = performance.now();
  while (serverSockets.size > 0 && performance.now() - t0 < HANG_MS) await new Promise((r) => setTimeout(r, 10));
  assert.equal(serverSockets.size, 0, 'the target side stayed open');
  assert.equal(link.stats().dropped, 1);

  link.down();
  const refused = await dial(link).then(
    (sock) => new Promise<boolean>((resolve) => sock.once('close', () => resolve(true))),
    () => true,
  );
  assert.equal(refused, true);
  assert.equal(link.stats().refused, 1);
  link.up();
  const again = await dial(link);
  assert.deepEqual((await roundTrip(again, Buffer.from('back'))).got, Buffer.from('back'));
  again.destroy();
  await link.close();
});

test('a closed target closes the client; setTarget redirects new connections', async () => {
  const link = await startLinkEmulator({ target: '127.0.0.1:1' });
  const s = connect(link.port, '127.0.0.1');
  s.on('error', () => undefined);
  await new Promise<void>((resolve) => s.once('close', () => resolve()));
  link.setTarget(echoAddr);
  const ok = await dial(link);
  assert.deepEqual((await roundTrip(ok, Buffer.from('hi'))).got, Buffer.from('hi'));
  ok.destroy();
  await link.close();
});
