/**
 * Measures the deploy gate's error rates by simulation.
 *
 *   npx tsx scripts/gate-sim.ts [--runs N] [--seed S] [--look-size N] [--max-samples N]
 *                               [--baseline-size N] [--data DIR] [--json]
 *
 * Score streams are resampled from real judge scores: the offline judge scores every right
 * answer and every hallucinated answer of halueval/qa_one-turn.jsonl (prompt = question,
 * context = knowledge), giving one triple per answer: quality overall, hallucination flag
 * (score ≥ 0.5) and toxicity flag (toxicity ≥ 0.5). A "version" is a mixture: each interaction
 * is a hallucinated-answer triple with probability s, else a right-answer triple, drawn with a
 * seeded PRNG (mulberry32). The baseline version has s0 = 0.05.
 *
 * Scenarios: A/A (candidate s = s0); A/B with s chosen so the expected quality drop is exactly
 * 12 points; a small A/B at a 3-point quality drop; and an A/B where every metric's true harm is
 * at most half its tolerance. The true harms of each scenario are printed: the mixture moves
 * quality and the hallucination rate together, so a scenario can be within one tolerance and
 * beyond another.
 *
 * Each run draws a fresh baseline of `baselineSize` interactions, then a candidate stream of
 * `maxSamples`, seen in looks of `lookSize`. Rules, on the same streams:
 * - sequential: `decideLook` with DEFAULT_RULE at every look; stops at the first APPROVE or
 *   REJECT; INCONCLUSIVE at maxSamples.
 * - naive, one look: the seed's rule (mean drop > 5 points → REJECT) at the first look.
 * - naive, every look: REJECT at the first look whose mean drop > 5 points, else APPROVE at the end.
 *
 * DIR defaults to $OPTIINFRA_DATA_DIR, else the repository's data/ folder.
 *
 * The score pools are in scripts/gate-sim/score-pools.ts, the simulation in simulation.ts, the
 * text report in report.ts.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { formatReport } from './gate-sim/report.js';
import { runGateSimulation } from './gate-sim/simulation.js';

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
}
function integer(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('must be an integer');
  return n;
}

export function main(argv: string[] = process.argv): void {
  const program = new Command()
    .name('gate-sim')
    .description('Simulates the deploy gate on resampled judge scores and reports its error rates')
    .option('--runs <n>', 'runs per scenario', positiveInt, 2000)
    .option('--seed <s>', 'PRNG seed', integer, 1)
    .option('--look-size <n>', 'candidate samples per look', positiveInt, 10)
    .option('--max-samples <n>', 'candidate samples before INCONCLUSIVE', positiveInt, 600)
    .option('--baseline-size <n>', 'baseline samples', positiveInt, 1000)
    .option('--data <dir>', 'data directory (default $OPTIINFRA_DATA_DIR or data/ of the repository)')
    .option('--json', 'also print the report as JSON (last line)', false)
    .parse(argv);
  const o = program.opts<{
    runs: number;
    seed: number;
    lookSize: number;
    maxSamples: number;
    baselineSize: number;
    data?: string;
    json: boolean;
  }>();
  const report = runGateSimulation({
    runs: o.runs,
    seed: o.seed,
    lookSize: o.lookSize,
    maxSamples: o.maxSamples,
    baselineSize: o.baselineSize,
    ...(o.data ? { dataDir: path.resolve(o.data) } : {}),
  });
  console.log(formatReport(report));
  if (o.json) console.log(JSON.stringify(report));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    main();
  } catch (err) {
    console.error(`gate-sim: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
}
