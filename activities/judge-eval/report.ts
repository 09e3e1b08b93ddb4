/**
 * The benchmark's figures from the judged items (pure): per data set and check, the confusion
 * matrix at the product's flag, precision, recall, F1, accuracy and AUROC; a pooled row per check
 * measured on more than one set; the text table and the JSON the command prints.
 *
 * The positive class is what the check flags: a hallucinated answer, a toxic text, a poor answer.
 * Hallucination and toxicity flag at score >= 0.5; quality flags at overall < 0.5 (as the gate
 * counts them), and its AUROC ranks by 1 - overall. Abstained and failed checks are counted and
 * left out of the figures; figures that do not exist (no positives, nothing flagged) are NaN in
 * the report, "n/a" in the table and null in JSON.
 *
 * A run that did not judge everything it was asked to (failed judgements, an interrupt, a stop
 * for the endpoint's behaviour) is incomplete: the report says so first, with how many were
 * judged and why the rest were not, and a set and check with fewer than half of its measurable
 * items (labelled, not abstained) scored is named as such (`lowCoverage`). A check whose every
 * scored item got the same score is named in a warning: such figures measure nothing.
 */
import { CHECKS, primaryScore, type Check } from '../../common/types.js';
import { binaryReportOf, type BinaryReport, type Confusion } from '../../domain/judge/eval-metrics.js';
import type { EvalSet } from './datasets.js';
import { estimateCostUsd, type Prices } from './pricing.js';
import type { ItemResult, RunResult, UsageTotals } from './runner.js';

/** The flag of every check, as the gate and the scores summary count it. */
export const FLAG_THRESHOLD = 0.5;

/** The share of a set and check's measurable items below which its figures are said to rest on too few. */
export const MIN_COVERAGE = 0.5;

/** Scored items with one and the same score from which a check's figures are called constant. */
export const CONSTANT_AFTER = 10;

export interface CheckFigures {
  /** The data set, or 'all' for a check pooled over the sets. */
  set: string;
  check: Check;
  /** Items labelled for the check. */
  labelled: number;
  scored: number;
  abstained: number;
  failed: number;
  /** Not judged (an interrupted or stopped run). */
  missing: number;
  /** Over the scored items; undefined when none was scored. */
  report?: BinaryReport;
  /** Fewer than MIN_COVERAGE of the measurable items were scored (failed or not judged). */
  lowCoverage: boolean;
  /** The one score every scored item got, when there are CONSTANT_AFTER or more. */
  constantScore?: number;
}

/** The score that ranks the positive class first, and whether the check flags the result. */
export function positiveScore(check: Check, score: number): { rank: number; flagged: boolean } {
  return check === 'quality' ? { rank: 1 - score, flagged: score < FLAG_THRESHOLD } : { rank: score, flagged: score >= FLAG_THRESHOLD };
}

function figuresOf(set: string, check: Check, results: readonly ItemResult[]): CheckFigures {
  const f: CheckFigures = { set, check, labelled: 0, scored: 0, abstained: 0, failed: 0, missing: 0, lowCoverage: false };
  const scores = new Set<number>();
  const ranks: number[] = [];
  const flags: boolean[] = [];
  const labels: boolean[] = [];
  for (const r of results) {
    const label = r.item.labels[check];
    if (label === undefined) continue;
    f.labelled++;
    const o = r.outcomes[check];
    if (!o) f.missing++;
    else if (o.status === 'abstained') f.abstained++;
    else if (o.status === 'failed' || !o.result) f.failed++;
    else {
      f.scored++;
      const score = primaryScore(check, o.result);
      scores.add(score);
      const p = positiveScore(check, score);
      ranks.push(p.rank);
      flags.push(p.flagged);
      labels.push(label);
    }
  }
  const measurable = f.labelled - f.abstained;
  f.lowCoverage = f.scored < measurable * MIN_COVERAGE;
  if (f.scored) f.report = binaryReportOf(ranks, flags, labels, FLAG_THRESHOLD);
  if (f.scored >= CONSTANT_AFTER && scores.size === 1) f.constantScore = [...scores][0];
  return f;
}

