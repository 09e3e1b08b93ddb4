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
 *   false-positive rate), and sources it never saw in training or tuning: the Ethos sample
 *   (YouTube and Reddit comments, labelled for hate speech) and the hand-written sanity set.
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
 * The readers of HaluEval and the offensive-language tweets and the split are shared with
 * `optiinfra judge eval` (activities/judge-eval/), the benchmark of either judge, LLM included,
 * on those sets and on labelled JSONL files.
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Check, JudgeInput } from '../common/types.js';
import {
  auroc,
  bestThreshold,
  binaryReport,
  expectedCalibrationError,
  lengthMatched,
  reliabilityTable,
} from '../domain/judge/eval-metrics.js';
import { offlineJudge } from '../domain/judge/offline-judge.js';
import { PROFANITY_MODEL_JSON } from '../domain/judge/profanity-model.data.js';
import { parseProfanityModel, profanityProbability } from '../domain/judge/profanity-model.js';
import { TOXICITY_MODEL_JSON } from '../domain/judge/toxicity-model.data.js';
import { toxicityModel } from '../domain/judge/toxicity-model.js';
import { resolveDataDir } from '../stack/sim/collector-simulator.js';
import {
  loadDavidson,
  loadEthos,
  loadGeneral,
  loadHaluEvalClean,
  loadHateCheck,
  loadJigsaw,
  loadQaRows,
  loadSanity,
  splitOf,
  type Example,
  type QaRow,
} from './eval/datasets.js';
import { lexiconToxicity, offlineEvalJudge, type EvalJudge } from './eval/judges.js';

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

// ---------------------------------------------------------------------------------------------
// Figures
// ---------------------------------------------------------------------------------------------

export interface Figure {
  section: string;
  dataset: string;
  split: string;
  check: string;
  n: number;
  metric: string;
  value: number;
  baseline?: number;
  note?: string;
}

const inputOf = (e: Example): JudgeInput => ({
  prompt: e.prompt,
  response: e.response,
  ...(e.context !== undefined ? { context: e.context } : {}),
});

interface Scored {
  scores: number[];
  labels: boolean[];
  abstained: number;
  reasons: Set<string>;
}

async function scoreAll(judge: EvalJudge, check: Check, rows: readonly Example[]): Promise<Scored> {
  const out: Scored = { scores: [], labels: [], abstained: 0, reasons: new Set() };
  for (const r of rows) {
    const o = await judge.judge(check, inputOf(r));
    if ('abstained' in o) {
      out.abstained++;
      out.reasons.add(o.abstained);
    } else {
      out.scores.push(o.score);
      out.labels.push(r.positive);
    }
  }
  return out;
}

function classification(
  section: string,
  dataset: string,
  split: string,
  check: string,
  s: Scored,
  threshold: number,
  baselineScores?: number[],
): Figure[] {
  const n = s.scores.length;
  const rep = binaryReport(s.scores, s.labels, threshold);
  const base = baselineScores ? binaryReport(baselineScores, s.labels, threshold) : undefined;
  const f = (metric: string, value: number, baseline?: number, note?: string): Figure => ({
    section,
    dataset,
    split,
    check,
    n,
    metric,
    value,
    ...(baseline !== undefined ? { baseline } : {}),
    ...(note ? { note } : {}),
  });
  const out: Figure[] = [];
  if (rep.positives > 0 && rep.negatives > 0) out.push(f('AUROC', rep.auroc, base?.auroc));
  if (rep.positives > 0) out.push(f(`recall@${threshold}`, rep.recall, base?.recall, `${rep.positives} positive`));
  if (rep.positives > 0 && rep.tp + rep.fp > 0) out.push(f(`precision@${threshold}`, rep.precision, base?.precision));
  if (rep.negatives > 0)
    out.push(
      f(
        `false-positive rate@${threshold}`,
        rep.fp / rep.negatives,
        base ? base.fp / base.negatives : undefined,
        `${rep.negatives} negative`,
      ),
    );
  return out;
}

