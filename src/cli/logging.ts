// The log flags of the long-running commands (coordinator, node) and the logger they make: one format per
// process (util/log.ts), chosen by --log-format or by whether stderr is a terminal.
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel, type Logger, createLogger, defaultLogFormat } from '../util/log.ts';
import type { FlagSpec, Parsed } from './args.ts';

export const LOG_FLAGS: Record<string, FlagSpec> = {
  'log-level': { type: 'string', default: 'info', choices: LOG_LEVELS, help: 'lowest level of the log lines on stderr' },
  'log-format': { type: 'string', choices: LOG_FORMATS, help: 'json: one JSON object per line (for jq); text: readable lines (default: text when stderr is a terminal, else json)' },
};

export function logFormatOf(flags: Parsed['flags']): LogFormat {
  return (flags['log-format'] as LogFormat | undefined) ?? defaultLogFormat();
}

export function cliLogger(flags: Parsed['flags'], component: string): Logger {
  return createLogger({ format: logFormatOf(flags), level: flags['log-level'] as LogLevel, base: { component } });
}

/** For the lines a person (or a launcher) waits for: "listening on", "serving on", shutdown steps. They are
 *  written whatever --log-level says, in the same format as the other lines. */
export function noticeLogger(flags: Parsed['flags'], component: string): Logger {
  return createLogger({ format: logFormatOf(flags), level: 'info', base: { component } });
}

/** --log-format from raw arguments, for the error path of a command whose flags did not parse. */
export function logFormatFromArgv(argv: readonly string[]): LogFormat {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = a === '--log-format' ? argv[i + 1] : a.startsWith('--log-format=') ? a.slice('--log-format='.length) : undefined;
    if (value === 'json' || value === 'text') return value;
  }
  return defaultLogFormat();
}
