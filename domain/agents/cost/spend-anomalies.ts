/**
 * The cost agent's 'spend-anomaly' findings: daily spend per service (UTC days wholly inside the
 * observed period) above its trailing mean by 3 sd, 20 % and $1, with the resource that drove it.
 * Pure and workflow-safe: no I/O, no clock, no randomness, no Node APIs.
 */
import { formatUsd } from '../../../common/format.js';
import type { ObservedPeriod, Ranked } from './period.js';
import type { ServiceDay } from './summary.js';
import { COST_RULES, round2, severityForUsd } from './rules.js';

const DAY_MS = 86_400_000;

/** The spend anomalies of each service (by name, then day) against the trailing `trailingDays` days. */
export function spendAnomalyFindings(period: ObservedPeriod, trailingDays: number): Ranked[] {
  const { serviceDays, obsStart, obsEnd } = period;
  const ranked: Ranked[] = [];
  const firstDay = Math.ceil(obsStart / DAY_MS) * DAY_MS; // first whole UTC day in the period
  const lastDayEnd = Math.floor(obsEnd / DAY_MS) * DAY_MS;
  const nDays = Math.max(0, Math.round((lastDayEnd - firstDay) / DAY_MS));
  const perService = new Map<string, { spend: number[]; days: Array<ServiceDay | undefined> }>();
  for (const d of serviceDays) {
    const day = Math.floor((d.day - firstDay) / DAY_MS);
    if (day < 0 || day >= nDays) continue;
    let s = perService.get(d.service);
    if (!s) {
      s = { spend: new Array<number>(nDays).fill(0), days: new Array<ServiceDay | undefined>(nDays) };
      perService.set(d.service, s);
    }
    s.spend[day] = d.spendUsd;
    s.days[day] = d;
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
      const topDay = s.days[i];
      const top: [string, number] = topDay && topDay.topUsd > 0 ? [topDay.top, topDay.topUsd] : ['', 0];
      const prevTop = (topDay && topDay.topUsd > 0 ? topDay.topTrailingUsd : 0) / trailingDays;
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
  return ranked;
}
