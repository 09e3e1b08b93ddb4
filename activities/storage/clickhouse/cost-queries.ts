/**
 * The cost agent's reads of `cost_usage`, reduced by ClickHouse to what the cost findings need
 * (domain/agents/cost/summary.ts): totals, spend per deployment, per service and UTC day with the
 * day's top resource, and per resource for the few resources with utilisation data. What they
 * return grows with deployments, services × days and the resources asked for, never with rows:
 * a month of a million FOCUS rows a day is a few thousand rows here. Values reach SQL only
 * through `sqlString` and numbers.
 *
 * The rows of a window are those whose ChargePeriodStart lies in [from, to); the findings count
 * the UTC days that start at or after `from` (as the daily rows the agent read before: the day
 * `from` falls in, when it does not start there, is counted in `days` and `dailyRows` only).
 */
import type { ResourceAgg } from '../../../domain/agents/cost/period.js';
import type { ServiceDay } from '../../../domain/agents/cost/summary.js';
import type { ClickHouseReader } from './score-queries.js';
import { latestCostSnapshots } from './migrations.js';
import { sqlLists, sqlString } from './sql.js';

const DAY = 86_400;

export interface CostWindow {
  from: string;
  to: string;
}

export interface CostTotals {
  /** Rows per UTC day, resource, type, service, region and SKU (what the agent read one by one before). */
  dailyRows: number;
  /** UTC days with rows. */
  days: number;
  /** Rows of the days that start in the window, and their first and last day (unix seconds; 0 when none). */
  rowsInWindow: number;
  firstDay: number;
  lastDay: number;
  spendUsd: number;
  services: number;
  deployments: number;
}

export interface CostResource extends ResourceAgg {
  /** Its rows on the days the findings count (0: it has rows only on the day `from` falls in). */
  rowsInWindow: number;
  /** The `deployment` tag of the resource's last row that has one, over the whole window (tokens served count for it). */
  taggedDeployment?: string;
}

/** Seconds of the first UTC day start the findings count: the first at or after `from`. */
function firstDayOf(from: string): number {
  return Math.ceil(Date.parse(from) / 1000);
}

/**
 * The window's rows with their UTC day, resource key and tags; `where` narrows them further. The
 * rows of each source are those of its latest completed collection, every one of them: FOCUS rows
 * may share every column read here (a usage row and its credit, two line items of one hour).
 */
function windowRows(db: string, w: CostWindow, where = ''): string {
  const from = Math.floor(Date.parse(w.from) / 1000);
  const to = Math.floor(Date.parse(w.to) / 1000);
  return `SELECT toUnixTimestamp(toStartOfDay(charge_period_start, 'UTC')) AS day, resource_id, resource_type, service_name,
            region_id, sku_id, effective_cost, if(resource_id != '', resource_id, concat('(no resource) ', sku_id)) AS key,
            visitParamExtractString(tags, 'deployment') AS dep, visitParamExtractString(tags, 'instance_type') AS itype
     FROM ${db}.cost_usage
     WHERE ${latestCostSnapshots(db)}
       AND charge_period_start >= toDateTime(${from}) AND charge_period_start < toDateTime(${to})${where}`;
}

export async function costTotals(r: ClickHouseReader, w: CostWindow): Promise<CostTotals> {
  const d = firstDayOf(w.from);
  const rows = await r.query<Record<string, string | number>>(
    `SELECT uniqExact(day, resource_id, resource_type, service_name, region_id, sku_id) AS daily_rows, uniqExact(day) AS days,
            countIf(day >= ${d}) AS in_window, minIf(day, day >= ${d}) AS first_day, maxIf(day, day >= ${d}) AS last_day,
            sumIf(effective_cost, day >= ${d}) AS spend, uniqExactIf(service_name, day >= ${d}) AS services,
            uniqExactIf(dep, day >= ${d} AND dep != '') AS deployments
     FROM (${windowRows(r.db, w)})`,
  );
  const x = rows[0] ?? {};
  const n = (k: string) => Number(x[k] ?? 0);
  return {
    dailyRows: n('daily_rows'),
    days: n('days'),
    rowsInWindow: n('in_window'),
    firstDay: n('in_window') ? n('first_day') : 0,
    lastDay: n('in_window') ? n('last_day') : 0,
    spendUsd: n('spend'),
    services: n('services'),
    deployments: n('deployments'),
  };
}

/** EffectiveCost per `deployment` tag, the `limit` with the most spend. */
export async function costByDeployment(
  r: ClickHouseReader,
  w: CostWindow & { limit: number },
): Promise<Array<{ deployment: string; costUsd: number }>> {
  const rows = await r.query<{ deployment: string; cost: number | string }>(
    `SELECT dep AS deployment, sum(effective_cost) AS cost FROM (${windowRows(r.db, w)})
     WHERE day >= ${firstDayOf(w.from)} AND dep != ''
     GROUP BY dep ORDER BY cost DESC, dep LIMIT ${Math.max(0, Math.floor(w.limit))}`,
  );
  return rows.map((x) => ({ deployment: String(x.deployment), costUsd: Number(x.cost) }));
}

