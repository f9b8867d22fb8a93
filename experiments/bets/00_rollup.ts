// `npm run bets:rollup`: regenerate SUMMARY.md and plots/*.svg from results/*.json (full runs only).
//
// SUMMARY.md has one row per bet (hypothesis, criteria, the result with its CI, verdict, run command, link
// to the result file), then a section per bet with its criteria as judged, every quantity, the line of
// what we do not claim, retractions both ways, notes, tables from its details and its figures.
// The output depends only on the result files: no timestamps, bets by number, figures by their order in
// the result. Running it twice gives byte-identical files (bets.test.ts checks it).
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BETS_DIR, RESULTS_DIR, isMain } from './_common.ts';
import { renderSvg } from './_plots.ts';
import { type BetResult, ResultSchema } from './_schema.ts';

export interface RollupOptions {
  resultsDir?: string;
  /** Where SUMMARY.md and plots/ go (default: this folder). Links in SUMMARY.md are relative to it. */
  outDir?: string;
}

export function readResults(dir: string = RESULTS_DIR): BetResult[] {
  const files = readdirSync(dir).filter((f) => /^\d{2,}_[a-z0-9_]+\.json$/.test(f)).sort((a, b) => parseInt(a, 10) - parseInt(b, 10) || a.localeCompare(b));
  return files.map((f) => {
    const parsed = ResultSchema.safeParse(JSON.parse(readFileSync(join(dir, f), 'utf8')));
    if (!parsed.success) throw new Error(`${f} does not match the result schema: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    if (parsed.data.mode !== 'full') throw new Error(`${f} is a ${parsed.data.mode} result: only full runs belong in results/ (smoke runs write to a temp folder)`);
    if (`${parsed.data.bet}_${parsed.data.name}.json` !== f) throw new Error(`${f} holds bet ${parsed.data.bet}_${parsed.data.name}: file and content disagree`);
    return parsed.data;
  });
}

/** 3 significant digits, plain notation for the sizes we measure. */
export function fmt(x: number): string {
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toString();
  return Number(x.toPrecision(3)).toString();
}

const ci = (iv: readonly [number, number]) => `[${fmt(iv[0])}, ${fmt(iv[1])}]`;
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const resultLink = (r: BetResult) => `results/${r.bet}_${r.name}.json`;

function headline(r: BetResult): string {
  const read = [...new Set(r.criteria.map((c) => c.quantity))];
  return read.map((k) => {
    const q = r.quantities[k]!;
    return `${k} = ${fmt(q.mean)} ${ci(q.ci95)}`;
  }).join('; ') + ` (n = ${r.seeds.length} seeds)`;
}

function criteriaWords(r: BetResult): string {
  const by = (level: string) => r.criteria.filter((c) => c.level === level).map((c) => c.words).join(', ');
  return `STRICT: ${by('strict')}. LENIENT: ${by('lenient')}. CATASTROPHIC: ${by('catastrophic')}.`;
}

type Interval = { mean: number; lo: number; hi: number };
const isInterval = (v: unknown): v is Interval => typeof v === 'object' && v !== null && 'mean' in v && 'lo' in v && 'hi' in v;

function value(v: unknown): string {
  if (typeof v === 'number') return fmt(v);
  if (isInterval(v)) return `${fmt(v.mean)} [${fmt(v.lo)}, ${fmt(v.hi)}]`;
  if (Array.isArray(v)) return v.map(value).join(', ');
  // A nested record (e.g. one arm's figures): its fields, flattened one level.
  if (typeof v === 'object' && v !== null) return Object.entries(v).map(([k, x]) => `${k} ${value(x)}`).join('; ');
  return cell(String(v));
}

/** A details entry as Markdown: an array of flat rows as a table, an object of rows as a two-column list. */
function detailTable(name: string, v: unknown): string {
  if (Array.isArray(v) && v.length > 0 && v.every((row) => typeof row === 'object' && row !== null)) {
    const cols = Object.keys(v[0] as object);
    const rows = (v as Record<string, unknown>[]).map((row) => `| ${cols.map((c) => value(row[c])).join(' | ')} |`);
    return [`**${name}** (mean [95% CI over seeds])`, '', `| ${cols.join(' | ')} |`, `|${cols.map(() => '---').join('|')}|`, ...rows, ''].join('\n');
  }
  if (typeof v === 'object' && v !== null) {
    const flat: string[] = [];
    const walk = (prefix: string, o: unknown) => {
      if (typeof o === 'object' && o !== null && !Array.isArray(o) && !isInterval(o)) for (const [k, x] of Object.entries(o)) walk(prefix ? `${prefix}.${k}` : k, x);
      else flat.push(`| ${prefix} | ${value(o)} |`);
    };
    walk('', v);
    return [`**${name}** (mean [95% CI over seeds])`, '', '| what | value |', '|---|---|', ...flat, ''].join('\n');
  }
  return `**${name}**: ${value(v)}\n`;
}

function section(r: BetResult, all: BetResult[]): string {
  const retractedBy = all.filter((o) => o.retracts.includes(r.bet));
  const lines = [
    `## Bet ${r.bet} — ${r.name}`, '',
    `**Hypothesis.** ${r.hypothesis}`, '',
    `**Verdict: ${r.verdict}** (${r.seeds.length} seeds: ${r.seeds.join(', ')}; commit \`${r.environment.commit.slice(0, 12)}\`${r.environment.dirty ? ' with uncommitted changes' : ''}; ${r.environment.cpuModel}, ${r.environment.cpus} CPUs, ${r.environment.threads} thread(s) per process; ${fmt(r.wallTimeS)} s). Run: \`${r.run}\`. Result: [${resultLink(r)}](${resultLink(r)}).`, '',
    `**What we do not claim.** ${r.notClaimed}`, '',
  ];
  if (retractedBy.length > 0) lines.push(`**Retracted by** ${retractedBy.map((o) => `[Bet ${o.bet}](#bet-${o.bet}--${o.name})`).join(', ')}.`, '');
  if (r.retracts.length > 0) lines.push(`**Retracts** ${r.retracts.map((id) => `Bet ${id}`).join(', ')}.`, '');
  lines.push('| level | criterion | value | holds |', '|---|---|---|---|');
  for (const c of r.criteriaResults) lines.push(`| ${c.level} | ${cell(c.words)} (${c.quantity} ${c.stat} ${c.op} ${c.threshold}) | ${fmt(c.value)} | ${c.holds ? 'yes' : 'no'} |`);
  lines.push('', '| quantity | unit | mean | 95% CI (seeds) | 95% CI (items, n) | per seed |', '|---|---|---|---|---|---|');
  for (const [k, q] of Object.entries(r.quantities)) {
    lines.push(`| ${k} | ${q.unit} | ${fmt(q.mean)} | ${ci(q.ci95)} | ${q.ci95Items ? `${ci(q.ci95Items)}, ${q.nItems}` : '—'} | ${q.perSeed.map(fmt).join(', ')} |`);
  }
  lines.push('', `**Controls.** ${r.controls.map((c) => `${c.name}: ${c.description}`).join('; ')}.`, '');
  if (r.notes.length > 0) lines.push('**Notes.**', '', ...r.notes.map((n) => `- ${n}`), '');
  for (const [name, v] of Object.entries(r.details)) lines.push(detailTable(name, v));
  for (const f of r.figures) lines.push(`![${cell(f.title)}](plots/${f.id}.svg)`, '');
  return lines.join('\n');
}

export function summaryMarkdown(results: BetResult[]): string {
  const lines = [
    '# Bets: summary',
    '',
    '<!-- Generated by `npm run bets:rollup` from results/*.json. Do not edit by hand. -->',
    '',
    'Each bet is pre-registered (its criteria are committed before its first result) and judged mechanically;',
    'how we run them is in [METHODOLOGY.md](METHODOLOGY.md). Figures are means with bootstrap 95% CIs over seeds.',
    '',
    '| bet | hypothesis | criteria | result (mean [95% CI]) | verdict | run | file |',
    '|---|---|---|---|---|---|---|',
    ...results.map((r) => {
      const retracted = results.filter((o) => o.retracts.includes(r.bet)).map((o) => `retracted by ${o.bet}`);
      return `| ${r.bet} ${r.name} | ${cell(r.hypothesis)} | ${cell(criteriaWords(r))} | ${cell(headline(r))} | **${r.verdict}**${retracted.length ? ` (${retracted.join(', ')})` : ''} | \`${r.run}\` | [json](${resultLink(r)}) |`;
    }),
    '',
    ...results.map((r) => section(r, results)),
  ];
  return `${lines.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd()}\n`;
}

/** Write SUMMARY.md and plots/*.svg; returns the files written (relative to outDir), in order. */
export async function rollup(options: RollupOptions = {}): Promise<string[]> {
  const outDir = options.outDir ?? BETS_DIR;
  const results = readResults(options.resultsDir ?? RESULTS_DIR);
  const plots = join(outDir, 'plots');
  rmSync(plots, { recursive: true, force: true });
  mkdirSync(plots, { recursive: true });
  const written: string[] = [];
  for (const r of results) {
    for (const f of r.figures) {
      writeFileSync(join(plots, `${f.id}.svg`), await renderSvg(f));
      written.push(`plots/${f.id}.svg`);
    }
  }
  writeFileSync(join(outDir, 'SUMMARY.md'), summaryMarkdown(results));
  written.push('SUMMARY.md');
  return written;
}

if (isMain(import.meta.url)) {
  const files = await rollup();
  process.stdout.write(`wrote ${files.length} files to ${BETS_DIR}: ${files.join(', ')}\n`);
}
