/**
 * What the cost findings need from the cost rows of a window, as sums: the observed span, the
 * spend, per resource, per deployment, and per service and UTC day with the day's top resource.
 * Its size grows with resources, deployments and services × days, never with rows, so ClickHouse
 * can compute it (activities/storage/clickhouse/cost-queries.ts) over any number of rows, while
 * `summariseCostRows` computes it from rows (tests, the workflows recorded before findings moved
 * into activities). Pure and workflow-safe: no I/O, no clock, no randomness, no Node APIs.
 */
import type { CostRow } from '../types.js';
import type { ResourceAgg } from './period.js';

const DAY_MS = 86_400_000;

/** The spend of one service on one UTC day, and the resource that spent most of it. */
export interface ServiceDay {
  service: string;
  /** Start of the UTC day (ms). */
  day: number;
  spendUsd: number;
  /**
   * The resource with the most spend in this service that day (a row without a resource id
   * counts as `(no resource) <SkuId>`), the first in code-point order among equals; '' when none
   * spent more than 0.
   */
  top: string;
  topUsd: number;
  /** The top resource's spend in this service over the `trailingDays` days before this one. */
  topTrailingUsd: number;
}

export interface CostSummary {
  /** Earliest ChargePeriodStart and latest ChargePeriodEnd (ms) of the rows. */
  firstStart: number;
  lastEnd: number;
  /** Total EffectiveCost. */
  spendUsd: number;
  /** Per resource id: cost and its first row's service, type and tags (at least the resources with utilisation data). */
  resources: ResourceAgg[];
  /** EffectiveCost per `deployment` tag. */
  deploymentCost: Array<{ deployment: string; costUsd: number }>;
  /** Per service and UTC day with rows. */
  serviceDays: ServiceDay[];
  /** Days `topTrailingUsd` covers. */
  trailingDays: number;
}

/** The key a row's spend counts under when the top resource of a day is chosen. */
export function spendKey(r: Pick<CostRow, 'resourceId' | 'skuId'>): string {
  return r.resourceId || `(no resource) ${r.skuId}`;
}

/**
 * The summary of `rows` (at least one; the rows of the window, in the order they were read):
 * sums are taken in row order, so findings from it are those from the rows.
 */
export function summariseCostRows(rows: readonly CostRow[], trailingDays: number): CostSummary {
  let firstStart = Infinity;
  let lastEnd = -Infinity;
  for (const r of rows) {
    firstStart = Math.min(firstStart, Date.parse(r.chargePeriodStart));
    lastEnd = Math.max(lastEnd, Date.parse(r.chargePeriodEnd));
  }
  let spend = 0;
  const resources = new Map<string, ResourceAgg>();
  const deploymentCost = new Map<string, number>();
  const services = new Map<string, Map<number, { spend: number; byKey: Map<string, number> }>>();
  for (const r of rows) {
    spend += r.effectiveCost;
    const dep = r.tags.deployment;
    if (dep) deploymentCost.set(dep, (deploymentCost.get(dep) ?? 0) + r.effectiveCost);
    const day = Math.floor(Date.parse(r.chargePeriodStart) / DAY_MS) * DAY_MS;
    let days = services.get(r.serviceName);
    if (!days) {
      days = new Map();
      services.set(r.serviceName, days);
    }
    let d = days.get(day);
    if (!d) {
      d = { spend: 0, byKey: new Map() };
      days.set(day, d);
    }
    d.spend += r.effectiveCost;
    const key = spendKey(r);
    d.byKey.set(key, (d.byKey.get(key) ?? 0) + r.effectiveCost);
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
  const serviceDays: ServiceDay[] = [];
  for (const [service, days] of services) {
    for (const [day, d] of days) {
      let top: [string, number] = ['', 0];
      for (const [k, v] of [...d.byKey.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) if (v > top[1]) top = [k, v];
      let trailing = 0;
      for (let back = trailingDays; back >= 1; back--) trailing += days.get(day - back * DAY_MS)?.byKey.get(top[0]) ?? 0;
      serviceDays.push({ service, day, spendUsd: d.spend, top: top[0], topUsd: top[1], topTrailingUsd: trailing });
    }
  }
  return {
    firstStart,
    lastEnd,
    spendUsd: spend,
    resources: [...resources.values()],
    deploymentCost: [...deploymentCost.entries()].map(([deployment, costUsd]) => ({ deployment, costUsd })),
    serviceDays,
    trailingDays,
  };
}
