/**
 * Logs on stderr in one of two formats, never mixed in one process:
 * - `json`: one JSON object per line, `{ ts, level, event, ...fields }`, for jq and log collectors (the default
 *   when stderr is not a terminal);
 * - `text`: one readable line per event (the default on a terminal).
 *
 * Rules for what is logged:
 * - An event is named in snake_case (`span_loaded`, `worker_unreachable`); details go in fields, never in the
 *   name. A name written otherwise is turned into snake_case here, so a jq filter on `.event` always works.
 * - A field `message` holds a sentence for people; the text format prints it as the line, the JSON format keeps
 *   it as a field. Lines a person waits for ("coordinator listening on ...") are events with a message.
 * - A layer span is written `[first, last)` (first included, last excluded), as in the code: `spanText()`.
 * Tests pass silentLogger.
 */

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['json', 'text'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
}

export interface LoggerOptions {
  /** `json` or `text` (default: text on a terminal, json otherwise; see defaultLogFormat). */
  format?: LogFormat;
  /** Lowest level written (default 'info'). */
  level?: LogLevel;
  /** Where lines go (default process.stderr). */
  write?: (line: string) => void;
  /** Fields added to every line, e.g. { component: 'coordinator' }. */
  base?: LogFields;
}

/** Readable lines for a person at a terminal, JSON lines for everything else (files, pipes, services). */
export function defaultLogFormat(stream: { isTTY?: boolean } = process.stderr): LogFormat {
  return stream.isTTY ? 'text' : 'json';
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const format = options.format ?? defaultLogFormat();
  const minimum = LOG_LEVELS.indexOf(options.level ?? 'info');
  const write = options.write ?? ((line: string) => void process.stderr.write(line));
  const base = options.base ?? {};
  const emit = (level: LogLevel) => (event: string, fields: LogFields = {}) => {
    if (LOG_LEVELS.indexOf(level) < minimum) return;
    const name = eventName(event);
    if (format === 'json') {
      const record = { ts: new Date().toISOString(), level, event: name, ...base, ...fields };
      write(`${JSON.stringify(record, errorReplacer)}\n`);
    } else {
      write(`${textLine(level, name, { ...base, ...fields })}\n`);
    }
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

/** A JSON-lines logger (createLogger with format 'json'). */
export function createJsonLogger(options: Omit<LoggerOptions, 'format'> = {}): Logger {
  return createLogger({ ...options, format: 'json' });
}

/** `span loaded` or `spanLoaded` -> `span_loaded`. */
export function eventName(event: string): string {
  if (/^[a-z0-9]+(?:_[a-z0-9]+)*$/.test(event)) return event;
  return event.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '') || 'event';
}

/** A layer span as logs and messages write it: `[first, last)`. */
export function spanText(first: number, last: number): string {
  return `[${first}, ${last})`;
}

/**
 * `message` alone when the event has one (`coordinator listening on ...`), else `event key=value ...`;
 * warnings and errors say so first. The component leads, as in `worker: span_loaded first=0 last=11`.
 */
function textLine(level: LogLevel, event: string, fields: LogFields): string {
  const { message, component, ...rest } = fields;
  const lead = `${level === 'info' ? '' : `${level}: `}${typeof component === 'string' && typeof message !== 'string' ? `${component}: ` : ''}`;
  if (typeof message === 'string') return `${lead}${message}`;
  const pairs = Object.entries(rest).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${textValue(v)}`);
  return `${lead}${[event, ...pairs].join(' ')}`;
}

function textValue(v: unknown): string {
  if (v instanceof Error) return JSON.stringify(v.message);
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v, errorReplacer) ?? String(v);
}

/** Errors serialise as { name, message, stack } instead of {}. */
function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message, stack: value.stack };
  return value;
}

const noop = () => {};
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };
