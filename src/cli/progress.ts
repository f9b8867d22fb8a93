// A progress bar on stderr (stdout stays clean for the command's output). On a terminal it redraws one
// line; otherwise it prints a line at every 25%.

export class ProgressBar {
  private readonly label: string;
  private readonly tty: boolean;
  private lastPct = -1;
  private readonly start = Date.now();
  private done = false;

  constructor(label: string, private readonly stream: NodeJS.WriteStream = process.stderr) {
    this.label = label;
    this.tty = Boolean(stream.isTTY);
  }

  update(current: number, total: number, extra = ''): void {
    if (this.done) return;
    const pct = total > 0 ? Math.min(100, Math.floor((current / total) * 100)) : 100;
    if (this.tty) {
      if (pct === this.lastPct && !extra) return;
      const width = 30;
      const fill = Math.round((pct / 100) * width);
      this.stream.write(`\r${this.label} [${'#'.repeat(fill)}${'-'.repeat(width - fill)}] ${String(pct).padStart(3)}% ${extra}\x1b[K`);
    } else if (Math.floor(pct / 25) > Math.floor(this.lastPct / 25)) {
      this.stream.write(`${this.label} ${pct}% ${extra}\n`);
    }
    this.lastPct = pct;
  }

  finish(message?: string): void {
    if (this.done) return;
    this.done = true;
    const secs = ((Date.now() - this.start) / 1000).toFixed(1);
    if (this.tty) this.stream.write(`\r${this.label} ${message ?? 'done'} in ${secs}s\x1b[K\n`);
    else this.stream.write(`${this.label} ${message ?? 'done'} in ${secs}s\n`);
  }
}

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}
