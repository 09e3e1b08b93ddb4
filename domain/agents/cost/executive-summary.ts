/**
 * The cost agent's templated executive summary: 3-5 sentences with the dollar figures of the
 * findings and totals. Pure and workflow-safe: no I/O, no clock, no randomness, no Node APIs.
 */
import { formatUsd } from '../../../common/format.js';
import type { Finding } from '../types.js';
import type { CostTotals } from './findings.js';
import { formatUnitUsd } from './rules.js';

/** A short imperative for a saving finding, e.g. "stop or schedule i-idle-reporting". */
function actionOf(f: Finding): string {
  if (f.kind === 'idle-resource') return `stop or schedule ${f.subject}`;
  if (f.kind === 'right-size') return `move ${f.subject} from ${f.evidence.current_type} to ${f.evidence.recommended_type}`;
  return f.recommendation;
}

/** A templated summary for executives: 3-5 sentences with the dollar figures. */
export function executiveSummary(findings: Finding[], totals: CostTotals): string {
  const sentences: string[] = [];
  sentences.push(
    `Cloud spend in the period analysed was ${formatUsd(totals.spendUsd)}, a run rate of ${formatUsd(totals.monthlyRunRateUsd)} a month (${formatUsd(totals.annualRunRateUsd)} a year).`,
  );

  const idle = findings.filter((f) => f.kind === 'idle-resource');
  sentences.push(
    idle.length > 0
      ? `Idle resources waste ${formatUsd(totals.wasteAnnualUsd)} a year (${idle
          .map((f) => f.subject)
          .slice(0, 3)
          .join(', ')}${idle.length > 3 ? ` and ${idle.length - 3} more` : ''}).`
      : 'No idle resources were found.',
  );

  // The best saving per subject, largest first.
  const best = new Map<string, Finding>();
  for (const f of findings) {
    if (!f.annualSavingUsd || f.annualSavingUsd <= 0) continue;
    const cur = best.get(f.subject);
    if (!cur || (cur.annualSavingUsd ?? 0) < f.annualSavingUsd) best.set(f.subject, f);
  }
  const top = [...best.values()].sort((a, b) => (b.annualSavingUsd ?? 0) - (a.annualSavingUsd ?? 0));
  if (top.length > 0) {
    const list = top
      .slice(0, 3)
      .map((f) => `${actionOf(f)} (${formatUsd(f.annualSavingUsd ?? 0)} a year)`)
      .join('; ');
    sentences.push(`Acting on the findings saves ${formatUsd(totals.savingsAnnualUsd)} a year; the largest: ${list}.`);
  } else {
    sentences.push('The findings show no resource that can be stopped or downsized.');
  }

  const notes: string[] = [];
  const tokenFlags = findings.filter(
    (f) => f.kind === 'cost-per-token' && f.severity !== 'info' && f.evidence.ratio_to_cheapest !== undefined,
  );
  for (const f of tokenFlags.slice(0, 2)) {
    notes.push(
      `${f.subject} costs ${formatUnitUsd(Number(f.evidence.cost_per_million_tokens_usd))} per million tokens, ${Number(f.evidence.ratio_to_cheapest).toFixed(1)}× ${f.evidence.cheapest_deployment}`,
    );
  }
  const anomalies = findings.filter((f) => f.kind === 'spend-anomaly');
  if (anomalies.length > 0) {
    const a = anomalies[0]!;
    notes.push(
      `${anomalies.length} daily spend spike${anomalies.length > 1 ? 's' : ''} flagged, the largest ${formatUsd(Number(a.evidence.excess_usd))} above normal in ${a.evidence.service} on ${a.evidence.date}`,
    );
  }
  if (notes.length > 0) sentences.push(`Also flagged: ${notes.join('; ')}.`);

  const first = top[0];
  if (first) sentences.push(`Do first: ${actionOf(first)}, worth ${formatUsd(first.annualSavingUsd ?? 0)} a year.`);
  return sentences.join(' ');
}
