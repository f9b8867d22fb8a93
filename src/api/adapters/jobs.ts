/**
 * Training jobs: a FIFO queue run in the background, `maxRunning` at a time (one by default: training
 * shares the primary's CPU with serving).
 *
 *   queued -> training -> ready | failed
 *
 * Progress (step, loss) goes to the store as it comes, so GET /v1/adapters/{id} reads it there. When a job
 * ends, either way, its training text is deleted unless the user's consent kept it. The adapter is written
 * to a temp file and renamed into place: a restart never leaves half an adapter.
 *
 * A restart interrupts the running job. On start (`resumeInterrupted`) every job left queued or training
 * whose text is still there starts again from step 0; one whose text is gone is marked failed, with an
 * error that says so (GET shows it). Deleting an adapter while it trains aborts its job first.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from '../../util/log.ts';
import type { AdapterEngine } from './engine.ts';
import { type AdapterFiles, wipe } from './files.ts';
import type { AdapterRecord, PrimaryStore } from './store.ts';

export interface JobsConfig {
  /** Training jobs run at once. */
  maxRunning: number;
}

/** Why a job stopped early. */
type StopReason = 'closing' | 'deleted';

export class TrainingJobs {
  private readonly queue: string[] = [];
  private readonly running = new Map<string, { controller: AbortController; reason?: StopReason; done: Promise<void> }>();
  private closed = false;

  constructor(
    private readonly store: PrimaryStore,
    private readonly files: AdapterFiles,
    private readonly engine: AdapterEngine,
    private readonly config: JobsConfig,
    private readonly logger: Logger,
  ) {}

  enqueue(id: string): void {
    this.queue.push(id);
    this.pump();
  }

  /** Re-queues the jobs a restart interrupted (text still there) and fails those whose text is gone. */
  resumeInterrupted(): void {
    for (const job of this.store.unfinished()) {
      if (job.baseHash === this.engine.baseHash && this.files.hasText(job.id)) {
        this.store.updateAdapter(job.id, { state: 'queued', step: 0, loss: null, startedAt: null });
        this.logger.info('adapter_job_resumed', { adapter: job.id });
        this.enqueue(job.id);
        continue;
      }
      const why = job.baseHash === this.engine.baseHash ? 'its training text is gone' : `it is for the base ${job.baseHash}, and this node now serves ${this.engine.baseHash}`;
      this.fail(job, `training was interrupted by a restart of the node and cannot resume: ${why}; create the adapter again`);
    }
  }

  /** Position in the queue (0: next), or undefined when not queued. */
  position(id: string): number | undefined {
    const at = this.queue.indexOf(id);
    return at < 0 ? undefined : at;
  }

  /** Stops the job if it is queued or running (before the adapter is deleted); waits until it has stopped. */
  async cancel(id: string): Promise<void> {
    const at = this.queue.indexOf(id);
    if (at >= 0) this.queue.splice(at, 1);
    const run = this.running.get(id);
    if (run === undefined) return;
    run.reason = 'deleted';
    run.controller.abort(new Error('adapter deleted'));
    await run.done;
  }

  /** Stops every running job (they resume on the next start) and starts no more. */
  async close(): Promise<void> {
    this.closed = true;
    this.queue.length = 0;
    for (const run of this.running.values()) {
      run.reason = 'closing';
      run.controller.abort(new Error('node closing'));
    }
    await Promise.allSettled([...this.running.values()].map((r) => r.done));
  }

  private pump(): void {
    while (!this.closed && this.running.size < this.config.maxRunning && this.queue.length > 0) {
      const id = this.queue.shift()!;
      const controller = new AbortController();
      const entry: { controller: AbortController; reason?: StopReason; done: Promise<void> } = { controller, done: Promise.resolve() };
      this.running.set(id, entry);
      entry.done = this.run(id, entry).finally(() => {
        this.running.delete(id);
        this.pump();
      });
    }
  }

  private async run(id: string, entry: { controller: AbortController; reason?: StopReason }): Promise<void> {
    const job = this.store.adapter(id);
    if (job === undefined || job.state !== 'queued') return;
    let text: string;
    try {
      text = readFileSync(this.files.textPath(id), 'utf8');
    } catch {
      this.fail(job, 'the training text is gone (deleted while queued)');
      return;
    }
    this.store.updateAdapter(id, { state: 'training', startedAt: Date.now(), step: 0 });
    this.store.audit(job.userId, 'training_started', id, { name: job.name, kind: job.kind, steps: job.steps, text_tokens: job.textTokens });
    this.logger.info('adapter_training_started', { adapter: id, kind: job.kind, steps: job.steps });
    const outPath = this.files.adapterPath(id);
    const temp = this.files.tempFor(outPath);
    try {
      const { loss } = await this.engine.train(
        {
          text,
          kind: job.kind,
          ...(job.rank === null ? {} : { rank: job.rank }),
          steps: job.steps,
          seed: job.seed,
          signal: entry.controller.signal,
          onProgress: (step, _total, stepLoss) => {
            if (!entry.controller.signal.aborted) this.store.updateAdapter(id, { step, loss: Number.isFinite(stepLoss) ? stepLoss : null });
          },
        },
        temp,
      );
      if (entry.reason !== undefined) throw entry.controller.signal.reason;
      this.files.commit(temp, outPath);
      this.store.updateAdapter(id, { state: 'ready', step: job.steps, loss, finishedAt: Date.now() });
      this.store.audit(job.userId, 'training_finished', id, { name: job.name, steps: job.steps, loss });
      this.logger.info('adapter_training_finished', { adapter: id, loss });
      this.endText(job);
    } catch (error) {
      wipe(temp);
      if (entry.reason === 'closing') return; // resumes on the next start: text and row stay as they are
      if (entry.reason === 'deleted') return; // the deletion removes the rest
      this.logger.warn('adapter_training_failed', { adapter: id, error: (error as Error).message });
      this.fail(job, `training failed: ${(error as Error).message}`);
    }
  }

  private fail(job: AdapterRecord, message: string): void {
    this.store.updateAdapter(job.id, { state: 'failed', error: message, finishedAt: Date.now() });
    this.store.audit(job.userId, 'training_failed', job.id, { name: job.name });
    this.endText(job);
  }

  /** Training ended: the text goes unless the user's consent keeps it. */
  private endText(job: AdapterRecord): void {
    if (!job.consent.keepText) this.files.deleteText(job.id);
  }
}
