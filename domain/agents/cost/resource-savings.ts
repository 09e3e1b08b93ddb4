/**
 * The cost agent's findings on single resources: 'idle-resource' (its whole monthly cost is
 * waste) and 'right-size' (the cheapest type of its family that holds the p95 need with
 * headroom), and the totals they give (waste; savings counting each resource once). Pure and
 * workflow-safe: no I/O, no clock, no randomness, no Node APIs.
 */
import { formatUsd, percentPoints } from '../../../common/format.js';
import { HOURS_PER_MONTH } from '../instance-catalog.js';
import { cheapestFirst, compareText } from '../ordering.js';
import type { InstanceType, ResourceUtilisation } from '../types.js';
import type { ObservedPeriod, Ranked } from './period.js';
import { COST_RULES, round2, round4, severityForUsd } from './rules.js';

function clamp01(x: number): number {
  return Math.min(1, Math.max(0, x));
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
    .sort(cheapestFirst);
  const target = candidates[0];
  return target ? { target, need } : undefined;
}

/**
 * The idle-resource and right-size findings of the resources with utilisation data, with the
 * annual waste of the idle ones and the annual savings (per resource the larger of its idle waste
 * and right-size saving).
 */
export function resourceSavings(
  period: ObservedPeriod,
  input: { utilisation: readonly ResourceUtilisation[]; catalog: readonly InstanceType[] },
): { ranked: Ranked[]; wasteAnnual: number; savings: number } {
  const { observedHours, dayFactor, monthlyOf, resources } = period;
  const ranked: Ranked[] = [];
  const savingPerResource = new Map<string, number>();
  const keepMax = (id: string, usd: number) => savingPerResource.set(id, Math.max(savingPerResource.get(id) ?? 0, usd));
  let wasteAnnual = 0;

  const utilisation = [...input.utilisation].sort((a, b) => compareText(a.resourceId, b.resourceId));
  for (const u of utilisation) {
    const res = resources.get(u.resourceId);
    if (!res) continue;
    const sampleFactor = Math.min(1, Math.max(0, u.samples) / COST_RULES.fullConfidenceSamples);
    const idle = u.idleShare >= COST_RULES.idleShareMin;
    const underused = !idle && u.p95Utilisation < COST_RULES.underusedP95Max;
    const observedMonthly = round2(monthlyOf(res.costUsd));
    const usage = {
      idle_share_pct: percentPoints(u.idleShare, 0),
      mean_utilisation_pct: percentPoints(u.meanUtilisation, 0),
      p95_utilisation_pct: percentPoints(u.p95Utilisation, 0),
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
            headroom_pct: percentPoints(COST_RULES.headroom, 0),
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
          title: `${res.resourceId} is idle ${percentPoints(u.idleShare, 0)} % of the time: ${formatUsd(annual)} annual waste`,
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
            `Stop ${res.resourceId} or put it on a schedule: it is idle ${percentPoints(u.idleShare, 0)} % of the time and costs ${formatUsd(monthly)} a month, ` +
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
      const why = idle
        ? `it is idle ${percentPoints(u.idleShare, 0)} % of the time`
        : `its p95 utilisation is ${percentPoints(u.p95Utilisation, 0)} %`;
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
            `(${formatUsd(rs.target.hourlyUsd * HOURS_PER_MONTH)} a month): ${why}, so its peak needs ${needText} with ${percentPoints(COST_RULES.headroom, 0)} % headroom, ` +
            `and ${rs.target.name} is the cheapest ${rs.current.family} type that fits. Saves ${formatUsd(rs.monthlyUsd)} a month (${formatUsd(rs.annualUsd)} a year).${check}${shutdown}`,
          monthlySavingUsd: rs.monthlyUsd,
          annualSavingUsd: rs.annualUsd,
          confidence: round2(gpu ? 0.3 + 0.35 * dayFactor * sampleFactor : 0.35 + 0.5 * dayFactor * sampleFactor),
        },
      });
    }
  }

  let savings = 0;
  for (const v of savingPerResource.values()) savings += v;
  return { ranked, wasteAnnual, savings };
}
