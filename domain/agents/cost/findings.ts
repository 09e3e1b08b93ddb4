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
 * Findings:
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
 */
import { formatUsd, round } from '../../../common/format.js';
import type { CostRow, Finding, InstanceType, ResourceUtilisation, Severity } from '../types.js';
import { HOURS_PER_MONTH } from '../instance-catalog.js';

export const COST_RULES = {
  /** Idle share (samples below 5 % utilisation) from which a resource counts as idle. */
  idleShareMin: 0.9,
  /** p95 utilisation below which a resource is under-used. */
  underusedP95Max: 0.4,
  /** Headroom on top of the p95 need when right-sizing. */
  headroom: 0.3,
  /** Cost per token at this multiple of the cheapest deployment's is flagged. */
  costPerTokenFlagRatio: 2,
  anomalySds: 3,
  anomalyMinRise: 0.2,
  anomalyMinExcessUsd: 1,
  trailingDays: 7,
  /** Days of data for full confidence. */
  fullConfidenceDays: 14,
  /** Utilisation samples for full confidence. */
  fullConfidenceSamples: 288,
} as const;

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

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

export function round2(x: number): number {
  return round(x, 2) + 0; // + 0 turns -0 into 0
}
function round4(x: number): number {
  return Math.round(x * 10_000) / 10_000 + 0;
}

/** A unit price: 2 decimals, more when it is below 10 cents. */
function formatUnitUsd(x: number): string {
  return x >= 0.1 || x === 0 ? `$${x.toFixed(2)}` : `$${x.toPrecision(2)}`;
}

function pct(x: number): number {
  return Math.round(x * 100);
}

export function severityForUsd(usdAtStake: number): Severity {
  if (usdAtStake >= 10_000) return 'high';
  if (usdAtStake >= 1_000) return 'medium';
  if (usdAtStake >= 100) return 'low';
  return 'info';
}

function clamp01(x: number): number {
  return Math.min(1, Math.max(0, x));
}

interface ResourceAgg {
  resourceId: string;
  costUsd: number;
  serviceName: string;
  resourceType: string;
  instanceType?: string;
  deployment?: string;
}

interface RightSize {
  current: InstanceType;
  target: InstanceType;
  monthlyUsd: number;
  annualUsd: number;
  evidence: Record<string, number | string>;
}