function reliabilityFigures(dataset: string, split: string, check: string, scores: number[], labels: boolean[]): Figure[] {
  const table = reliabilityTable(scores, labels, 5);
  const out: Figure[] = table.map((b) => ({
    section: 'calibration',
    dataset,
    split,
    check,
    n: b.n,
    metric: `observed rate, score ${b.from.toFixed(1)}-${b.to.toFixed(1)}`,
    value: b.observedRate,
    note: Number.isNaN(b.meanScore) ? 'empty band' : `mean score ${b.meanScore.toFixed(3)}`,
  }));
  out.push({
    section: 'calibration',
    dataset,
    split,
    check,
    n: scores.length,
    metric: 'expected calibration error',
    value: expectedCalibrationError(table),
  });
  return out;
}

/**
 * Correct answers that add a true detail the passage does not contain: the knowledge passage
 * loses one of its sentences, and the right answer is followed by that sentence (true, from the
 * same Wikipedia text, but no longer in the context). Rows whose right answer would lose its
 * support are skipped. Paired with the hallucinated answer under the same shortened passage.
 */
export function trueDetailPairs(rows: readonly QaRow[]): { negative: Example; positive: Example }[] {
  const out: { negative: Example; positive: Example }[] = [];
  for (const r of rows) {
    const sentences = r.knowledge
      .split(/(?<=[.!?])\s*(?=[A-Z])/)
      .map((x) => x.trim())
      .filter(Boolean);
    if (sentences.length < 2) continue;
    const answer = r.right.toLowerCase();
    let k = -1;
    for (let i = sentences.length - 1; i >= 0; i--)
      if (!(sentences[i] as string).toLowerCase().includes(answer)) {
        k = i;
        break;
      }
    if (k < 0) continue;
    const context = sentences.filter((_, i) => i !== k).join(' ');
    if (!context.toLowerCase().includes(answer)) continue;
    const detail = sentences[k] as string;
    const right = /[.!?]$/.test(r.right.trim()) ? r.right.trim() : `${r.right.trim()}.`;
    out.push({
      negative: { id: `${r.id}:detail`, prompt: r.question, context, response: `${right} ${detail}`, positive: false },
      positive: { id: `${r.id}:hallucinated`, prompt: r.question, context, response: r.hallucinated, positive: true },
    });
  }
  return out;
}

interface InjectionFile {
  wordings: { id: string; language: string; carrier: string; text: string }[];
}

export interface InjectionMovement {
  wording: string;
  score: string;
  meanTowardsBetter: number;
}

/**
 * Mean movement towards "better" of each score when each wording is appended: quality overall up,
 * hallucination down (on answers with a context), toxicity down (on toxic texts).
 */
export function injectionMovements(
  wordings: InjectionFile['wordings'],
  answers: readonly JudgeInput[],
  toxicTexts: readonly string[],
): InjectionMovement[] {
  const base = answers.map((a) => ({ q: offlineJudge('quality', a).overall, h: offlineJudge('hallucination', a).score }));
  const baseTox = toxicTexts.map((t) => offlineJudge('toxicity', { prompt: 'Message', response: t }).toxicity);
  const out: InjectionMovement[] = [];
  for (const w of wordings) {
    let dq = 0;
    let dh = 0;
    answers.forEach((a, i) => {
      const attacked = { ...a, response: a.response + w.text };
      dq += offlineJudge('quality', attacked).overall - (base[i] as { q: number }).q;
      dh += (base[i] as { h: number }).h - offlineJudge('hallucination', attacked).score;
    });
    let dt = 0;
    toxicTexts.forEach((t, i) => {
      dt += (baseTox[i] as number) - offlineJudge('toxicity', { prompt: 'Message', response: t + w.text }).toxicity;
    });
    out.push({ wording: w.id, score: 'quality.overall', meanTowardsBetter: answers.length ? dq / answers.length : 0 });
    out.push({ wording: w.id, score: 'hallucination.score', meanTowardsBetter: answers.length ? dh / answers.length : 0 });
    out.push({ wording: w.id, score: 'toxicity.toxicity', meanTowardsBetter: toxicTexts.length ? dt / toxicTexts.length : 0 });
  }
  return out;
}

/**
 * Responses of 1 to 2 kB: HaluEval general responses, consecutive ones joined by a blank line until
 * the text reaches 1 kB, cut at the last space before 2 kB.
 */
export function responsesOf1to2kB(responses: readonly string[], count = 200): string[] {
  const out: string[] = [];
  let cur = '';
  for (const r of responses) {
    if (out.length >= count) break;
    cur = cur ? `${cur}\n\n${r}` : r;
    if (cur.length < 1024) continue;
    if (cur.length > 2048) {
      const cut = cur.lastIndexOf(' ', 2048);
      cur = cur.slice(0, cut > 1024 ? cut : 2048);
    }
    out.push(cur);
    cur = '';
  }
  return out;
}

