// The catalogue: every bet file in this folder (NN_short_name.ts), found by name, loaded by number.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BETS_DIR, type BetDefinition } from './_common.ts';

const BET_FILE = /^(\d{2,})_([a-z0-9_]+)\.ts$/;

export interface CatalogueEntry {
  id: string;
  file: string;
}

/** Bet files, by number (00_rollup.ts is the rollup, not a bet). */
export function listBets(dir = BETS_DIR): CatalogueEntry[] {
  return readdirSync(dir)
    .flatMap((f) => {
      const m = BET_FILE.exec(f);
      return m && m[1] !== '00' && !f.endsWith('.test.ts') ? [{ id: m[1]!, file: join(dir, f) }] : [];
    })
    .sort((a, b) => Number(a.id) - Number(b.id) || a.id.localeCompare(b.id));
}

/** The file of bet `id` (e.g. '66' or '4'). */
export function betFile(id: string): string {
  const entry = listBets().find((b) => b.id === id.padStart(2, '0'));
  if (!entry) throw new Error(`no bet ${id} in ${BETS_DIR} (have: ${listBets().map((b) => b.id).join(', ') || 'none'})`);
  return entry.file;
}

export async function loadBet(id: string): Promise<BetDefinition<unknown>> {
  const file = betFile(id);
  const mod: { bet?: BetDefinition<unknown> } = await import(pathToFileURL(file).href);
  if (!mod.bet) throw new Error(`${file} does not export \`bet\` (defineBet({...}))`);
  return mod.bet;
}