/** The cheapest catalog type of `current`'s family that holds the p95 need with headroom, if cheaper. */
export function rightSizeTarget(
  current: InstanceType,
  p95Utilisation: number,
  catalog: readonly InstanceType[],
): { target: InstanceType; need: Record<string, number> } | undefined {
  const factor = clamp01(p95Utilisation) * (1 + COST_RULES.headroom);
  const gpu = current.family === 'gpu';
  const need: Record<string, number> = gpu
    ? { required_gpu_memory_gib: round2(current.gpuMemoryGiB * factor) }
    : { required_vcpus: round2(current.vcpus * factor), required_memory_gib: round2(current.memoryGiB * factor) };
  const fits = (t: InstanceType) =>
    gpu
      ? t.gpus >= 1 && t.gpuMemoryGiB >= current.gpuMemoryGiB * factor
      : t.vcpus >= current.vcpus * factor && t.memoryGiB >= current.memoryGiB * factor;
  const candidates = catalog
    .filter((t) => t.family === current.family && t.name !== current.name && t.hourlyUsd < current.hourlyUsd && fits(t))
    .sort((a, b) => a.hourlyUsd - b.hourlyUsd || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const target = candidates[0];
  return target ? { target, need } : undefined;
}

export function costFindings(input: CostFindingsInput): CostFindingsResult {
  const fromMs = Date.parse(input.window.from);
  const toMs = Date.parse(input.window.to);
  if (!Number.isFinite(fromMs) || !Number.isFinite(toMs) || toMs <= fromMs) {
    throw new Error(`invalid cost window ${input.window.from} .. ${input.window.to}`);
  }
  const trailingDays = input.trailingDays ?? COST_RULES.trailingDays;
  if (!Number.isInteger(trailingDays) || trailingDays < 2) throw new Error(`trailingDays must be an integer ≥ 2, got ${trailingDays}`);

  const rows = input.rows.filter((r) => {
    const s = Date.parse(r.chargePeriodStart);
    return s >= fromMs && s < toMs;
  });
  const zero: CostTotals = { spendUsd: 0, monthlyRunRateUsd: 0, annualRunRateUsd: 0, wasteAnnualUsd: 0, savingsAnnualUsd: 0 };
  if (rows.length === 0) return { findings: [], totals: zero };

  // Observed period: the window clipped to the data.
  let obsStart = Infinity;
  let obsEnd = -Infinity;
  for (const r of rows) {
    obsStart = Math.min(obsStart, Date.parse(r.chargePeriodStart));
    obsEnd = Math.max(obsEnd, Date.parse(r.chargePeriodEnd));
  }
  obsStart = Math.max(obsStart, fromMs);
  obsEnd = Math.min(obsEnd, toMs);
  const observedHours = Math.max(1, (obsEnd - obsStart) / HOUR_MS);
  const observedDays = observedHours / 24;
  const dayFactor = Math.min(1, observedDays / COST_RULES.fullConfidenceDays);
  const monthlyOf = (usd: number) => (usd / observedHours) * HOURS_PER_MONTH;

  // Per-resource and per-deployment costs.
  let spend = 0;
  const resources = new Map<string, ResourceAgg>();
  const deploymentCost = new Map<string, number>();
  for (const r of rows) {
    spend += r.effectiveCost;
    const dep = r.tags.deployment;
    if (dep) deploymentCost.set(dep, (deploymentCost.get(dep) ?? 0) + r.effectiveCost);
    if (!r.resourceId) continue;
    let agg = resources.get(r.resourceId);
    if (!agg) {
      agg = { resourceId: r.resourceId, costUsd: 0, serviceName: r.serviceName, resourceType: r.resourceType };
      resources.set(r.resourceId, agg);
    }
    agg.costUsd += r.effectiveCost;
    if (!agg.instanceType && r.tags.instance_type) agg.instanceType = r.tags.instance_type;
    if (!agg.deployment && dep) agg.deployment = dep;
  }

  const ranked: Array<{ finding: Finding; stakeUsd: number }> = [];
  const savingPerResource = new Map<string, number>();
  const keepMax = (id: string, usd: number) => savingPerResource.set(id, Math.max(savingPerResource.get(id) ?? 0, usd));
  let wasteAnnual = 0;

  // ----- idle resources and right-sizing -----
  const utilisation = [...input.utilisation].sort((a, b) => (a.resourceId < b.resourceId ? -1 : a.resourceId > b.resourceId ? 1 : 0));
  for (const u of utilisation) {
    const res = resources.get(u.resourceId);
    if (!res) continue;
    const sampleFactor = Math.min(1, Math.max(0, u.samples) / COST_RULES.fullConfidenceSamples);
    const idle = u.idleShare >= COST_RULES.idleShareMin;
    const underused = !idle && u.p95Utilisation < COST_RULES.underusedP95Max;
    const observedMonthly = round2(monthlyOf(res.costUsd));
    const usage = {
      idle_share_pct: pct(u.idleShare),
      mean_utilisation_pct: pct(u.meanUtilisation),
      p95_utilisation_pct: pct(u.p95Utilisation),
      utilisation_samples: u.samples,
    };

    let rs: RightSize | undefined;
    const current = res.instanceType ? input.catalog.find((t) => t.name === res.instanceType) : undefined;
    if ((idle || underused) && current) {
      const pick = rightSizeTarget(current, u.p95Utilisation, input.catalog);
      if (pick) {
        const monthlyUsd = round2((current.hourlyUsd - pick.target.hourlyUsd) * HOURS_PER_MONTH);
        rs = {
          current,
          target: pick.target,
          monthlyUsd,
          annualUsd: round2(monthlyUsd * 12),
          evidence: {
            current_type: current.name,
            recommended_type: pick.target.name,
            current_hourly_usd: round4(current.hourlyUsd),
            recommended_hourly_usd: round4(pick.target.hourlyUsd),
            current_list_monthly_usd: round2(current.hourlyUsd * HOURS_PER_MONTH),
            recommended_list_monthly_usd: round2(pick.target.hourlyUsd * HOURS_PER_MONTH),
            headroom_pct: pct(COST_RULES.headroom),
            ...pick.need,
            ...(current.family === 'gpu'
              ? { recommended_gpu_memory_gib: pick.target.gpuMemoryGiB }
              : { recommended_vcpus: pick.target.vcpus, recommended_memory_gib: pick.target.memoryGiB }),
          },
        };
      }
    }

    if (idle && observedMonthly > 0) {
      const monthly = observedMonthly;
      const annual = round2(monthly * 12);
      wasteAnnual += annual;
      keepMax(res.resourceId, annual);
      const alt = rs
        ? ` If it must stay on, downsize it from ${rs.current.name} to ${rs.target.name} (saves ${formatUsd(rs.monthlyUsd)} a month, ${formatUsd(rs.annualUsd)} a year), but shutting it down saves more.`
        : '';
      ranked.push({
        stakeUsd: annual,
        finding: {
          kind: 'idle-resource',
          title: `${res.resourceId} is idle ${pct(u.idleShare)} % of the time: ${formatUsd(annual)} annual waste`,
          severity: severityForUsd(annual),
          subject: res.resourceId,
          evidence: {
            ...usage,
            cost_in_period_usd: round2(res.costUsd),
            observed_hours: round2(observedHours),
            monthly_cost_usd: monthly,
            annual_waste_usd: annual,
            ...(res.instanceType ? { instance_type: res.instanceType } : {}),
            service: res.serviceName,
          },
          recommendation:
            `Stop ${res.resourceId} or put it on a schedule: it is idle ${pct(u.idleShare)} % of the time and costs ${formatUsd(monthly)} a month, ` +
            `so stopping it saves ${formatUsd(monthly)} a month (${formatUsd(annual)} a year).${alt}`,
          monthlySavingUsd: monthly,
          annualSavingUsd: annual,
          confidence: round2(0.4 + 0.55 * dayFactor * sampleFactor),
        },
      });
    }

    if (rs && rs.monthlyUsd > 0) {
      keepMax(res.resourceId, rs.annualUsd);
      const gpu = rs.current.family === 'gpu';
      const needText = gpu
        ? `${rs.evidence.required_gpu_memory_gib} GiB of GPU memory`
        : `${rs.evidence.required_vcpus} vCPUs and ${rs.evidence.required_memory_gib} GiB`;
      const why = idle ? `it is idle ${pct(u.idleShare)} % of the time` : `its p95 utilisation is ${pct(u.p95Utilisation)} %`;
      const check = gpu
        ? ` Before switching, check that the model's weights and KV cache fit in ${rs.target.gpuMemoryGiB} GiB and that throughput holds at peak.`
        : '';
      const shutdown = idle ? ' Shutting it down or scheduling it (see the idle finding) saves more.' : '';
      ranked.push({
        stakeUsd: rs.annualUsd,
        finding: {
          kind: 'right-size',
          title: `Downsize ${res.resourceId} from ${rs.current.name} to ${rs.target.name}: saves ${formatUsd(rs.monthlyUsd)} a month (${formatUsd(rs.annualUsd)} a year)`,
          severity: severityForUsd(rs.annualUsd),
          subject: res.resourceId,
          evidence: {
            ...usage,
            ...rs.evidence,
            observed_monthly_cost_usd: observedMonthly,
            monthly_saving_usd: rs.monthlyUsd,
            annual_saving_usd: rs.annualUsd,
          },
          recommendation:
            `Move ${res.resourceId} from ${rs.current.name} (${formatUsd(rs.current.hourlyUsd * HOURS_PER_MONTH)} a month) to ${rs.target.name} ` +
            `(${formatUsd(rs.target.hourlyUsd * HOURS_PER_MONTH)} a month): ${why}, so its peak needs ${needText} with ${pct(COST_RULES.headroom)} % headroom, ` +
            `and ${rs.target.name} is the cheapest ${rs.current.family} type that fits. Saves ${formatUsd(rs.monthlyUsd)} a month (${formatUsd(rs.annualUsd)} a year).${check}${shutdown}`,
          monthlySavingUsd: rs.monthlyUsd,
          annualSavingUsd: rs.annualUsd,
          confidence: round2(gpu ? 0.3 + 0.35 * dayFactor * sampleFactor : 0.35 + 0.5 * dayFactor * sampleFactor),
        },
      });
    }
  }

  // ----- cost per million tokens -----
  const deployments = [...deploymentCost.keys()].sort();
  const unit = new Map<string, number>();
  for (const d of deployments) {
    const tokens = input.tokensByDeployment[d] ?? 0;
    if (tokens > 0) unit.set(d, ((deploymentCost.get(d) ?? 0) / tokens) * 1e6);
  }
  let cheapest: { deployment: string; cpm: number } | undefined;
  for (const [d, cpm] of unit) if (!cheapest || cpm < cheapest.cpm) cheapest = { deployment: d, cpm };
  for (const d of deployments) {
    const cost = deploymentCost.get(d) ?? 0;
    const tokens = input.tokensByDeployment[d] ?? 0;
    const cpm = unit.get(d);
    const confidence = round2(0.4 + 0.5 * dayFactor);
    if (cpm === undefined) {
      if (cost <= 0) continue;
      const annual = round2(round2(monthlyOf(cost)) * 12);
      ranked.push({
        stakeUsd: annual,
        finding: {
          kind: 'cost-per-token',
          title: `${d} cost ${formatUsd(cost)} but no tokens served were recorded`,
          severity: severityForUsd(annual),
          subject: d,
          evidence: { cost_usd: round2(cost), tokens_served: 0, annual_cost_usd: annual },
          recommendation: `Check ${d}'s token accounting; if it really serves no traffic, stop its resources (${formatUsd(annual)} a year).`,
          confidence: round2(confidence * 0.6),
        },
      });
      continue;
    }
    const base = {
      cost_usd: round2(cost),
      tokens_served: tokens,
      cost_per_million_tokens_usd: round4(cpm),
    };
    const flagged = cheapest !== undefined && cheapest.deployment !== d && cpm >= COST_RULES.costPerTokenFlagRatio * cheapest.cpm;
    if (!flagged || !cheapest) {
      ranked.push({
        stakeUsd: 0,
        finding: {
          kind: 'cost-per-token',
          title: `${d} costs ${formatUnitUsd(cpm)} per million tokens served`,
          severity: 'info',
          subject: d,
          evidence: {
            ...base,
            ...(cheapest
              ? {
                  cheapest_deployment: cheapest.deployment,
                  cheapest_cost_per_million_tokens_usd: round4(cheapest.cpm),
                  ratio_to_cheapest: round2(cpm / cheapest.cpm),
                }
              : {}),
          },
          recommendation:
            cheapest && cheapest.deployment === d && unit.size > 1
              ? `${d} has the lowest unit cost; use it as the reference for the other deployments.`
              : `No action needed: ${d}'s unit cost is within ${COST_RULES.costPerTokenFlagRatio}× of the cheapest deployment.`,
          confidence,
        },
      });
      continue;
    }
    const ratio = cpm / cheapest.cpm;
    const excess = cost - (cheapest.cpm * tokens) / 1e6;
    const monthlyExcess = round2(monthlyOf(excess));
    const annualExcess = round2(monthlyExcess * 12);
    ranked.push({
      stakeUsd: annualExcess,
      finding: {
        kind: 'cost-per-token',
        title: `${d} costs ${formatUnitUsd(cpm)} per million tokens, ${ratio.toFixed(1)}× ${cheapest.deployment} (${formatUnitUsd(cheapest.cpm)})`,
        severity: severityForUsd(annualExcess),
        subject: d,
        evidence: {
          ...base,
          cheapest_deployment: cheapest.deployment,
          cheapest_cost_per_million_tokens_usd: round4(cheapest.cpm),
          ratio_to_cheapest: round2(ratio),
          excess_monthly_usd: monthlyExcess,
          excess_annual_usd: annualExcess,
        },
        recommendation:
          `Bring ${d}'s unit cost down: batch more requests per GPU, move it to a smaller or cheaper GPU, or consolidate it onto ${cheapest.deployment}'s capacity. ` +
          `At ${cheapest.deployment}'s unit cost it would cost ${formatUsd(monthlyExcess)} a month less (${formatUsd(annualExcess)} a year).`,
        impact: `${ratio.toFixed(1)}× the cheapest deployment's cost per token`,
        confidence,
      },
    });
  }

  // ----- daily spend anomalies per service -----
  const firstDay = Math.ceil(obsStart / DAY_MS) * DAY_MS; // first whole UTC day in the period
  const lastDayEnd = Math.floor(obsEnd / DAY_MS) * DAY_MS;
  const nDays = Math.max(0, Math.round((lastDayEnd - firstDay) / DAY_MS));
  const perService = new Map<string, { spend: number[]; byResource: Array<Map<string, number>> }>();
  for (const r of rows) {
    const day = Math.floor((Date.parse(r.chargePeriodStart) - firstDay) / DAY_MS);
    if (day < 0 || day >= nDays) continue;
    let s = perService.get(r.serviceName);
    if (!s) {
      s = { spend: new Array<number>(nDays).fill(0), byResource: Array.from({ length: nDays }, () => new Map<string, number>()) };
      perService.set(r.serviceName, s);
    }
    s.spend[day] = (s.spend[day] ?? 0) + r.effectiveCost;
    const key = r.resourceId || `(no resource) ${r.skuId}`;
    const m = s.byResource[day]!;
    m.set(key, (m.get(key) ?? 0) + r.effectiveCost);
  }
  for (const service of [...perService.keys()].sort()) {
    const s = perService.get(service)!;
    for (let i = trailingDays; i < nDays; i++) {
      const prev = s.spend.slice(i - trailingDays, i);
      const mean = prev.reduce((a, b) => a + b, 0) / trailingDays;
      const sd = Math.sqrt(prev.reduce((a, b) => a + (b - mean) ** 2, 0) / (trailingDays - 1));
      const spendDay = s.spend[i] ?? 0;
      const threshold = Math.max(
        mean + COST_RULES.anomalySds * sd,
        mean * (1 + COST_RULES.anomalyMinRise),
        mean + COST_RULES.anomalyMinExcessUsd,
      );
      if (!(spendDay > threshold)) continue;
      const date = new Date(firstDay + i * DAY_MS).toISOString().slice(0, 10);
      const excess = spendDay - mean;
      let top: [string, number] = ['', 0];
      for (const [k, v] of [...s.byResource[i]!.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) if (v > top[1]) top = [k, v];
      const prevTop = s.byResource.slice(i - trailingDays, i).reduce((a, m) => a + (m.get(top[0]) ?? 0), 0) / trailingDays;
      const z = sd > 0 ? (spendDay - mean) / sd : undefined;
      ranked.push({
        stakeUsd: excess,
        finding: {
          kind: 'spend-anomaly',
          title: `${service} spend on ${date} was ${formatUsd(spendDay)}, ${(spendDay / Math.max(mean, 0.01)).toFixed(1)}× its ${trailingDays}-day average of ${formatUsd(mean)} (+${formatUsd(excess)})`,
          severity: severityForUsd(excess),
          subject: `${service} ${date}`,
          evidence: {
            service,
            date,
            spend_usd: round2(spendDay),
            trailing_days: trailingDays,
            trailing_mean_usd: round2(mean),
            trailing_sd_usd: round2(sd),
            threshold_usd: round2(threshold),
            excess_usd: round2(excess),
            rise_pct: mean > 0 ? Math.round((spendDay / mean - 1) * 100) : 'n/a',
            ...(z !== undefined ? { z_score_sd: round2(z) } : {}),
            top_resource: top[0],
            top_resource_spend_usd: round2(top[1]),
            top_resource_trailing_mean_usd: round2(prevTop),
          },
          recommendation:
            `Find out what changed in ${service} on ${date}: ${top[0]} accounts for ${formatUsd(top[1])} of the day's ${formatUsd(spendDay)} ` +
            `(${formatUsd(prevTop)} a day before). If it was not planned, stop the cause and set a daily budget alert for ${service} at about ${formatUsd(threshold)}.`,
          impact: `${formatUsd(excess)} above the ${trailingDays}-day average in one day`,
          confidence: round2(
            0.5 + 0.35 * Math.min(1, trailingDays / COST_RULES.fullConfidenceDays) + (z !== undefined && z >= 6 ? 0.1 : 0),
          ),
        },
      });
    }
  }

  const kindOrder = ['idle-resource', 'right-size', 'cost-per-token', 'spend-anomaly'];
  ranked.sort(
    (a, b) =>
      b.stakeUsd - a.stakeUsd ||
      kindOrder.indexOf(a.finding.kind) - kindOrder.indexOf(b.finding.kind) ||
      (a.finding.subject < b.finding.subject ? -1 : a.finding.subject > b.finding.subject ? 1 : 0),
  );

  const monthlyRunRate = round2(monthlyOf(spend));
  let savings = 0;
  for (const v of savingPerResource.values()) savings += v;
  return {
    findings: ranked.map((r) => r.finding),
    totals: {
      spendUsd: round2(spend),
      monthlyRunRateUsd: monthlyRunRate,
      annualRunRateUsd: round2(monthlyRunRate * 12),
      wasteAnnualUsd: round2(wasteAnnual),
      savingsAnnualUsd: round2(savings),
    },
  };
}

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

/**
 * Merges rows of the same UTC day (by ChargePeriodStart), resource, service, SKU, region, type,
 * unit and tags into one row: costs and quantities summed, the charge period from the earliest
 * start to the latest end. `costFindings` gives the same findings on the result (it works on
 * per-resource, per-deployment and per-service-day sums), and hourly exports shrink ~24×: use it
 * before passing rows through workflow history (30 days of the seed scenario: 3,129 hourly rows,
 * 1.3 MB as JSON, against Temporal's 2 MB payload limit).
 */
export function compactCostRows(rows: readonly CostRow[]): CostRow[] {
  const groups = new Map<string, CostRow>();
  for (const r of rows) {
    const tags = JSON.stringify(
      Object.keys(r.tags)
        .sort()
        .map((k) => [k, r.tags[k]]),
    );
    const key = JSON.stringify([
      r.chargePeriodStart.slice(0, 10),
      r.resourceId,
      r.serviceName,
      r.skuId,
      r.regionId,
      r.resourceType,
      r.consumedUnit,
      tags,
    ]);
    const g = groups.get(key);
    if (!g) {
      groups.set(key, { ...r, tags: { ...r.tags } });
      continue;
    }
    g.billedCost += r.billedCost;
    g.effectiveCost += r.effectiveCost;
    g.consumedQuantity += r.consumedQuantity;
    if (Date.parse(r.chargePeriodStart) < Date.parse(g.chargePeriodStart)) g.chargePeriodStart = r.chargePeriodStart;
    if (Date.parse(r.chargePeriodEnd) > Date.parse(g.chargePeriodEnd)) g.chargePeriodEnd = r.chargePeriodEnd;
  }
  return [...groups.values()];
}
