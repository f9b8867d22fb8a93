// A command's flags, declared once: parsed with node's parseArgs, validated, and rendered as --help.
// Every value is checked here, before a command does any work: a number flag declares whether it is whole, its
// range and its unit (`{ type: 'number', integer: true, min: 1, unit: 'tokens' }`), a URL flag its schemes.
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';

export class UsageError extends Error {
  constructor(message: string, readonly command: string) {
    super(message);
    this.name = 'UsageError';
  }
}

type FlagType = 'string' | 'number' | 'boolean' | 'bytes' | 'url';

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
  /** Number flags: whole numbers only. */
  integer?: boolean;
  /** Number flags: the smallest and largest values accepted (inclusive). */
  min?: number;
  max?: number;
  /** Number flags: what the number counts, shown in --help (tokens, seconds, ...). */
  unit?: string;
  /** URL flags: the schemes accepted, e.g. ['http', 'https']. */
  schemes?: readonly string[];
}

/** More threads than this many per core only slow a node down (and each one is an OS thread to stop). */
export const THREADS_PER_CORE_MAX = 4;
export const CORES = availableParallelism();

/** Flag shapes used by several commands. */
export const FLAG_SHAPES = {
  threads: { type: 'number', integer: true, min: 1, max: CORES * THREADS_PER_CORE_MAX },
  port: { type: 'number', integer: true, min: 0, max: 65535 },
  tokens: { type: 'number', integer: true, min: 1, unit: 'tokens' },
  /** -1: a random seed (as llama.cpp's --seed -1). */
  seed: { type: 'number', integer: true, min: -1, max: 2 ** 32 - 1 },
} as const satisfies Record<string, Omit<FlagSpec, 'help'>>;

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
    raw = parseArgs({ args: joinNegativeValues(all, argv), options, allowPositionals: true, strict: true }) as typeof raw;
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

/**
 * node's parseArgs takes `--temp -1` for two options ("argument is ambiguous"): a value-taking flag followed
 * by a negative number becomes `--temp=-1`, so that the number reaches its range check.
 */
function joinNegativeValues(all: Record<string, FlagSpec>, argv: readonly string[]): string[] {
  const byShort = new Map(Object.entries(all).filter(([, f]) => f.short).map(([n, f]) => [f.short!, n]));
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    const name = a.startsWith('--') ? a.slice(2) : /^-[^-]$/.test(a) ? byShort.get(a.slice(1)) : undefined;
    const f = name === undefined ? undefined : all[name];
    if (f && f.type !== 'boolean' && next !== undefined && /^-(\d|\.\d)/.test(next)) {
      out.push(`--${name}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

function convert(cmd: string, name: string, f: FlagSpec, v: string | boolean): string | number | boolean {
  if (f.type === 'boolean') return v as boolean;
  const s = v as string;
  if (f.choices && !f.choices.includes(s)) throw new UsageError(`--${name} must be one of ${f.choices.join(', ')} (got '${s}')`, cmd);
  if (f.type === 'number') return checkNumber(cmd, name, f, s);
  if (f.type === 'bytes') return parseBytes(cmd, name, s);
  if (f.type === 'url') return checkUrl(cmd, name, f, s);
  return s;
}

function checkNumber(cmd: string, name: string, f: FlagSpec, s: string): number {
  const n = Number(s);
  const what = f.integer ? 'a whole number' : 'a number';
  if (s.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} needs ${what} (got '${s}')`, cmd);
  if (f.integer && !Number.isInteger(n)) throw new UsageError(`--${name} needs ${what} (got '${s}')`, cmd);
  const tooLow = f.min !== undefined && n < f.min;
  const tooHigh = f.max !== undefined && n > f.max;
  if (tooLow || tooHigh) throw new UsageError(`--${name} must be ${rangeText(f)} (got ${s})${name === 'threads' && tooHigh ? `: this machine has ${CORES} cores` : ''}`, cmd);
  return n;
}

/** "between 1 and 64", "at least 1", "at most 2". */
function rangeText(f: FlagSpec): string {
  if (f.min !== undefined && f.max !== undefined) return `between ${f.min} and ${f.max}`;
  if (f.min !== undefined) return `at least ${f.min}`;
  return `at most ${f.max}`;
}

function checkUrl(cmd: string, name: string, f: FlagSpec, s: string): string {
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    throw new UsageError(`--${name} needs a URL like http://192.168.1.10:8420 (got '${s}')`, cmd);
  }
  const scheme = url.protocol.replace(/:$/, '');
  if (f.schemes && !f.schemes.includes(scheme)) throw new UsageError(`--${name} must start with ${f.schemes.map((x) => `${x}://`).join(' or ')} (got '${s}')`, cmd);
  if (!url.hostname) throw new UsageError(`--${name} needs a host (got '${s}')`, cmd);
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
    const left = `  ${f.short ? `-${f.short}, ` : ''}--${name}${f.type === 'boolean' ? '' : ` ${f.arg ?? (f.type === 'number' ? 'N' : f.type === 'url' ? 'URL' : 'S')}`}`;
    const range = f.type === 'number' && (f.min !== undefined || f.max !== undefined) ? `${f.integer ? 'whole, ' : ''}${rangeText(f)}` : f.integer ? 'whole number' : '';
    const extra = [
      f.choices ? `one of: ${f.choices.join(', ')}` : '',
      f.unit ? `in ${f.unit}` : '',
      range,
      f.required ? 'required' : f.default !== undefined && f.default !== false ? `default: ${f.default}` : '',
    ].filter(Boolean).join('; ');
    return [left, `${f.help}${extra ? ` (${extra})` : ''}`] as const;
  });
  const w = Math.min(34, Math.max(...rows.map(([l]) => l.length)) + 2);
  for (const [l, r] of rows) lines.push(l.length >= w ? `${l}\n${' '.repeat(w)}${r}` : `${l.padEnd(w)}${r}`);
  if (spec.examples?.length) lines.push('', 'Examples:', ...spec.examples.map((e) => `  ${e}`));
  return lines.join('\n');
}
