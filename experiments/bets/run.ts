// `npm run bet -- NN [--smoke] [--out DIR]`: run one bet of the catalogue (a full run writes results/).
import { parseBetArgs, runBet } from './_common.ts';
import { loadBet } from './_catalogue.ts';
import { stopChildrenOnSignals } from '../../src/cli/cluster.ts';

const [id, ...rest] = process.argv.slice(2);
if (id === undefined || !/^\d+$/.test(id)) {
  process.stderr.write('usage: npm run bet -- NN [--smoke] [--out DIR]\n');
  process.exit(2);
}
stopChildrenOnSignals();
const bet = await loadBet(id);
const result = await runBet(bet, parseBetArgs(rest));
process.stdout.write(`${result.bet}_${result.name}: ${result.verdict}\n`);
