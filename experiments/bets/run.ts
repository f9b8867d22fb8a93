// `npm run bet -- NN [--smoke] [--out DIR] [--jobs N]`: run one bet of the catalogue (a full run writes
// results/). With --jobs N > 1 the seeds run in child processes (_parallel.ts), which stop their own clusters.
import { betHelp, parseBetArgsOrExit, runBet } from './_common.ts';
import { betFile, loadBet } from './_catalogue.ts';
import { exitLikeFailedSeed } from './_parallel.ts';
import { stopChildrenOnSignals } from '../../src/cli/cluster.ts';

const [id, ...rest] = process.argv.slice(2);
if (id === '--help' || id === '-h' || rest.includes('--help') || rest.includes('-h')) {
  process.stdout.write(`${betHelp()}\n`);
  process.exit(0);
}
if (id === undefined || !/^\d+$/.test(id)) {
  process.stderr.write(`${betHelp()}\n\nerror: the first argument is the bet's number (NN), e.g. npm run bet -- 66 --smoke\n`);
  process.exit(2);
}
const args = parseBetArgsOrExit(rest);
// Seeds in this process: its clusters stop with it. Seeds in child processes: the parallel runner stops them.
if ((args.jobs ?? 1) <= 1) stopChildrenOnSignals();
const bet = await loadBet(id);
const result = await exitLikeFailedSeed(runBet(bet, { ...args, file: betFile(id) }));
process.stdout.write(`${result.bet}_${result.name}: ${result.verdict}\n`);
