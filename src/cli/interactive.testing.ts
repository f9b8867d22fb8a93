// A `sharedllm` process driven as a user drives it, for tests: its output collected, and waits on what it
// prints (never on fixed sleeps). Either its stdin is a pipe (Ctrl-C is then a SIGINT sent to it), or, with
// `terminal`, it runs in a pseudo-terminal made by util-linux's `script` (keys typed there, Ctrl-C as the
// byte \x03, which readline reads in raw mode; a terminal echoes what is typed).
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';

export const BIN = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../../bin/sharedllm.js');

export interface Interactive {
  child: ChildProcessWithoutNullStreams;
  readonly out: string;
  readonly err: string;
  exited: Promise<number | null>;
  /** Resolves once `ok()` holds; rejects if the process exits first or after `limitMs`. */
  until(what: string, ok: () => boolean, limitMs?: number): Promise<void>;
}

/** Whether `terminal: true` works here (Linux with util-linux's `script`). */
export const HAS_PTY = process.platform === 'linux' && spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export function startInteractive(args: string[], options: { terminal?: boolean } = {}): Interactive {
  const command = [process.execPath, BIN, ...args];
  const child = options.terminal
    ? spawn('script', ['-qfec', command.map(quote).join(' '), '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] })
    : spawn(command[0]!, command.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  const wake = () => waiters.forEach((w) => w());
  child.stdout.setEncoding('utf8').on('data', (d: string) => ((out += d), wake()));
  child.stderr.setEncoding('utf8').on('data', (d: string) => ((err += d), wake()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const until = (what: string, ok: () => boolean, limitMs = 60_000) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => settle(new Error(`timed out waiting for ${what}\nstdout: ${out}\nstderr: ${err}`)), limitMs);
      const settle = (error?: Error) => {
        clearTimeout(timer);
        waiters.delete(check);
        if (error) reject(error);
        else resolve();
      };
      const check = () => {
        if (ok()) settle();
      };
      waiters.add(check);
      void exited.then(() => waiters.has(check) && !ok() && settle(new Error(`the process exited while waiting for ${what}\nstderr: ${err}`)));
      check();
    });
  return {
    child,
    get out() {
      return out;
    },
    get err() {
      return err;
    },
    exited,
    until,
  };
}
