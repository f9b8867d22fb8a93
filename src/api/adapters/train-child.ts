/**
 * One adapter training job in a process of its own, started by the primary (engine-train.ts). Training is
 * seconds to minutes of ggml compute: in the primary's process it would stall the API and the data plane
 * for a whole step at a time, and its F32 copy of the base would stay in the primary's memory. Here it runs
 * beside the primary, is stopped with SIGTERM, and frees everything when it exits.
 *
 * Protocol: argv[2] is the job (JSON, TrainChildJob), the training text arrives on stdin, and stdout
 * carries one JSON line per event (TrainChildLine): progress after each step, then `done` (the adapter is
 * written to job.outPath) or `error`. The exit code is 0 only after `done`.
 */
import { trainAdapter, writeAdapter } from '../../train/adapter/index.ts';
import { type TrainChildLine, TrainChildJobSchema } from './train-child-protocol.ts';

function send(line: TrainChildLine): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

async function main(): Promise<number> {
  const job = TrainChildJobSchema.parse(JSON.parse(process.argv[2] ?? 'null'));
  const controller = new AbortController();
  process.once('SIGTERM', () => controller.abort(new Error('stopped by the primary')));
  const text = await readStdin();
  try {
    const adapter = await trainAdapter({
      modelPath: job.modelPath,
      text,
      kind: job.kind,
      ...(job.rank === undefined ? {} : { rank: job.rank }),
      steps: job.steps,
      seed: job.seed,
      ...(job.threads === undefined ? {} : { threads: job.threads }),
      signal: controller.signal,
      onProgress: (step, total, loss) => send({ event: 'progress', step, total, loss: Number.isFinite(loss) ? loss : null }),
    });
    writeAdapter(job.outPath, adapter);
    send({ event: 'done', loss: adapter.training?.lastLoss ?? null });
    return 0;
  } catch (error) {
    send({ event: 'error', message: (error as Error).message });
    return 1;
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    send({ event: 'error', message: (error as Error).message });
    process.exit(1);
  },
);
