/**
 * The resource agent's findings on GPU utilisation over time, per host: 'utilisation-pattern'
 * (idle share and the daily shape by UTC hour) and 'capacity-forecast' (the linear trend and the
 * days until it reaches the limit). Pure and workflow-safe: no I/O, no clock, no randomness, no
 * Node APIs.
 */
import type { Finding, ResourceSeries, Severity } from '../types.js';
import { fixed, formatUsd, percentPoints, round } from '../../../common/format.js';
import { HOURS_PER_MONTH } from '../instance-catalog.js';
import { confidenceFromCount, linearFit } from '../series.js';
import { usd } from './catalog-match.js';
import { col, type HostStats, isShare, utilEvidence } from './host-stats.js';
import { RESOURCE_THRESHOLDS as T } from './thresholds.js';

/** Milliseconds of each point: parsed ISO timestamps, or the step grid when any fails to parse. */
function times(s: ResourceSeries): number[] {
  const parsed = s.points.map((p) => Date.parse(p.ts));
  if (parsed.every((t) => Number.isFinite(t))) return parsed;
  return s.points.map((_, i) => i * s.stepSeconds * 1000);
}

export function utilisationPattern(h: HostStats): Finding | undefined {
  if (!h.gpu) return undefined;
  const s = h.s;
  const gpuVals = col(s.points, 'gpuUtil');
  const idleShare = gpuVals.filter((v) => v < T.idleUtil).length / gpuVals.length;
  const evidence = utilEvidence(h);
  evidence.idle_share_pct = percentPoints(idleShare);

  const ts = times(s);
  const spanHours = ((ts[ts.length - 1] as number) - (ts[0] as number)) / 3_600_000 + s.stepSeconds / 3600;
  let recommendation = 'Load is flat over the day: fixed capacity fits; size it by the p95.';
  let severity: Severity = 'info';
  let monthly: number | undefined;
  let shape = 'window < 24 h';
  if (spanHours >= 24) {
    const sums = new Array<number>(24).fill(0);
    const counts = new Array<number>(24).fill(0);
    s.points.forEach((p, i) => {
      if (!isShare(p.gpuUtil)) return;
      const hour = new Date(ts[i] as number).getUTCHours();
      sums[hour] = (sums[hour] as number) + p.gpuUtil;
      counts[hour] = (counts[hour] as number) + 1;
    });
    const hours = sums
      .map((sum, hour) => ({ hour, m: (counts[hour] as number) > 0 ? sum / (counts[hour] as number) : NaN }))
      .filter((x) => Number.isFinite(x.m));
    const peak = hours.reduce((a, b) => (b.m > a.m ? b : a));
    const trough = hours.reduce((a, b) => (b.m < a.m ? b : a));
    const idleHours = hours.filter((x) => x.m < T.idleUtil).map((x) => x.hour);
    const ratio = peak.m / Math.max(trough.m, 0.01);
    evidence.peak_hour_utc = peak.hour;
    evidence.peak_hour_gpu_util_pct = percentPoints(peak.m);
    evidence.trough_hour_utc = trough.hour;
    evidence.trough_hour_gpu_util_pct = percentPoints(trough.m);
    evidence.peak_to_trough_ratio = round(ratio, 2);
    evidence.idle_hours_per_day = idleHours.length;
    if (idleHours.length > 0) evidence.idle_hours_utc = idleHours.join(',');
    shape = ratio >= T.strongCycleRatio ? 'strong daily cycle' : 'flat';
    if (idleHours.length >= T.minIdleHours) {
      severity = 'low';
      recommendation =
        `GPUs are idle ${idleHours.length} h/day (UTC hours ${idleHours.join(',')}): scale this host's replicas to zero ` +
        `in those hours (scheduled or queue-based autoscaling).`;
      if (h.type) {
        monthly = usd((h.type.hourlyUsd * idleHours.length * HOURS_PER_MONTH) / 24);
        recommendation += ` At ${formatUsd(h.type.hourlyUsd)}/h that saves ~${formatUsd(monthly)}/month.`;
      }
    } else if (ratio >= T.strongCycleRatio) {
      recommendation =
        `Strong daily cycle (peak ${fixed(percentPoints(peak.m))} % at ${peak.hour}:00 UTC, trough ${fixed(percentPoints(trough.m))} % at ` +
        `${trough.hour}:00 UTC, ×${fixed(ratio, 1)}): autoscale replicas on waiting requests instead of sizing for the peak.`;
    }
  }
  evidence.daily_shape = shape;
  const f: Finding = {
    kind: 'utilisation-pattern',
    title: `${s.host}: GPU ${fixed(percentPoints(h.gpu.mean))} % mean, ${fixed(percentPoints(h.gpu.p95))} % p95, idle ${fixed(percentPoints(idleShare))} % of the time`,
    severity,
    subject: s.host,
    evidence,
    recommendation,
    confidence: confidenceFromCount(h.gpu.n, T.fullConfidencePoints),
  };
  if (monthly !== undefined && monthly > 0) {
    f.monthlySavingUsd = monthly;
    f.annualSavingUsd = usd(monthly * 12);
  }
  return f;
}

