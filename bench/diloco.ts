// DiLoCo benchmark: a real federation on this machine (coordinator, `diloco serve`, K `diloco join`
// processes over loopback), with f16 deltas, int8 deltas, and int8 deltas with f16 weights, a few rounds each. From the server's
// metrics lines it reports, per participant and round, the bytes sent (the delta) and received (the weights)
// against the model's f32 size, and the time of a round split into the participants' compute (inner steps),
// their transfer (weights down, delta up, as they measured it) and the server's aggregation + outer step.
// Round 0 is left out of the medians (it includes the processes' start). Ratios, not absolute timings, are
// what carries over to another machine; loopback transfer is a floor, not a network.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cluster } from '../src/cli/cluster.ts';
import { paramCount } from '../src/train/config.ts';
import { makeTinyJob } from '../src/train/diloco/tiny-job.testing.ts';
import { fmt, log, median, table } from './stats.ts';

export interface DilocoBenchOptions {
  /** Participants (processes). */
  participants?: number;
  rounds?: number;
  innerSteps?: number;
  /** Model width and depth (the tiny job's: 32 x 1 unless asked). */
  nEmbd?: number;
  nLayer?: number;
  threads?: number;
}

interface RoundLine {
  kind: string;
  round: number;
  bytesInPerParticipant: number;
  bytesOutPerParticipant: number;
  modelBytes: number;
  computeMs?: number;
  transferMs?: number;
  aggregateMs: number;
  roundMs: number;
  heldOutLoss?: number;
}

export async function benchDiloco(o: DilocoBenchOptions = {}): Promise<void> {
  const K = o.participants ?? 3;
  const rounds = o.rounds ?? 4;
  const H = o.innerSteps ?? 20;
  const cluster = new Cluster({ prefix: 'sharedllm-bench-diloco-' });
  try {
    const job = makeTinyJob(join(cluster.dir, 'job'), { participants: K, ...(o.nEmbd ? { nEmbd: o.nEmbd } : {}), ...(o.nLayer ? { nLayer: o.nLayer } : {}) });
    log(`\n## diloco: ${K} participants x ${rounds} rounds of ${H} inner steps, ${paramCount(job.model).toLocaleString('en-US')} parameters (${job.model.nEmbd} x ${job.model.nLayer}), ${o.threads ?? 1} thread(s) a process, loopback`);
    const coordinator = await cluster.coordinator();
    const rows: string[][] = [['deltas / weights', 'sent/participant/round', 'x f32 model', 'received (weights)', 'compute ms', 'transfer ms', 'aggregate ms', 'round ms', 'final held-out loss']];
    for (const [compress, weights] of [['f16', 'f32'], ['int8', 'f32'], ['int8', 'f16']] as const) {
      const tag = `${compress}-${weights}`;
      const out = join(cluster.dir, `out-${tag}`);
      const threads = String(o.threads ?? 1);
      const serve = cluster.spawn(`serve-${tag}`, [
        'diloco', 'serve', '--init', job.init, '--rounds', String(rounds), '--inner-steps', String(H), '--batch', '4', '--ctx', String(job.model.nCtx), '--lr', '3e-3', '--warmup', '2',
        '--min-replicas', String(K), '--round-timeout', '300', '--compress', compress, '--weights', weights, '--eval-corpus', job.heldOut, '--eval-tokens', '2048', '--out', out,
        '--coordinator-url', coordinator.url, '--rpc-port', '0', '--data-dir', join(cluster.dir, `serve-${tag}`), '--threads', threads, '--log-format', 'json',
      ]);
      await serve.waitFor(/"event":"diloco_serving"/);
      const joins = job.shards.map((shard, i) => cluster.spawn(`join-${tag}-${i}`, [
        'diloco', 'join', '--coordinator-url', coordinator.url, '--corpus', shard, '--data-dir', join(cluster.dir, `join-${tag}-${i}`), '--threads', threads, '--log-format', 'json',
      ]));
      const exit = await serve.exited;
      if (exit.code !== 0) throw new Error(`diloco serve (${tag}) failed:\n${serve.tail()}`);
      await Promise.all(joins.map((j) => j.exited));
      const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as RoundLine).filter((l) => l.kind === 'round');
      const timed = lines.length > 1 ? lines.slice(1) : lines;
      const m = (f: (l: RoundLine) => number | undefined) => median(timed.map(f).filter((x): x is number => x !== undefined));
      const first = lines[0]!;
      rows.push([
        `${compress} / ${weights}`, `${first.bytesInPerParticipant.toLocaleString('en-US')} B`, fmt(first.bytesInPerParticipant / first.modelBytes, 3), `${first.bytesOutPerParticipant.toLocaleString('en-US')} B`,
        fmt(m((l) => l.computeMs), 1), fmt(m((l) => l.transferMs), 1), fmt(m((l) => l.aggregateMs), 1), fmt(m((l) => l.roundMs), 1), fmt(lines.at(-1)!.heldOutLoss ?? Number.NaN, 3),
      ]);
    }
    log(table(rows));
    log('sent: the encoded delta a participant pushes per round; received: the weights it pulls (f32: 4 bytes a parameter). Times: medians over rounds 1.., compute and transfer as the participants measured them.');
  } finally {
    await cluster.close();
  }
}
