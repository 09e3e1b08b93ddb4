/**
 * Moving a host to another catalog instance type: what it needs at the target utilisation, the
 * cheapest type that fits, and the money of the move. Shared by the resource findings. Pure and
 * workflow-safe: no I/O, no clock, no randomness, no Node APIs.
 */
import type { InstanceType } from '../types.js';
import { formatUsd, percentPoints, round } from '../../../common/format.js';
import { HOURS_PER_MONTH } from '../instance-catalog.js';
import { cheapestFirst } from '../ordering.js';
import type { HostStats } from './host-stats.js';
import { RESOURCE_THRESHOLDS as T } from './thresholds.js';

export const usd = (x: number): number => round(x, 2);

export interface Needs {
  gpus: number;
  vcpus: number;
  memoryGiB: number;
  gpuMemoryGiBPerGpu: number;
}

/** What a host needs so that every dimension's p95 stays at or under the target utilisation. */
export function needsOf(h: HostStats, current: InstanceType): Needs {
  return {
    gpus: h.gpu ? (h.gpu.p95 * current.gpus) / T.targetUtil : current.gpus,
    vcpus: h.cpu ? (h.cpu.p95 * current.vcpus) / T.targetUtil : current.vcpus,
    memoryGiB: h.mem ? (h.mem.p95 * current.memoryGiB) / T.targetUtil : current.memoryGiB,
    gpuMemoryGiBPerGpu: current.gpus > 0 ? current.gpuMemoryGiB : 0,
  };
}

export const EPS = 1e-9;
export function fits(t: InstanceType, n: Needs): boolean {
  return (
    t.gpus >= n.gpus - EPS &&
    t.vcpus >= n.vcpus - EPS &&
    t.memoryGiB >= n.memoryGiB - EPS &&
    (n.gpus <= 0 || t.gpuMemoryGiB >= n.gpuMemoryGiBPerGpu - EPS)
  );
}

/** Cheapest catalog type (ties: by name) that fits the needs, optionally of one family and cheaper than a price. */
export function cheapest(
  catalog: readonly InstanceType[],
  needs: Needs,
  opts: { family?: string; exclude?: string; below?: number } = {},
): InstanceType | undefined {
  return catalog
    .filter((t) => t.name !== opts.exclude)
    .filter((t) => opts.family === undefined || t.family === opts.family)
    .filter((t) => opts.below === undefined || t.hourlyUsd < opts.below)
    .filter((t) => fits(t, needs))
    .sort(cheapestFirst)[0];
}

export function needsEvidence(n: Needs): Record<string, number> {
  return {
    need_gpus: round(n.gpus, 2),
    need_vcpus: round(n.vcpus, 1),
    need_memory_gib: round(n.memoryGiB, 1),
    target_util_pct: percentPoints(T.targetUtil),
  };
}

/** Evidence and money fields of moving from `current` to `next` (positive saving = cheaper). */
export function moveMoney(
  current: InstanceType,
  next: InstanceType,
): {
  evidence: Record<string, number | string>;
  monthly: number;
  annual: number;
} {
  const monthly = (current.hourlyUsd - next.hourlyUsd) * HOURS_PER_MONTH;
  return {
    evidence: {
      current_instance: current.name,
      current_hourly_usd: current.hourlyUsd,
      recommended_instance: next.name,
      recommended_family: next.family,
      recommended_hourly_usd: next.hourlyUsd,
      monthly_cost_change_usd: usd(-monthly),
    },
    monthly: usd(monthly),
    annual: usd(monthly * 12),
  };
}

export function describeType(t: InstanceType): string {
  return `${t.name} (${t.family}: ${t.gpus} GPU × ${t.gpuMemoryGiB} GiB, ${t.vcpus} vCPU, ${t.memoryGiB} GiB, ${formatUsd(t.hourlyUsd)}/h)`;
}