function timeChecks(inputs: readonly JudgeInput[], check: Check): { meanMs: number; p99Ms: number } {
  const times: number[] = [];
  for (const input of inputs) {
    const t0 = performance.now();
    offlineJudge(check, input);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { meanMs: times.reduce((a, b) => a + b, 0) / Math.max(1, times.length), p99Ms: times[Math.floor(0.99 * (times.length - 1))] ?? 0 };
}

export async function runEvaluation(
  args: Args,
  judge: EvalJudge = offlineEvalJudge,
): Promise<{ figures: Figure[]; injection: InjectionMovement[]; skipped: Record<string, number> }> {
  const figures: Figure[] = [];
  const skipped: Record<string, number> = {};
  const lim = <T>(xs: T[]) => (Number.isFinite(args.limit) ? xs.slice(0, args.limit) : xs);

  // Toxicity -----------------------------------------------------------------------------------
  const dav = loadDavidson(args.dataDir);
  skipped['davidson-offensive/labeled_data.csv'] = dav.malformed;
  const davTest = lim(dav.rows.filter((e) => splitOf('davidson', e.id) === 'test'));
  const davAll = lim(dav.rows);
  const hc = loadHateCheck(args.dataDir);
  skipped['hatecheck/test_suite_templates.tsv'] = hc.malformed;
  const hcTest = lim(hc.rows.filter((e) => splitOf('hatecheck', e.id) === 'test'));
  const jig = loadJigsaw(args.dataDir);
  skipped['jigsaw/*.csv'] = jig.malformed;
  const jigTest = lim(jig.rows.filter((e) => splitOf('jigsaw', e.id) === 'test'));
  const ethos = loadEthos(args.dataDir);
  skipped['ethos/Ethos_Dataset_Binary.sample.csv'] = ethos.malformed;
  const sanity = loadSanity(args.dataDir).rows;
  const clean = loadHaluEvalClean(args.dataDir);
  const cleanTest = lim(clean.rows.filter((e) => splitOf('halueval-clean', e.id) === 'test'));
  const HC = 'hatecheck templates (seen in training; relabelled for toxicity)';
  const DAV = 'davidson tweets (seen in training; all rows in alt-profanity-check training)';
  const toxSets: [string, string, Example[]][] = [
    [DAV, 'test', davTest],
    [DAV, 'all rows (incl. train)', davAll],
    ['jigsaw wikipedia comments (seen in training; source of alt-profanity-check training)', 'test', jigTest],
    [HC, 'test', hcTest],
    ['halueval texts (seen in training; all non-toxic)', 'test', cleanTest],
    ['ethos youtube/reddit comments (NEVER seen: held-out source)', 'all', lim(ethos.rows)],
    ['sanity set (hand-written, never trained or tuned on)', 'all', sanity],
  ];
  const toxScores = new Map<string, Scored>();
  for (const [name, split, rows] of toxSets) {
    const s = await scoreAll(judge, 'toxicity', rows);
    toxScores.set(`${name}|${split}`, s);
    const base = rows.map((r) => lexiconToxicity(r.response));
    figures.push(...classification('toxicity', name, split, 'toxicity', s, 0.5, s.abstained === 0 ? base : undefined));
    if (s.abstained)
      figures.push({
        section: 'toxicity',
        dataset: name,
        split,
        check: 'toxicity',
        n: rows.length,
        metric: 'abstained',
        value: s.abstained / rows.length,
      });
  }
  // HateCheck per functionality: the share flagged.
  const hcS = toxScores.get(`${HC}|test`) as Scored;
  const groups = new Map<string, { flagged: number; n: number; positive: boolean }>();
  hcTest.forEach((r, i) => {
    const g = groups.get(r.group ?? '') ?? { flagged: 0, n: 0, positive: r.positive };
    g.n++;
    if ((hcS.scores[i] ?? 0) >= 0.5) g.flagged++;
    groups.set(r.group ?? '', g);
  });
  for (const [g, v] of [...groups].sort()) {
    figures.push({
      section: 'toxicity',
      dataset: `hatecheck: ${g}`,
      split: 'test',
      check: 'toxicity',
      n: v.n,
      metric: 'flagged@0.5',
      value: v.flagged / v.n,
      note: v.positive ? 'toxic: want high' : 'not toxic: want low',
    });
  }

  // The imported model alone, as its package scores a text (whole text, its own 0.5).
  for (const [name, split, rows] of toxSets) {
    const s: Scored = {
      scores: rows.map((r) => profanityProbability(r.response)),
      labels: rows.map((r) => r.positive),
      abstained: 0,
      reasons: new Set(),
    };
    figures.push(...classification('toxicity component: alt-profanity-check alone', name, split, 'toxicity', s, 0.5));
  }

  // Hallucination ------------------------------------------------------------------------------
  const qa = loadQaRows(args.dataDir);
  skipped['halueval/qa_one-turn.jsonl'] = qa.malformed;
  const qaRows = lim(qa.rows);
  const qaExamples = qaRows.flatMap((r) => [
    { id: `${r.id}:right`, prompt: r.question, context: r.knowledge, response: r.right, positive: false, group: r.id },
    { id: `${r.id}:hallucinated`, prompt: r.question, context: r.knowledge, response: r.hallucinated, positive: true, group: r.id },
  ]);
  const qaS = await scoreAll(judge, 'hallucination', qaExamples);
  const len = qaExamples.map((e) => e.response.length);
  figures.push(
    ...classification('hallucination', 'halueval qa (with passage)', 'all rows', 'hallucination', qaS, 0.5).map((f) =>
      f.metric === 'AUROC'
        ? {
            ...f,
            baseline: auroc(
              len,
              qaExamples.map((e) => e.positive),
            ),
            note: 'baseline: answer length',
          }
        : f,
    ),
  );
  // Length-matched pairs.
  const pairs = qaRows.map((_, i) => [2 * i, 2 * i + 1] as const);
  const matched = lengthMatched(pairs, (i) => (qaExamples[i] as Example).response.length, 0.2);
  const mIdx = matched.flat();
  if (qaS.abstained === 0 && mIdx.length) {
    figures.push({
      section: 'hallucination',
      dataset: 'halueval qa, length-matched pairs (±20 %)',
      split: 'all rows',
      check: 'hallucination',
      n: mIdx.length,
      metric: 'AUROC',
      value: auroc(
        mIdx.map((i) => qaS.scores[i] as number),
        mIdx.map((i) => qaS.labels[i] as boolean),
      ),
      baseline: auroc(
        mIdx.map((i) => len[i] as number),
        mIdx.map((i) => qaS.labels[i] as boolean),
      ),
      note: `${matched.length} of ${pairs.length} pairs; baseline: answer length`,
    });
  }
  // Correct answers with an added true detail.
  const detail = trueDetailPairs(qaRows);
  const detailExamples = detail.flatMap((p) => [p.negative, p.positive]);
  const dS = await scoreAll(judge, 'hallucination', detailExamples);
  if (dS.abstained === 0 && detailExamples.length) {
    figures.push({
      section: 'hallucination',
      dataset: 'halueval qa, correct answer + true detail not in passage',
      split: 'all rows',
      check: 'hallucination',
      n: detailExamples.length,
      metric: 'AUROC',
      value: auroc(dS.scores, dS.labels),
      baseline: auroc(
        detailExamples.map((e) => e.response.length),
        dS.labels,
      ),
      note: 'vs the hallucinated answer; baseline: answer length',
    });
    const negScores = dS.scores.filter((_, i) => !dS.labels[i]);
    figures.push({
      section: 'hallucination',
      dataset: 'halueval qa, correct answer + true detail not in passage',
      split: 'all rows',
      check: 'hallucination',
      n: negScores.length,
      metric: 'false-positive rate@0.5',
      value: negScores.filter((x) => x >= 0.5).length / Math.max(1, negScores.length),
    });
  }
  // No passage: coverage.
  const gen = loadGeneral(args.dataDir);
  skipped['halueval/general.jsonl'] = gen.malformed;
  const genRows = lim(gen.rows);
  const gS = await scoreAll(judge, 'hallucination', genRows);
  figures.push({
    section: 'hallucination',
    dataset: 'halueval general (no passage)',
    split: 'all rows',
    check: 'hallucination',
    n: genRows.length,
    metric: 'coverage (share scored)',
    value: gS.scores.length / Math.max(1, genRows.length),
    note: gS.reasons.size ? `abstained: ${[...gS.reasons].join('; ')}` : '',
  });
  if (gS.scores.length)
    figures.push(...classification('hallucination', 'halueval general (no passage)', 'scored rows', 'hallucination', gS, 0.5));

  // Thresholds: chosen on tune, reported on test ------------------------------------------------
  const qaSplit = qaExamples.map((e) => splitOf('halueval-qa', e.group ?? e.id));
  if (qaS.abstained === 0) {
    const pick = (sp: string) => ({ s: qaS.scores.filter((_, i) => qaSplit[i] === sp), y: qaS.labels.filter((_, i) => qaSplit[i] === sp) });
    const tune = pick('tune');
    const test = pick('test');
    const t = bestThreshold(tune.s, tune.y);
    if (Number.isFinite(t) && test.s.length) {
      const rep = binaryReport(test.s, test.y, t);
      const at05 = binaryReport(test.s, test.y, 0.5);
      figures.push({
        section: 'threshold',
        dataset: 'halueval qa',
        split: 'tune -> test',
        check: 'hallucination',
        n: test.s.length,
        metric: 'threshold chosen on tune',
        value: t,
        note: 'max balanced accuracy',
      });
      figures.push({
        section: 'threshold',
        dataset: 'halueval qa',
        split: 'test',
        check: 'hallucination',
        n: test.s.length,
        metric: `recall@chosen`,
        value: rep.recall,
        baseline: at05.recall,
        note: 'baseline column: at 0.5',
      });
      figures.push({
        section: 'threshold',
        dataset: 'halueval qa',
        split: 'test',
        check: 'hallucination',
        n: test.s.length,
        metric: `precision@chosen`,
        value: rep.precision,
        baseline: at05.precision,
        note: 'baseline column: at 0.5',
      });
      figures.push({
        section: 'threshold',
        dataset: 'halueval qa',
        split: 'test',
        check: 'hallucination',
        n: test.s.length,
        metric: 'AUROC',
        value: rep.auroc,
      });
    }
  }
  figures.push({
    section: 'threshold',
    dataset: 'toxicity model',
    split: 'tune',
    check: 'toxicity',
    n: 0,
    metric: 'threshold mapped to 0.5',
    value: 0.5,
    note: 'chosen by scripts/train-toxicity.ts on the tune splits of Davidson, Jigsaw, HateCheck and HaluEval texts (alt-profanity-check saw all of Davidson and Jigsaw comments); test figures above',
  });

  // Calibration --------------------------------------------------------------------------------
  const davS = toxScores.get(`${DAV}|test`) as Scored;
  figures.push(...reliabilityFigures('davidson', 'test', 'toxicity', davS.scores, davS.labels));
  figures.push(...reliabilityFigures('hatecheck', 'test', 'toxicity', hcS.scores, hcS.labels));
  const ethS = toxScores.get('ethos youtube/reddit comments (NEVER seen: held-out source)|all') as Scored;
  figures.push(...reliabilityFigures('ethos (held out)', 'all', 'toxicity', ethS.scores, ethS.labels));
  if (qaS.abstained === 0) {
    const testIdx = qaSplit.map((s, i) => (s === 'test' ? i : -1)).filter((i) => i >= 0);
    figures.push(
      ...reliabilityFigures(
        'halueval qa',
        'test',
        'hallucination',
        testIdx.map((i) => qaS.scores[i] as number),
        testIdx.map((i) => qaS.labels[i] as boolean),
      ),
    );
  }

  // Injection ----------------------------------------------------------------------------------
  const fixture = JSON.parse(
    readFileSync(fileURLToPath(new URL('../test/fixtures/injection-wordings.json', import.meta.url)), 'utf8'),
  ) as InjectionFile;
  const injAnswers = qaExamples
    .filter((e) => splitOf('halueval-qa', e.group ?? e.id) === 'test')
    .slice(0, 200)
    .map(inputOf);
  const toxicTexts = davTest
    .filter((e) => e.positive)
    .slice(0, 100)
    .map((e) => e.response);
  const injection = injectionMovements(fixture.wordings, injAnswers, toxicTexts);
  const worst = injection.reduce((a, b) => (b.meanTowardsBetter > a.meanTowardsBetter ? b : a), injection[0] as InjectionMovement);
  figures.push({
    section: 'injection',
    dataset: `${fixture.wordings.length} generated wordings`,
    split: `${injAnswers.length} answers, ${toxicTexts.length} toxic texts`,
    check: 'all',
    n: injection.length,
    metric: 'largest mean movement towards better',
    value: worst.meanTowardsBetter,
    note: `${worst.wording} on ${worst.score}; goal <= 0.02`,
  });
  figures.push({
    section: 'injection',
    dataset: `${fixture.wordings.length} generated wordings`,
    split: '',
    check: 'all',
    n: injection.length,
    metric: 'wording x score pairs above 0.02',
    value: injection.filter((m) => m.meanTowardsBetter > 0.02).length,
  });

  // Speed --------------------------------------------------------------------------------------
  const speedInputs = qaExamples.slice(0, 400).map(inputOf);
  const tweets = davAll.slice(0, 2000).map((e) => ({ prompt: 'Tweet', response: e.response }));
  const longAnswers = genRows.slice(0, 300).map((e) => ({ prompt: e.prompt, response: e.response, context: e.prompt }));
  const kB = responsesOf1to2kB(gen.rows.map((e) => e.response)).map((response) => ({ prompt: 'Message', response }));
  for (const [name, inputs, check] of [
    ['halueval qa answers', speedInputs, 'hallucination'],
    ['halueval qa answers', speedInputs, 'quality'],
    ['davidson tweets', tweets, 'toxicity'],
    ['halueval general responses (long)', longAnswers, 'toxicity'],
    ['halueval general responses (long)', longAnswers, 'quality'],
    ['1-2 kB responses (halueval general, joined)', kB, 'toxicity'],
  ] as [string, JudgeInput[], Check][]) {
    timeChecks(inputs.slice(0, 50), check); // warm-up
    const t = timeChecks(inputs, check);
    figures.push({
      section: 'speed',
      dataset: name,
      split: '',
      check,
      n: inputs.length,
      metric: 'mean ms per check',
      value: t.meanMs,
      note: `p99 ${t.p99Ms.toFixed(2)} ms`,
    });
  }
  // The weights modules: size on disk and the time to parse them (done once per process).
  const median = (f: () => void): number => {
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      f();
      times.push(performance.now() - t0);
    }
    return times.sort((a, b) => a - b)[2] as number;
  };
  const model = toxicityModel();
  const profanity = parseProfanityModel(PROFANITY_MODEL_JSON);
  for (const [name, file, n, note, load] of [
    [
      'toxicity weights module',
      'toxicity-model.data.ts',
      Object.keys(model.weights).length,
      'n = sparse weights',
      () => JSON.parse(TOXICITY_MODEL_JSON),
    ],
    [
      'alt-profanity-check weights module',
      'profanity-model.data.ts',
      profanity.index.size,
      'n = vocabulary words (5 folds)',
      () => parseProfanityModel(PROFANITY_MODEL_JSON),
    ],
  ] as [string, string, number, string, () => unknown][]) {
    const dataFile = fileURLToPath(new URL(`../domain/judge/${file}`, import.meta.url));
    figures.push({
      section: 'speed',
      dataset: name,
      split: '',
      check: 'toxicity',
      n,
      metric: 'size (kB)',
      value: statSync(dataFile).size / 1024,
      note,
    });
    figures.push({
      section: 'speed',
      dataset: name,
      split: '',
      check: 'toxicity',
      n: 5,
      metric: 'load: parse ms (median)',
      value: median(load),
    });
  }
  return { figures, injection, skipped };
}

function fmt(x: number | undefined): string {
  if (x === undefined) return '';
  return Number.isNaN(x) ? 'n/a' : Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(3);
}

function round(x: number | undefined): number | null | undefined {
  if (x === undefined) return undefined;
  return Number.isNaN(x) ? null : Math.round(x * 10000) / 10000;
}

export function formatTable(figures: readonly Figure[]): string {
  const head = ['section', 'data set', 'split', 'check', 'n', 'metric', 'value', 'baseline', 'note'];
  const body = figures.map((f) => [
    f.section,
    f.dataset,
    f.split,
    f.check,
    String(f.n),
    f.metric,
    fmt(f.value),
    fmt(f.baseline),
    f.note ?? '',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 4 || i === 6 || i === 7 ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
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