export function capacityForecast(h: HostStats): Finding | undefined {
  const s = h.s;
  const ts = times(s);
  const xs: number[] = [];
  const ys: number[] = [];
  s.points.forEach((p, i) => {
    if (isShare(p.gpuUtil)) {
      xs.push(((ts[i] as number) - (ts[0] as number)) / 86_400_000);
      ys.push(p.gpuUtil);
    }
  });
  if (xs.length < T.minPoints) return undefined;
  const fit = linearFit(xs, ys);
  const lastX = xs[xs.length - 1] as number;
  const spanDays = lastX - (xs[0] as number);
  const now = fit.intercept + fit.slope * lastX;
  const spanFactor = Math.min(1, spanDays / T.forecastFullDays);
  // Growth: r2 says how well the line explains the data. No growth: r2 is low on a flat noisy
  // series by construction, so the amount of data is the confidence instead.
  const growth = fit.slope >= T.noGrowthPerDay;
  if (growth && spanDays < T.forecastMinDays) return undefined;
  const confidence = round((growth ? fit.r2 : confidenceFromCount(xs.length, T.fullConfidencePoints)) * spanFactor, 2);
  const evidence: Record<string, number | string> = {
    gpu_util_now_pct: percentPoints(now),
    slope_pct_per_day: round(fit.slope * 100, 3),
    r2: round(fit.r2, 3),
    window_days: round(spanDays, 2),
    limit_pct: percentPoints(T.forecastLimit),
  };
  const base = { kind: 'capacity-forecast', subject: s.host, evidence, confidence } as const;
  if (!growth) {
    evidence.trend = 'no growth';
    return {
      ...base,
      title: `${s.host}: no utilisation growth (${fixed(fit.slope * 100, 2)} points/day); GPU at ${fixed(percentPoints(now))} %`,
      severity: 'info',
      recommendation: 'No growth trend: current capacity holds; re-check with the next window.',
    };
  }
  const days = Math.max(0, (T.forecastLimit - now) / fit.slope);
  evidence.trend = 'growth';
  evidence.days_to_limit = round(days, 1);
  const lastTs = ts[ts.length - 1] as number;
  const when = Number.isFinite(lastTs) && lastTs > 1e11 ? new Date(lastTs + days * 86_400_000).toISOString() : undefined;
  if (when) evidence.reaches_limit_at = when;
  const severity: Severity = days <= 7 ? 'high' : days <= 30 ? 'medium' : days <= 90 ? 'low' : 'info';
  return {
    ...base,
    title:
      days === 0
        ? `${s.host}: GPU utilisation already at the ${fixed(percentPoints(T.forecastLimit))} % limit and rising ${fixed(fit.slope * 100, 2)} points/day`
        : `${s.host}: GPU utilisation reaches ${fixed(percentPoints(T.forecastLimit))} % in ~${fixed(days)} days (+${fixed(fit.slope * 100, 2)} points/day)`,
    severity,
    recommendation:
      `GPU utilisation grows ${fixed(fit.slope * 100, 2)} points/day (r² ${fixed(fit.r2, 2)}) from ${fixed(percentPoints(now))} % now: ` +
      `plan capacity (another replica or a larger instance) before ${when ? when.slice(0, 10) : `~${fixed(days)} days from the window's end`}.`,
  };
}
