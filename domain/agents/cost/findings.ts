/**
 * The cost agent's technical findings, computed deterministically from FOCUS cost rows, resource
 * utilisation and tokens served (LLM integration point 1: the LLM only narrates these). Pure and
 * workflow-safe: no I/O, no clock, no randomness, no Node APIs.
 *
 * Money: costs are FOCUS EffectiveCost (amortised, after discounts), in USD. Rows count when their
 * ChargePeriodStart lies in [window.from, window.to). The *observed period* is the window clipped
 * to the data (first charge start .. last charge end); monthly figures scale a cost over the
 * observed period to HOURS_PER_MONTH (730 h), annual figures are the rounded monthly figure × 12,
 * and every amount is rounded to cents.
 *
 * Findings (rules in `COST_RULES`, rules.ts; each family in its own module):
 * - 'idle-resource': idle (utilisation < 5 %) at least 90 % of the time → its whole monthly cost
 *   is waste; annual waste = monthly × 12. Recommendation: stop or schedule it, else downsize.
 * - 'right-size': idle, or p95 utilisation < 40 % → the cheapest catalog type of the same family
 *   that still holds the peak with 30 % headroom. The peak need is the current capacity × p95 ×
 *   1.3: vCPUs and memory for CPU families; GPU memory for 'gpu' (the utilisation figure says
 *   nothing about compute across GPU models, so GPU moves carry lower confidence and a check).
 *   Saving = (current − new list hourly) × 730 a month, × 12 a year.
 * - 'cost-per-token': cost per million tokens served, per deployment (Tags `deployment`);
 *   deployments at ≥ 2× the cheapest one are flagged with the annualised excess.
 * - 'spend-anomaly': daily spend per service (UTC days wholly inside the observed period) against
 *   the trailing `trailingDays` (default 7) days: flagged when it exceeds the trailing mean + 3 sd,
 *   the mean + 20 % and the mean + $1.
 * Severity is by money at stake (annual saving or excess; a spike's one-off excess): ≥ $10,000
 * high, ≥ $1,000 medium, ≥ $100 low, else info. Confidence grows with days of data (full at 14)
 * and utilisation samples (full at 288, a day of 5-minute samples).
 * Totals: savings count each resource once (the larger of its idle waste and right-size saving).
 * The rules work on sums (summary.ts): `costFindings` takes rows, `costFindingsFromSummary` the
 * sums ClickHouse computed for the cost agent, bounded however many rows the window holds.
 */
import { compareText } from '../ordering.js';
import type { CostRow, Finding, InstanceType, ResourceUtilisation } from '../types.js';
import { costPerTokenFindings } from './cost-per-token.js';
import { observePeriod } from './period.js';
import { resourceSavings } from './resource-savings.js';
import { COST_RULES, round2 } from './rules.js';
import { spendAnomalyFindings } from './spend-anomalies.js';
import { type CostSummary, summariseCostRows } from './summary.js';

export interface CostFindingsInput {
  rows: CostRow[];
  utilisation: ResourceUtilisation[];
  catalog: InstanceType[];
  /** Tokens served in the window, per deployment. */
  tokensByDeployment: Record<string, number>;
  window: { from: string; to: string };
  /** Trailing days for the spend-anomaly baseline (default 7). */
  trailingDays?: number;
}

export interface CostTotals {
  spendUsd: number;
  monthlyRunRateUsd: number;
  annualRunRateUsd: number;
  wasteAnnualUsd: number;
  savingsAnnualUsd: number;
}

export interface CostFindingsResult {
  findings: Finding[];
  totals: CostTotals;
}

export function costFindings(input: CostFindingsInput): CostFindingsResult {
  const { fromMs, toMs, trailingDays } = checkWindow(input);
  const rows = input.rows.filter((r) => {
    const s = Date.parse(r.chargePeriodStart);
    return s >= fromMs && s < toMs;
  });
  if (rows.length === 0) return { findings: [], totals: { ...ZERO_TOTALS } };
  return costFindingsFromSummary({ ...input, summary: summariseCostRows(rows, trailingDays) });
}

export type CostSummaryInput = Omit<CostFindingsInput, 'rows'> & {
  /** The summary of the rows whose ChargePeriodStart lies in the window (none: undefined). */
  summary: CostSummary | undefined;
};

/**
 * The findings and totals from the summary of the window's rows (summary.ts), as `costFindings`
 * gives them from the rows: the cost agent's path, whose summary ClickHouse computes.
 */
export function costFindingsFromSummary(input: CostSummaryInput): CostFindingsResult {
  const { fromMs, toMs, trailingDays } = checkWindow(input);
  if (!input.summary) return { findings: [], totals: { ...ZERO_TOTALS } };
  if (input.summary.trailingDays !== trailingDays)
    throw new Error(`the cost summary covers ${input.summary.trailingDays} trailing days, not ${trailingDays}`);
  const period = observePeriod(input.summary, fromMs, toMs);
  const { monthlyOf, spend } = period;
  const perResource = resourceSavings(period, input);
  const ranked = [...perResource.ranked, ...costPerTokenFindings(period, input), ...spendAnomalyFindings(period, trailingDays)];

  const kindOrder = ['idle-resource', 'right-size', 'cost-per-token', 'spend-anomaly'];
  ranked.sort(
    (a, b) =>
      b.stakeUsd - a.stakeUsd ||
      kindOrder.indexOf(a.finding.kind) - kindOrder.indexOf(b.finding.kind) ||
      compareText(a.finding.subject, b.finding.subject),
  );

  const monthlyRunRate = round2(monthlyOf(spend));
  return {
    findings: ranked.map((r) => r.finding),
    totals: {
      spendUsd: round2(spend),
      monthlyRunRateUsd: monthlyRunRate,
      annualRunRateUsd: round2(monthlyRunRate * 12),
      wasteAnnualUsd: round2(perResource.wasteAnnual),
      savingsAnnualUsd: round2(perResource.savings),
    },
  };
}

const ZERO_TOTALS: CostTotals = { spendUsd: 0, monthlyRunRateUsd: 0, annualRunRateUsd: 0, wasteAnnualUsd: 0, savingsAnnualUsd: 0 };

function checkWindow(input: { window: { from: string; to: string }; trailingDays?: number }) {
  const fromMs = Date.parse(input.window.from);
  const toMs = Date.parse(input.window.to);
  if (!Number.isFinite(fromMs) || !Number.isFinite(toMs) || toMs <= fromMs) {
    throw new Error(`invalid cost window ${input.window.from} .. ${input.window.to}`);
  }
  const trailingDays = input.trailingDays ?? COST_RULES.trailingDays;
  if (!Number.isInteger(trailingDays) || trailingDays < 2) throw new Error(`trailingDays must be an integer ≥ 2, got ${trailingDays}`);
  return { fromMs, toMs, trailingDays };
}
