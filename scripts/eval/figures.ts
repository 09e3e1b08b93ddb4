/**
 * The figures of the judge evaluation (scripts/judge-eval.ts): their shape, what every section
 * reads (data directory, record limit, judge), scoring a set with a judge, the classification and
 * reliability figures of a set's scores, and the long-format table they are printed as.
 */
import type { Check, JudgeInput } from '../../common/types.js';
import { binaryReport, expectedCalibrationError, reliabilityTable } from '../../domain/judge/eval-metrics.js';
import type { Example } from './datasets.js';
import type { EvalJudge } from './judges.js';

/** What the sections of the evaluation share. */
export interface EvalContext {
  dataDir: string;
  /** At most --limit records of a data set. */
  lim: <T>(xs: T[]) => T[];
  judge: EvalJudge;
  /** Malformed records skipped, per file (the sections add their files). */
  skipped: Record<string, number>;
}

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

export const inputOf = (e: Example): JudgeInput => ({
  prompt: e.prompt,
  response: e.response,
  ...(e.context !== undefined ? { context: e.context } : {}),
});

export interface Scored {
  scores: number[];
  labels: boolean[];
  /** The row each score belongs to (rows the judge abstained on have none). */
  index: number[];
  abstained: number;
  reasons: Set<string>;
}

export async function scoreAll(judge: EvalJudge, check: Check, rows: readonly Example[]): Promise<Scored> {
  const out: Scored = { scores: [], labels: [], index: [], abstained: 0, reasons: new Set() };
  for (const [i, r] of rows.entries()) {
    const o = await judge.judge(check, inputOf(r));
    if ('abstained' in o) {
      out.abstained++;
      out.reasons.add(o.abstained);
    } else {
      out.scores.push(o.score);
      out.labels.push(r.positive);
      out.index.push(i);
    }
  }
  return out;
}

export function classification(
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

export function reliabilityFigures(dataset: string, split: string, check: string, scores: number[], labels: boolean[]): Figure[] {
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

function fmt(x: number | undefined): string {
  if (x === undefined) return '';
  return Number.isNaN(x) ? 'n/a' : Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(3);
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