/** Figures per set and check (in the sets' order), then one pooled row per check measured on several sets. */
export function summarize(sets: readonly EvalSet[], results: readonly ItemResult[]): CheckFigures[] {
  const out: CheckFigures[] = [];
  for (const s of sets) {
    const mine = results.filter((r) => r.item.set === s.name);
    for (const check of s.checks) out.push(figuresOf(s.name, check, mine));
  }
  for (const check of CHECKS) {
    if (sets.filter((s) => s.checks.includes(check)).length > 1) out.push(figuresOf('all', check, results));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

export interface JudgeDescription {
  kind: 'offline' | 'llm';
  /** 'offline-v5' or 'groq:<model>'. */
  name: string;
  model?: string;
  endpoint?: string;
  mode?: 'combined' | 'separate';
  promptVersion: string;
  reasoningEffort?: string;
}

export interface EvalOutput {
  judge: JudgeDescription;
  threshold: number;
  sets: Array<{ name: string; source: string; items: number; checks: Check[]; malformed: number; malformedExamples: string[] }>;
  results: Array<
    Pick<CheckFigures, 'set' | 'check' | 'labelled' | 'scored' | 'abstained' | 'failed' | 'missing' | 'lowCoverage'> & {
      positives: number | null;
      negatives: number | null;
      confusion: Confusion | null;
      precision: number | null;
      recall: number | null;
      f1: number | null;
      accuracy: number | null;
      auroc: number | null;
    }
  >;
  judgements: RunResult['units'];
  usage: { total: UsageTotals; thisRun: UsageTotals };
  cost: { prices: Prices; totalUsd: number; thisRunUsd: number } | { prices: null; note: string };
  cache: { file: string; entries: number; ignoredLines: number } | null;
  failureReasons: string[];
  interrupted: boolean;
  /** Every judgement asked for was made: the figures are over everything asked. */
  complete: boolean;
  /** Why the run stopped before the end (the endpoint's behaviour), or null. */
  stopped: { type: string; reason: string } | null;
  /** Figures that measure nothing (a constant score). */
  warnings: string[];
  seconds: number;
}

const num = (x: number | undefined): number | null => (x === undefined || Number.isNaN(x) ? null : Math.round(x * 10000) / 10000);

export function buildOutput(o: {
  judge: JudgeDescription;
  sets: readonly EvalSet[];
  run: RunResult;
  prices: Prices | undefined;
  priceNote?: string;
  cache?: { file: string; entries: number; ignoredLines: number };
  seconds: number;
}): EvalOutput {
  const figures = summarize(o.sets, o.run.results);
  const u = o.run.units;
  const warnings = figures
    .filter((f) => f.constantScore !== undefined)
    .map(
      (f) =>
        `${f.set}/${f.check}: all ${f.scored.toLocaleString('en-US')} scored items got the same score (${f.constantScore}): the judge told none apart, so these figures measure nothing; check the endpoint, the model and its replies`,
    );
  return {
    judge: o.judge,
    threshold: FLAG_THRESHOLD,
    sets: o.sets.map((s) => ({
      name: s.name,
      source: s.source,
      items: s.items.length,
      checks: s.checks,
      malformed: s.malformed,
      malformedExamples: s.malformedExamples,
    })),
    results: figures.map((f) => ({
      set: f.set,
      check: f.check,
      labelled: f.labelled,
      scored: f.scored,
      abstained: f.abstained,
      failed: f.failed,
      missing: f.missing,
      lowCoverage: f.lowCoverage,
      positives: f.report ? f.report.positives : null,
      negatives: f.report ? f.report.negatives : null,
      confusion: f.report ? { tp: f.report.tp, fp: f.report.fp, tn: f.report.tn, fn: f.report.fn } : null,
      precision: num(f.report?.precision),
      recall: num(f.report?.recall),
      f1: num(f.report?.f1),
      accuracy: num(f.report?.accuracy),
      auroc: num(f.report?.auroc),
    })),
    judgements: o.run.units,
    usage: o.run.usage,
    cost: o.prices
      ? {
          prices: o.prices,
          totalUsd: Math.round(estimateCostUsd(o.run.usage.total, o.prices) * 1e6) / 1e6,
          thisRunUsd: Math.round(estimateCostUsd(o.run.usage.thisRun, o.prices) * 1e6) / 1e6,
        }
      : { prices: null, note: o.priceNote ?? 'no prices for this model: pass --price-input and --price-output' },
    cache: o.cache ?? null,
    failureReasons: o.run.failureReasons,
    interrupted: o.run.interrupted,
    complete: !o.run.interrupted && !o.run.stopped && u.failed === 0 && u.notRun === 0,
    stopped: o.run.stopped ?? null,
    warnings,
    seconds: Math.round(o.seconds * 10) / 10,
  };
}

const fmt3 = (x: number | null) => (x === null ? 'n/a' : x.toFixed(3));
const int = (n: number) => Math.round(n).toLocaleString('en-US');
/** 1,234 / 12.3K / 4.56M. */
export function compact(n: number): string {
  if (n < 10_000) return int(n);
  if (n < 1_000_000) return `${(n / 1000).toFixed(n < 100_000 ? 1 : 0)}K`;
  return `${(n / 1e6).toFixed(2)}M`;
}
const usd = (x: number) => (x === 0 ? '$0' : x < 1 ? `$${x.toFixed(4)}` : `$${x.toFixed(2)}`);

function table(head: string[], rows: string[][], right: Set<number>): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (right.has(i) ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** The human-readable report. */
export function formatOutput(out: EvalOutput): string {
  const j = out.judge;
  const lines: string[] = [];
  lines.push(
    j.kind === 'offline'
      ? `judge: ${j.name} (the offline judge: deterministic, no LLM calls)`
      : `judge: ${j.name} at ${j.endpoint}, ${j.mode} mode, prompt ${j.promptVersion}, reasoning effort ${j.reasoningEffort}`,
  );
  lines.push(
    `data: ${out.sets.map((s) => `${s.name} (${int(s.items)} items${s.malformed ? `, ${int(s.malformed)} malformed records skipped` : ''})`).join(', ')}`,
  );
  lines.push(
    `flag: hallucination and toxicity at score >= ${out.threshold}, quality at overall < ${out.threshold}; positive = should be flagged (hallucinated, toxic, poor)`,
  );
  const jd = out.judgements;
  if (!out.complete) {
    const made = jd.fromCache + jd.judged - jd.failed;
    lines.push(
      `INCOMPLETE: ${int(made)} of ${int(jd.total)} judgements made (${Math.floor((made / Math.max(1, jd.total)) * 100)} %)${jd.failed ? `, ${int(jd.failed)} failed` : ''}${jd.notRun ? `, ${int(jd.notRun)} not run` : ''}: ` +
        `the figures cover the judged items only; run the same command again to judge the rest (the judgements made are cached)`,
    );
    if (out.stopped) lines.push(`stopped: ${out.stopped.reason}`);
  }
  lines.push('');
  const head = [
    'set',
    'check',
    'labelled',
    'scored',
    'abstained',
    'failed',
    'pos',
    'neg',
    'TP',
    'FP',
    'TN',
    'FN',
    'precision',
    'recall',
    'F1',
    'accuracy',
    'AUROC',
  ];
  const rows = out.results.map((r) => [
    r.set,
    r.check,
    int(r.labelled),
    int(r.scored),
    int(r.abstained),
    int(r.failed + r.missing),
    r.positives === null ? '-' : int(r.positives),
    r.negatives === null ? '-' : int(r.negatives),
    r.confusion ? int(r.confusion.tp) : '-',
    r.confusion ? int(r.confusion.fp) : '-',
    r.confusion ? int(r.confusion.tn) : '-',
    r.confusion ? int(r.confusion.fn) : '-',
    fmt3(r.precision),
    fmt3(r.recall),
    fmt3(r.f1),
    fmt3(r.accuracy),
    fmt3(r.auroc),
  ]);
  lines.push(table(head, rows, new Set(head.map((_, i) => i).filter((i) => i >= 2))));
  for (const r of out.results) {
    if (r.lowCoverage && r.labelled > r.abstained) {
      lines.push(
        `too few judged: ${r.set}/${r.check} has ${int(r.scored)} of ${int(r.labelled - r.abstained)} measurable items scored (under ${MIN_COVERAGE * 100} %): its figures say little about the set`,
      );
    }
  }
  for (const w of out.warnings) lines.push(`warning: ${w}`);
  for (const r of out.results) {
    if (r.auroc !== null || r.positives === null || r.negatives === null) continue;
    const lacking = r.positives === 0 ? 'positives' : r.negatives === 0 ? 'negatives' : undefined;
    if (lacking) lines.push(`AUROC n/a: ${r.set}/${r.check} has no ${lacking} among the scored items (AUROC needs both classes)`);
  }
  if (out.results.some((r) => r.abstained > 0)) {
    lines.push('abstained: the judge cannot measure the check on those items (the offline judge without a knowledge passage)');
  }
  lines.push('');
  const u = out.usage;
  if (j.kind === 'llm') {
    lines.push(
      `judgements: ${int(jd.total)} (${int(jd.fromCache)} from the cache, ${int(jd.judged)} now${jd.failed ? `, ${int(jd.failed)} failed` : ''}${jd.notRun ? `, ${int(jd.notRun)} not run` : ''})`,
    );
    const usage = (x: UsageTotals) =>
      `${int(x.calls)} LLM calls, ${compact(x.promptTokens)} prompt tokens (${compact(x.cachedTokens)} cached) + ${compact(x.completionTokens)} completion (${compact(x.reasoningTokens)} reasoning)`;
    lines.push(`usage, all judgements: ${usage(u.total)}`);
    lines.push(`usage, this run: ${usage(u.thisRun)}`);
    if (out.cost.prices) {
      const p = out.cost.prices;
      lines.push(
        `estimated cost: ${usd(out.cost.totalUsd)} for all judgements, ${usd(out.cost.thisRunUsd)} this run (USD per million tokens: input ${p.inputPerM}, cached input ${p.cachedInputPerM}, output ${p.outputPerM})`,
      );
    } else lines.push(`estimated cost: unknown (${out.cost.note})`);
    if (out.cache) lines.push(`cache: ${out.cache.file} (${int(out.cache.entries)} judgements)`);
    else lines.push('cache: off');
  } else {
    lines.push(`judgements: ${int(jd.total)}; LLM calls 0, tokens 0, cost $0`);
  }
  if (out.failureReasons.length) lines.push(`failed checks, reasons: ${out.failureReasons.map((r) => `"${r}"`).join('; ')}`);
  if (out.interrupted) lines.push('interrupted: the figures cover the judged items only; run the same command again to judge the rest');
  lines.push(`(${out.seconds.toFixed(1)} s)`);
  return lines.join('\n');
}
