// A command's flags, declared once: parsed with node's parseArgs, validated, and rendered as --help.
import { parseArgs } from 'node:util';

export class UsageError extends Error {
  constructor(message: string, readonly command: string) {
    super(message);
    this.name = 'UsageError';
  }
}

type FlagType = 'string' | 'number' | 'boolean' | 'bytes';

export interface FlagSpec {
  type: FlagType;
  help: string;
  /** Shown in --help and used when the flag is absent. */
  default?: string | number | boolean;
  choices?: readonly string[];
  short?: string;
  /** Placeholder in --help, e.g. F or PATH. */
  arg?: string;
  required?: boolean;
  /** Collect every occurrence (string flags). */
  multiple?: boolean;
}

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  flags: Record<string, FlagSpec>;
  /** Names for positional arguments (shown in usage); extra positionals are an error. */
  positionals?: readonly string[];
  examples?: readonly string[];
}

export type Parsed = { flags: Record<string, string | number | boolean | string[] | undefined>; positionals: string[] };

export const COMMON_FLAGS: Record<string, FlagSpec> = {
  help: { type: 'boolean', short: 'h', help: 'show this help' },
  verbose: { type: 'boolean', help: 'print details and stack traces of errors', default: false },
};

export function parseCommand(spec: CommandSpec, argv: readonly string[]): Parsed {
  const all = { ...spec.flags, ...COMMON_FLAGS };
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const [name, f] of Object.entries(all)) {
    options[name] = { type: f.type === 'boolean' ? 'boolean' : 'string', ...(f.short ? { short: f.short } : {}), ...(f.multiple ? { multiple: true } : {}) };
  }
  let raw: { values: Record<string, unknown>; positionals: string[] };
  try {
    raw = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true }) as typeof raw;
  } catch (e) {
    throw new UsageError(cleanParseError(String((e as Error).message)), spec.name);
  }
  const flags: Parsed['flags'] = {};
  if (raw.values.help) return { flags: { help: true }, positionals: [] };
  for (const [name, f] of Object.entries(all)) {
    const v = raw.values[name];
    if (v === undefined) {
      if (f.required) throw new UsageError(`missing --${name} (${f.help})`, spec.name);
      flags[name] = f.default;
      continue;
    }
    if (f.multiple) {
      flags[name] = v as string[];
      continue;
    }
    flags[name] = convert(spec.name, name, f, v as string | boolean);
  }
  const max = spec.positionals?.length ?? 0;
  if (raw.positionals.length > max) {
    throw new UsageError(`unexpected argument '${raw.positionals[max]}'`, spec.name);
  }
  return { flags, positionals: raw.positionals };
}

function convert(cmd: string, name: string, f: FlagSpec, v: string | boolean): string | number | boolean {
  if (f.type === 'boolean') return v as boolean;
  const s = v as string;
  if (f.choices && !f.choices.includes(s)) throw new UsageError(`--${name} must be one of ${f.choices.join(', ')} (got '${s}')`, cmd);
  if (f.type === 'number') {
    const n = Number(s);
    if (s.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} needs a number (got '${s}')`, cmd);
    return n;
  }
  if (f.type === 'bytes') return parseBytes(cmd, name, s);
  return s;
}

/** 8GiB, 512MiB, 1.5G, 1000000 -> bytes. */
export function parseBytes(cmd: string, name: string, s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)$/i.exec(s.trim());
  if (!m) throw new UsageError(`--${name} needs a size like 8GiB or 512MiB (got '${s}')`, cmd);
  const unit = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Math.floor(Number(m[1]) * unit);
}

function cleanParseError(msg: string): string {
  // node says: "Unknown option '--foo'. To specify a positional argument starting with a '-', ..."
  return msg.split('. To specify')[0]!.replace(/^TypeError \[.*?\]: /, '');
}

export function renderHelp(spec: CommandSpec): string {
  const lines = [`${spec.summary}`, '', `Usage: ${spec.usage}`, '', 'Options:'];
  const all = { ...spec.flags, ...COMMON_FLAGS };
  const rows = Object.entries(all).map(([name, f]) => {
    const left = `  ${f.short ? `-${f.short}, ` : ''}--${name}${f.type === 'boolean' ? '' : ` ${f.arg ?? (f.type === 'number' ? 'N' : 'S')}`}`;
    const extra = [f.choices ? `one of: ${f.choices.join(', ')}` : '', f.required ? 'required' : f.default !== undefined && f.default !== false ? `default: ${f.default}` : ''].filter(Boolean).join('; ');
    return [left, `${f.help}${extra ? ` (${extra})` : ''}`] as const;
  });
  const w = Math.min(34, Math.max(...rows.map(([l]) => l.length)) + 2);
  for (const [l, r] of rows) lines.push(l.length >= w ? `${l}\n${' '.repeat(w)}${r}` : `${l.padEnd(w)}${r}`);
  if (spec.examples?.length) lines.push('', 'Examples:', ...spec.examples.map((e) => `  ${e}`));
  return lines.join('\n');
}
