// DiLoCo over a real federation: a coordinator, `sharedllm diloco serve` and three `sharedllm diloco join`
// processes on loopback train a tiny model for 4 rounds (int8 deltas over the authenticated data plane).
// One participant is killed in the middle of a round (after it pulled the weights): the round completes at
// its deadline with the other two and names it dropped. The server is then killed (SIGKILL) right after a
// round and started again: it resumes at the next round from its checkpoint and the job finishes; the
// held-out loss falls from start to end.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTinyJob, type TinyJob } from '../../src/train/diloco/tiny-job.testing.ts';
import { Cluster, type CoordinatorHandle, type Proc } from './harness.ts';

const cluster = new Cluster();
let job: TinyJob;
let coordinator: CoordinatorHandle;
const ROUNDS = 4;

cluster.setup(async () => {
  job = makeTinyJob(join(cluster.dir, 'job'), { participants: 3 });
  coordinator = await cluster.coordinator();
});

/** The first JSON log line of `proc` with this event (and these fields), waited for. */
async function logLine(proc: Proc, event: string, fields: Record<string, string> = {}, timeoutMs?: number): Promise<Record<string, unknown>> {
  const looks = [`"event":"${event}"`, ...Object.entries(fields).map(([k, v]) => `"${k}":${v}[,}]`)];
  const re = new RegExp(`^${looks.map((l) => `(?=.*${l})`).join('')}.*$`, 'm');
  const m = await proc.waitFor(re, timeoutMs);
  return JSON.parse(m[0]) as Record<string, unknown>;
}

interface MetricLine {
  kind: 'start' | 'round';
  round: number;
  resumed?: boolean;
  heldOutLoss?: number;
  accepted?: string[];
  dropped?: string[];
  bytesInPerParticipant?: number;
  modelBytes?: number;
}

cluster.test('3 participants, one killed mid-round, the server killed and restarted: the job finishes and the loss falls', async () => {
  const out = join(cluster.dir, 'out');
  const serveArgs = [
    'diloco', 'serve', '--init', job.init, '--rounds', String(ROUNDS), '--inner-steps', '80', '--batch', '4', '--ctx', '32', '--lr', '3e-3', '--warmup', '2',
    '--min-replicas', '2', '--round-timeout', '20', '--compress', 'int8', '--eval-corpus', job.heldOut, '--eval-tokens', '2048', '--out', out,
    '--coordinator-url', coordinator.url, '--rpc-port', '0', '--data-dir', join(cluster.dir, 'serve'), '--threads', '1', '--log-format', 'json',
  ];
  const serve = cluster.spawn('serve', serveArgs);
  await logLine(serve, 'diloco_serving');
  const joins = job.shards.map((shard, i) =>
    cluster.spawn(`join-${i}`, ['diloco', 'join', '--coordinator-url', coordinator.url, '--corpus', shard, '--data-dir', join(cluster.dir, `join-${i}`), '--threads', '1', '--log-format', 'json']),
  );
  // Kill participant 2 once it holds the weights of round 1 or 2: it is enrolled, and its 80 inner steps (a few
  // seconds) leave it no time to hand in a delta before the kill, so the round must drop it at the deadline.
  const victim = joins[2]!;
  const pulled = await logLine(victim, 'weights_pulled', { round: '[12]' });
  await victim.stop('SIGKILL');
  const killedIn = pulled.round as number;

  // The round it was killed in completes at the deadline; then the server is killed right after writing it.
  await logLine(serve, 'round_written', { round: String(killedIn) });
  await serve.stop('SIGKILL');
  const again = cluster.spawn('serve-again', serveArgs);
  const start = await logLine(again, 'diloco_start');
  assert.equal(start.resumed, true);
  assert.equal(start.round, killedIn + 1, 'resumes at the round after the last one written');
  const exit = await again.exited;
  assert.equal(exit.code, 0, again.tail());
  for (const p of joins.slice(0, 2)) assert.equal((await p.exited).code, 0, p.tail());

  const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as MetricLine);
  const starts = lines.filter((l) => l.kind === 'start');
  const rounds = lines.filter((l) => l.kind === 'round');
  assert.deepEqual(starts.map((s) => s.resumed), [false, true]);
  assert.deepEqual(rounds.map((r) => r.round), [...Array(ROUNDS).keys()], 'every round written once');
  const killedRound = rounds[killedIn]!;
  assert.equal(killedRound.accepted!.length, 2, 'completed with the two alive participants');
  assert.equal(killedRound.dropped!.length, 1, 'the killed participant was dropped at the deadline');
  assert.ok(!killedRound.accepted!.includes(killedRound.dropped![0]!));
  for (const r of rounds.slice(killedIn + 1)) assert.equal(r.accepted!.length, 2);
  const first = starts[0]!.heldOutLoss!;
  const last = rounds.at(-1)!.heldOutLoss!;
  console.log(`held-out loss ${first.toFixed(3)} -> ${rounds.map((r) => r.heldOutLoss!.toFixed(3)).join(' ')}; int8 delta ${rounds[0]!.bytesInPerParticipant} bytes for a ${rounds[0]!.modelBytes}-byte f32 model`);
  assert.ok(last < first - 0.3, `held-out loss ${first} -> ${last}`);
  assert.ok(rounds[0]!.bytesInPerParticipant! < 0.3 * rounds[0]!.modelBytes!, 'int8 deltas: about a quarter of the f32 bytes');
}, 240_000);
