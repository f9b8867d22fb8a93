// The mechanical verdict: criteria are data (a named quantity, which number of it, a comparison, a
// threshold), declared by the bet before it runs; this file alone turns measurements into a verdict.
//
//   catastrophic  if ANY catastrophic criterion holds (they name what must not happen)
//   strict        else if EVERY strict criterion holds
//   lenient       else if EVERY lenient criterion holds
//   fail          otherwise
import type { Criterion, Quantity } from './_schema.ts';
import { VERDICTS } from './_schema.ts';

export type Verdict = (typeof VERDICTS)[number];

export interface CriterionResult extends Criterion {
  value: number;
  holds: boolean;
}

export class CriteriaError extends Error {
  constructor(readonly expected: string, readonly actual: string, readonly hint: string) {
    super(`bet criteria: expected ${expected}, got ${actual}. ${hint}`);
    this.name = 'CriteriaError';
  }
}

export function compare(value: number, op: Criterion['op'], threshold: number): boolean {
  switch (op) {
    case '<': return value < threshold;
    case '<=': return value <= threshold;
    case '>': return value > threshold;
    case '>=': return value >= threshold;
  }
}

function read(q: Quantity, stat: Criterion['stat']): number {
  return stat === 'mean' ? q.mean : stat === 'ci_low' ? q.ci95[0] : q.ci95[1];
}

/** Check that every level is declared and every criterion names a quantity the bet measures. */
export function checkCriteria(criteria: readonly Criterion[], quantities: readonly string[]): void {
  for (const level of ['strict', 'lenient', 'catastrophic'] as const) {
    if (!criteria.some((c) => c.level === level)) throw new CriteriaError(`at least one ${level} criterion`, 'none', 'declare STRICT, LENIENT and CATASTROPHIC thresholds before the first run');
  }
  for (const c of criteria) {
    if (!quantities.includes(c.quantity)) throw new CriteriaError(`a measured quantity (${quantities.join(', ')})`, c.quantity, 'a criterion must read a quantity the bet declares');
  }
}

export function judge(criteria: readonly Criterion[], quantities: Readonly<Record<string, Quantity>>): { verdict: Verdict; results: CriterionResult[] } {
  const results = criteria.map((c) => {
    const q = quantities[c.quantity];
    if (q === undefined) throw new CriteriaError(`quantity '${c.quantity}' in the results`, Object.keys(quantities).join(', ') || 'none', 'the bet did not measure what its criteria read');
    const value = read(q, c.stat);
    return { ...c, value, holds: compare(value, c.op, c.threshold) };
  });
  const at = (level: Criterion['level']) => results.filter((r) => r.level === level);
  const verdict: Verdict = at('catastrophic').some((r) => r.holds) ? 'catastrophic'
    : at('strict').every((r) => r.holds) ? 'strict'
    : at('lenient').every((r) => r.holds) ? 'lenient'
    : 'fail';
  return { verdict, results };
}