/**
 * Spend per service and UTC day of the `limit` services with the most spend, with each day's top
 * resource (the most spend; the first in byte order among equals), its spend, and its spend in
 * that service over the `trailingDays` days before. Two reads: the days with their top resource,
 * then the daily spend of just those (service, resource) pairs.
 */
export async function costByServiceDay(
  r: ClickHouseReader,
  w: CostWindow & { limit: number; trailingDays: number },
): Promise<ServiceDay[]> {
  const d = firstDayOf(w.from);
  const services = `SELECT service_name FROM (${windowRows(r.db, w)}) WHERE day >= ${d}
     GROUP BY service_name ORDER BY sum(effective_cost) DESC, service_name LIMIT ${Math.max(0, Math.floor(w.limit))}`;
  const rows = await r.query<Record<string, string | number>>(
    `SELECT service_name, day, sum(c) AS spend, argMin(key, tuple(-c, key)) AS top, max(c) AS top_usd FROM (
       SELECT service_name, day, key, sum(effective_cost) AS c FROM (${windowRows(r.db, w)})
       WHERE day >= ${d} AND service_name IN (${services}) GROUP BY service_name, day, key
     ) GROUP BY service_name, day ORDER BY service_name, day`,
  );
  const days: ServiceDay[] = rows.map((x) => {
    const topUsd = Number(x.top_usd);
    return {
      service: String(x.service_name),
      day: Number(x.day) * 1000,
      spendUsd: Number(x.spend),
      top: topUsd > 0 ? String(x.top) : '',
      topUsd: Math.max(topUsd, 0),
      topTrailingUsd: 0,
    };
  });
  // The daily spend of each day's top resource, summed over the days before it.
  const pairKey = (service: string, key: string) => JSON.stringify([service, key]);
  const pairs = [...new Set(days.filter((x) => x.top !== '').map((x) => pairKey(x.service, x.top)))].map(
    (k) => JSON.parse(k) as [string, string],
  );
  const spendOn = new Map<string, number>();
  for (const list of sqlLists(pairs, ([service, key]) => `(${sqlString(service)}, ${sqlString(key)})`)) {
    const spent = await r.query<Record<string, string | number>>(
      `SELECT service_name, key, day, sum(effective_cost) AS c FROM (${windowRows(r.db, w)})
       WHERE day >= ${d} AND (service_name, key) IN (${list}) GROUP BY service_name, key, day`,
    );
    for (const x of spent) spendOn.set(`${pairKey(String(x.service_name), String(x.key))}@${Number(x.day)}`, Number(x.c));
  }
  const trailing = Math.max(0, Math.floor(w.trailingDays));
  for (const x of days) {
    if (x.top === '') continue;
    let sum = 0;
    for (let back = trailing; back >= 1; back--) sum += spendOn.get(`${pairKey(x.service, x.top)}@${x.day / 1000 - back * DAY}`) ?? 0;
    x.topTrailingUsd = sum;
  }
  return days;
}

/**
 * Cost of each of these resources in the window, with its first row's service and type and the
 * first `instance_type` and `deployment` tags (rows by day, then SKU); resources without rows on
 * the window's days are left out, but for their last `deployment` tag.
 */
export async function costOfResources(r: ClickHouseReader, w: CostWindow & { ids: readonly string[] }): Promise<CostResource[]> {
  const ids = [...new Set(w.ids.filter((id) => id !== ''))].sort();
  const d = firstDayOf(w.from);
  const out: CostResource[] = [];
  for (const list of sqlLists(ids, sqlString)) {
    const rows = await r.query<Record<string, string | number>>(
      `SELECT resource_id, countIf(day >= ${d}) AS n, sumIf(effective_cost, day >= ${d}) AS cost,
              argMinIf(service_name, tuple(day, sku_id), day >= ${d}) AS service_name,
              argMinIf(resource_type, tuple(day, sku_id), day >= ${d}) AS resource_type,
              argMinIf(itype, tuple(day, sku_id), day >= ${d} AND itype != '') AS instance_type,
              argMinIf(dep, tuple(day, sku_id), day >= ${d} AND dep != '') AS deployment,
              argMaxIf(dep, tuple(day, sku_id), dep != '') AS tagged_deployment
       FROM (${windowRows(r.db, w, ` AND resource_id IN (${list})`)})
       GROUP BY resource_id ORDER BY resource_id`,
    );
    for (const x of rows) {
      const res: CostResource = {
        resourceId: String(x.resource_id),
        rowsInWindow: Number(x.n),
        costUsd: Number(x.cost),
        serviceName: String(x.service_name),
        resourceType: String(x.resource_type),
      };
      if (x.instance_type) res.instanceType = String(x.instance_type);
      if (x.deployment) res.deployment = String(x.deployment);
      if (x.tagged_deployment) res.taggedDeployment = String(x.tagged_deployment);
      out.push(res);
    }
  }
  return out;
}
