/**
 * Measures a judge (by default the offline judge) against human labels, and its robustness.
 *
 *   npm run judge:eval [-- --data DIR] [--limit N] [--json]
 *
 * DIR defaults to $OPTIINFRA_DATA_DIR, else the repository's data/ folder. --limit N uses at most
 * N records of each data set (a quick run). --json prints only the JSON line.
 *
 * Prints one table (long format: section, data set, split, check, n, metric, value, baseline,
 * note) and, as the last line, one JSON object with every figure. Sections:
 * - toxicity: the test splits of the sources the model was trained on (Davidson tweets, the Jigsaw
 *   Wikipedia-comment sample, HateCheck templates, HaluEval texts: all non-toxic, so the
 *   false-positive rate), OLID's test file (tweets labelled offensive or not; the model was trained
 *   on OLID's train file and tuned on its validation file), and sources it never saw in training
 *   or tuning: the Ethos sample (YouTube and Reddit comments, labelled for hate speech) and the
 *   hand-written sanity set.
 *   AUROC, recall, precision and false-positive rate at the 0.5 flag; baseline = the lexicon alone
 *   (offline-v2). Part of the model is alt-profanity-check, a model trained by others on all of
 *   Davidson et al. and on Jigsaw comments: on those two sources no split is out-of-sample for it.
 * - toxicity component: alt-profanity-check alone (its own predict_proba on the whole text, flag
 *   at its 0.5) on the same sets.
 * - hallucination: HaluEval QA (right vs hallucinated answers, with the knowledge passage):
 *   AUROC on all pairs, on length-matched pairs (lengths within ±20 %) and on correct answers that
 *   add a true detail the passage does not contain; baseline = answer length. HaluEval general
 *   (no passage): coverage (the judge abstains).
 * - threshold: flag thresholds chosen on the tune split, precision/recall on the test split.
 * - calibration: reliability tables (predicted score band vs observed rate) per check.
 * - injection: generated wordings (test/fixtures/injection-wordings.json) appended to correct and
 *   hallucinated answers and to toxic texts: the largest mean movement of any score towards better.
 * - speed: mean and p99 time of one check (tweets, HaluEval answers and responses, 1-2 kB responses);
 *   the weights modules of the toxicity model and of alt-profanity-check (size, load time).
 *
 * Splits are those of scripts/eval/datasets.ts; the toxicity model was trained on the train splits
 * and its threshold chosen on the tune splits only.
 *
 * The sections are in scripts/eval/ (toxicity-figures.ts, hallucination-figures.ts,
 * threshold-calibration-figures.ts, injection-figures.ts, speed-figures.ts); figures.ts holds what
 * they share and the table.
 *
 * The readers of HaluEval and the offensive-language tweets and the split are shared with
 * `optiinfra judge eval` (activities/judge-eval/), the benchmark of either judge, LLM included,
 * on those sets and on labelled JSONL files.
 */
import path from 'node:path';
import { resolveDataDir } from '../stack/sim/collector-simulator.js';
import { formatTable, type EvalContext, type Figure } from './eval/figures.js';
import { hallucinationSection } from './eval/hallucination-figures.js';
import { injectionSection, type InjectionMovement } from './eval/injection-figures.js';
import { offlineEvalJudge, type EvalJudge } from './eval/judges.js';
import { speedSection } from './eval/speed-figures.js';
import { calibrationFigures, thresholdFigures } from './eval/threshold-calibration-figures.js';
import { toxicitySection } from './eval/toxicity-figures.js';

interface Args {
  dataDir: string;
  limit: number;
  json: boolean;
}

function parseArgs(argv: string[]): Args {
  let dataDir = resolveDataDir().dir;
  let limit = Number.POSITIVE_INFINITY;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--data') dataDir = path.resolve(next());
    else if (a?.startsWith('--data=')) dataDir = path.resolve(a.slice('--data='.length));
    else if (a === '--json') json = true;
    else if (a === '--limit' || a?.startsWith('--limit=')) {
      const v = a === '--limit' ? next() : a.slice('--limit='.length);
      limit = Number(v);
      if (!Number.isInteger(limit) || limit <= 0) throw new Error(`--limit must be a positive integer, got '${v}'`);
    } else if (a === '--help' || a === '-h') {
      console.log('usage: npx tsx scripts/judge-eval.ts [--data DIR] [--limit N] [--json]');
      process.exit(0);
    } else throw new Error(`unknown argument '${a}' (usage: [--data DIR] [--limit N] [--json])`);
  }
  return { dataDir, limit, json };
}

export async function runEvaluation(
  args: Args,
  judge: EvalJudge = offlineEvalJudge,
): Promise<{ figures: Figure[]; injection: InjectionMovement[]; skipped: Record<string, number> }> {
  const figures: Figure[] = [];
  const skipped: Record<string, number> = {};
  const lim = <T>(xs: T[]) => (Number.isFinite(args.limit) ? xs.slice(0, args.limit) : xs);
  const ctx: EvalContext = { dataDir: args.dataDir, lim, judge, skipped };

  const tox = await toxicitySection(ctx);
  figures.push(...tox.figures);
  const hal = await hallucinationSection(ctx);
  figures.push(...hal.figures);
  figures.push(...thresholdFigures(hal));
  figures.push(...calibrationFigures(tox, hal));
  const { figures: injectionFigures, injection } = await injectionSection(hal.qaExamples, tox.davTest);
  figures.push(...injectionFigures);
  figures.push(...(await speedSection(hal.qaExamples, tox.davAll, hal.genRows, hal.genAll)));
  return { figures, injection, skipped };
}

function round(x: number | undefined): number | null | undefined {
  if (x === undefined) return undefined;
  return Number.isNaN(x) ? null : Math.round(x * 10000) / 10000;
}

async function main(): Promise<void> {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`judge-eval: ${(e as Error).message}`);
    process.exit(2);
  }
  const t0 = performance.now();
  let result: Awaited<ReturnType<typeof runEvaluation>>;
  try {
    result = await runEvaluation(args);
  } catch (e) {
    console.error(`judge-eval: cannot evaluate with data under ${args.dataDir}: ${(e as Error).message}`);
    process.exit(1);
  }
  for (const [name, n] of Object.entries(result.skipped)) if (n > 0) console.error(`${name}: skipped ${n} malformed records`);
  const seconds = (performance.now() - t0) / 1000;
  if (!args.json) {
    console.log(
      `Judge ${offlineEvalJudge.name} vs human labels and attacks (data: ${args.dataDir}${Number.isFinite(args.limit) ? `, limit ${args.limit}` : ''})`,
    );
    console.log('Flag threshold 0.5 unless stated; baseline column: the lexicon alone (toxicity) or answer length (hallucination AUROC).');
    console.log('');
    console.log(formatTable(result.figures));
    console.log('');
    console.log(`(${seconds.toFixed(1)} s)`);
  }
  console.log(
    JSON.stringify({
      judge: offlineEvalJudge.name,
      figures: result.figures.map((f) => ({
        ...f,
        value: round(f.value),
        ...(f.baseline !== undefined ? { baseline: round(f.baseline) } : {}),
      })),
      injection: result.injection.map((m) => ({ ...m, meanTowardsBetter: round(m.meanTowardsBetter) })),
      skipped_malformed: result.skipped,
      seconds: Math.round(seconds * 10) / 10,
    }),
  );
}

if (import.meta.url === `file://${process.argv[1]}`) void main();
