/**
 * Output formatting shared by the `optiinfra` commands: JSON, plain-text tables, money and
 * percentages, scores, collection cycles, agent runs and recommendations.
 */
import { formatUsd, percentText } from '../../common/format.js';
import type { RecommendationRow } from '../../activities/storage/postgres/agents.js';
import type { ScoreAggregate } from '../../activities/storage/clickhouse/score-queries.js';
import type { CollectionRunRow } from '../../activities/storage/postgres/collection-runs.js';
import { latenessNote, type CycleResult } from '../../domain/collector/collection.js';
import type { BaselineRecord } from '../../domain/gate/baseline.js';
import type { AgentRunResult } from '../../workflows/agents/run-agent.js';

/** Characters that move the cursor, recolour or clear a terminal, reorder text (bidi) or hide (zero-width). */
const HIDDEN = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/g;

/**
 * JSON output: the characters `terminalText` drops are written as \u escapes (JSON.stringify
 * leaves bidi, zero-width and C1 controls as they are), so the value read back is the same and a
 * terminal shows stored text as it is.
 */
export function printJson(x: unknown) {
  console.log(JSON.stringify(x, null, 2).replace(HIDDEN, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

/**
 * Stored text made safe to print: line breaks become spaces (kept with `newlines`), control,
 * bidi and zero-width characters are dropped, so the text shows as what it is.
 */
export function terminalText(text: string, o: { newlines?: boolean } = {}): string {
  const t = String(text).replace(/\r\n?/g, '\n');
  return (o.newlines ? t : t.replace(/\n/g, ' ')).replace(HIDDEN, '');
}

/** Columns from the first row's keys; numbers with 3 decimals unless integer; null and undefined as '-'; texts made safe to print. */
export function table(rows: Array<Record<string, unknown>>): string {
  if (!rows.length) return '(none)';
  const cols = Object.keys(rows[0]!).map((c) => terminalText(c));
  const keys = Object.keys(rows[0]!);
  const cell = (v: unknown) =>
    v === null || v === undefined
      ? '-'
      : typeof v === 'number'
        ? Number.isInteger(v)
          ? String(v)
          : v.toFixed(3)
        : terminalText(String(v));
  const cells = rows.map((r) => keys.map((k) => cell(r[k])));
  const widths = cols.map((c, i) => cells.reduce((w, r) => Math.max(w, r[i]!.length), c.length));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(cols), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

/** Whole dollars with thousands separators ("$28,120"), '-' when not a number. */
export const money = (n: unknown) => (typeof n === 'number' ? formatUsd(Math.round(n)) : '-');

export function formatScores(
  deployment: string,
  rows: ScoreAggregate[],
  interactions: Record<string, number> = {},
  lastCycleNote = '',
  versions?: { shown: number; total: number },
): string {
  return [
    `scores of ${deployment} (mean of the check's score; flagged: quality < 0.5, hallucination or toxicity >= 0.5; coverage: scored of stored interactions)`,
    ...(versions && versions.total > versions.shown
      ? [`showing the ${versions.shown} most recently scored of ${versions.total} model versions (--limit N for more, --version V for one)`]
      : []),
    table(
      rows.map((r) => ({
        model_version: r.model_version,
        check: r.check_name,
        judge: r.judge,
        scored: r.ok,
        coverage: interactions[r.model_version] ? percentText(r.ok / interactions[r.model_version]!) : '-',
        abstained: r.abstained,
        failed: r.failed,
        mean: r.mean,
        p50: r.p50,
        p90: r.p90,
        flagged: r.flagged,
      })),
    ),
    ...(rows.some((r) => r.abstained)
      ? [
          'abstained: the judge cannot measure that check for those interactions (e.g. hallucination without a knowledge passage, offline judge)',
        ]
      : []),
    ...(lastCycleNote ? [`last cycle: ${terminalText(lastCycleNote)}`] : []),
  ].join('\n');
}

export function describeCycle(r: CycleResult): string {
  const late = latenessNote(r.scheduledAt, r.startedAt);
  if (r.status === 'skipped') {
    return `cycle ${r.cycleId} skipped (not a failure; nothing collected): ${terminalText(r.note ?? `cycle '${r.heldBy ?? '?'}' holds the lease`)}`;
  }
  return [
    ...(late ? [`cycle ${r.cycleId} ${late} (scheduled ${r.scheduledAt})`] : []),
    `cycle ${r.cycleId}: ${r.stored} interactions stored (${r.fetched} fetched, ${r.bad} bad records), ${r.sampled} sampled`,
    `checks: ${r.scored} scored, ${r.failed} failed, ${r.abstained ?? 0} abstained, ${r.skipped} already scored; judge ${r.judge}; LLM calls ${r.llmCalls ?? 0}, tokens ${r.promptTokens} in (${r.cachedTokens ?? 0} cached) + ${r.completionTokens} out (${r.reasoningTokens ?? 0} reasoning)`,
    ...(r.coverageNote ? [`coverage: ${terminalText(r.coverageNote)}`] : []),
    ...(r.conflicts ? [`${r.conflicts} records conflicted with stored ones (same id, other content; the first copy is kept)`] : []),
    ...r.badSamples.slice(0, 5).map((b) => `  bad record at ${b.position}: ${terminalText(b.reason)}`),
    ...r.failureSamples.slice(0, 5).map((f) => `  failed ${f.check} of ${terminalText(f.id)}: ${terminalText(f.reason)}`),
  ].join('\n');
}

/**
 * A deployment's recorded cycles, newest first: how each ended (a skipped one names the cycle that
 * held the lease), when it was due, when it began and how late, what it collected.
 */
export function formatCycles(deployment: string, rows: CollectionRunRow[]): string {
  if (!rows.length) return `no collection cycle of ${deployment} is recorded yet`;
  const iso = (d: Date | null) => (d ? new Date(d).toISOString().slice(0, 19).replace('T', ' ') : '-');
  const notes: string[] = [];
  const out = table(
    rows.map((r) => {
      const late = latenessNote(r.scheduled_at, r.started_at);
      if (late) notes.push(`${r.cycle_id} ${late}`);
      return {
        cycle: r.cycle_id,
        status: r.status,
        scheduled: iso(r.scheduled_at),
        started: iso(r.started_at),
        late: late ? late.replace(/^started (.*) after it was due$/, '$1') : '-',
        finished: iso(r.finished_at),
        stored: r.status === 'skipped' ? '-' : r.stored,
        scored: r.status === 'skipped' ? '-' : r.scored,
        failed: r.status === 'skipped' ? '-' : r.failed,
        note: (r.status === 'ok' ? r.coverage_note : (r.error ?? '')).slice(0, 160),
      };
    }),
  );
  return [
    `collection cycles of ${deployment}, newest first (times UTC; skipped: another cycle of the deployment held its lease, not a failure)`,
    out,
    ...notes.map((n) => `late: ${terminalText(n)}`),
  ].join('\n');
}

export function describeBaseline(rec: BaselineRecord): string {
  return (
    `baseline ${rec.id}: ${rec.samples} samples (${rec.windowFrom ?? '-'} .. ${rec.windowTo ?? '-'})\n` +
    `quality ${percentText(rec.stats.quality.mean)} ± ${percentText(rec.stats.quality.sd)} (sd), hallucination rate ${percentText(rec.stats.hallucination_rate.mean)}, toxicity rate ${percentText(rec.stats.toxicity_rate.mean)}`
  );
}

export function formatAgentRun(r: AgentRunResult): string {
  if (r.status === 'failed') return `${r.agent}: FAILED: ${terminalText(r.error ?? '')}`;
  const rows = r.findings.map((f) => ({
    severity: f.severity,
    kind: f.kind,
    subject: f.subject.slice(0, 28),
    finding: f.title.slice(0, 90),
    monthly: money(f.monthlySavingUsd),
    annual: money(f.annualSavingUsd),
  }));
  return [
    `${r.agent}: ${r.findings.length} findings from ${r.dataPoints} data points (${r.window.from.slice(0, 16)} .. ${r.window.to.slice(0, 16)})`,
    ...r.warnings.map((w) => `  warning: ${terminalText(w)}`),
    table(rows),
    `summary (${terminalText(r.narrative?.generatedBy ?? 'template')}): ${terminalText(r.narrative?.summary ?? r.summary, { newlines: true })}`,
  ].join('\n');
}

export function formatRecommendations(rows: RecommendationRow[]): string {
  return table(
    rows.map((x) => ({
      agent: x.agent,
      severity: x.severity,
      subject: String(x.subject).slice(0, 28),
      recommendation: String(x.title).slice(0, 90),
      monthly: money(x.monthly_saving_usd ?? undefined),
      annual: money(x.annual_saving_usd ?? undefined),
      confidence: x.confidence,
    })),
  );
}
