/**
 * Structured logs: one JSON object per line on stderr, `{ ts, level, event, ...fields }`.
 * Code logs events (snake_case names) with fields, never formatted sentences, so the lines can be
 * filtered with jq. Tests pass silentLogger.
 */

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
}

export interface JsonLoggerOptions {
  /** Lowest level written (default 'info'). */
  level?: LogLevel;
  /** Where lines go (default process.stderr). */
  write?: (line: string) => void;
  /** Fields added to every line, e.g. { component: 'coordinator' }. */
  base?: LogFields;
}

export function createJsonLogger(options: JsonLoggerOptions = {}): Logger {
  const minimum = LOG_LEVELS.indexOf(options.level ?? 'info');
  const write = options.write ?? ((line: string) => void process.stderr.write(line));
  const base = options.base ?? {};
  const emit = (level: LogLevel) => (event: string, fields: LogFields = {}) => {
    if (LOG_LEVELS.indexOf(level) < minimum) return;
    const record = { ts: new Date().toISOString(), level, event, ...base, ...fields };
    write(`${JSON.stringify(record, errorReplacer)}\n`);
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

/** Errors serialise as { name, message, stack } instead of {}. */
function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message, stack: value.stack };
  return value;
}

const noop = () => {};
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };
