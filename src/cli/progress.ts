// A progress bar on stderr (stdout stays clean for the command's output), drawn only on a terminal: it redraws
// one line. Where stderr is a pipe or a file (a service, CI, `2> log`), it writes nothing, so that stderr holds
// only log lines of one format (util/log.ts); what finished is logged by the caller where it matters.

export class ProgressBar {
  private readonly label: string;
  private readonly tty: boolean;
  private lastPct = -1;
  private lastExtra = '';
  private readonly start = Date.now();
  private done = false;

  constructor(label: string, private readonly stream: NodeJS.WriteStream = process.stderr) {
    this.label = label;
    this.tty = Boolean(stream.isTTY);
  }

  update(current: number, total: number, extra = ''): void {
    if (this.done || !this.tty) return;
    const pct = total > 0 ? Math.min(100, Math.floor((current / total) * 100)) : 100;
    if (pct === this.lastPct && extra === this.lastExtra) return;
    const width = 30;
    const fill = Math.round((pct / 100) * width);
    this.stream.write(`\r${this.label} [${'#'.repeat(fill)}${'-'.repeat(width - fill)}] ${String(pct).padStart(3)}% ${extra}\x1b[K`);
    this.lastPct = pct;
    this.lastExtra = extra;
  }

  /** On a terminal, replaces the bar with `label message in N.Ns`; elsewhere writes nothing. */
  finish(message?: string): void {
    if (this.done) return;
    this.done = true;
    if (!this.tty) return;
    const secs = ((Date.now() - this.start) / 1000).toFixed(1);
    this.stream.write(`\r${this.label} ${message ?? 'done'} in ${secs}s\x1b[K\n`);
  }
}

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}
