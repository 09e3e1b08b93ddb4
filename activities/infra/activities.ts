/**
 * Infrastructure collection: read the registered sources (FinOps FOCUS exports, `/metrics`
 * endpoints, Prometheus' query_range) into ClickHouse, where the agents read them.
 */
import { z } from 'zod';
import { redact, secretsOf } from '../../common/secrets.js';
import { raise } from '../../common/failures.js';
import { httpUrlSchema } from '../../common/types.js';
import type { ActivityDeps } from '../deps.js';
import { unixSeconds } from '../storage/clickhouse/rows.js';
import * as repo from '../storage/postgres/agents.js';
import { FocusError, readFocusDirectory } from './focus.js';
import { MetricsSourceError, queryRange, scrapeMetrics } from './prometheus.js';

export const infraSourceSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('focus'), path: z.string().min(1) }),
  z.object({
    kind: z.literal('scrape'),
    url: httpUrlSchema('metrics url'),
    /** The host's id in the cost data and its instance type, to price recommendations. */
    resourceId: z.string().optional(),
    instanceType: z.string().optional(),
  }),
  z.object({
    kind: z.literal('prometheus'),
    url: httpUrlSchema('metrics url'),
    resourceId: z.string().optional(),
    instanceType: z.string().optional(),
  }),
]);
export type InfraSourceConfig = z.output<typeof infraSourceSchema>;
export type InfraKind = InfraSourceConfig['kind'];

export interface InfraSource {
  id: string;
  config: InfraSourceConfig;
  lastCollectedTo?: string;
}

export interface CollectOutcome {
  id: string;
  kind: InfraKind;
  rows: number;
  bad: number;
  error?: string;
}

/** Series scraped directly are one sample per scrape; older data is read from ClickHouse. */
const PROMETHEUS_SELECTOR = `{__name__=~"vllm:.*|DCGM_FI_.*|node_cpu_seconds_total|node_memory_MemTotal_bytes|node_memory_MemAvailable_bytes"}`;

const canonicalLabels = (l: Record<string, string>) =>
  JSON.stringify(
    Object.fromEntries(
      Object.entries(l)
        .filter(([k]) => k !== '__name__')
        .sort(([a], [b]) => a.localeCompare(b)),
    ),
  );

export function createInfraActivities(deps: ActivityDeps) {
  const { config, ch, db } = deps;
  const clean = (s: string) => redact(s, secretsOf(config));

  async function listInfraSources(kinds?: InfraKind[]): Promise<InfraSource[]> {
    return (await repo.listInfraSources(db))
      .map((row) => ({ id: row.id, config: infraSourceSchema.parse(row.config), lastCollectedTo: row.lastCollectedTo }))
      .filter((s) => !kinds || kinds.includes(s.config.kind));
  }

  /** Read one source into ClickHouse. Bad data and unreachable endpoints are reported, not thrown. */
  async function collectInfraSource(input: { id: string }): Promise<CollectOutcome> {
    const src = (await listInfraSources()).find((s) => s.id === input.id);
    if (!src) raise('UnknownSource', `no infrastructure source '${input.id}'`);
    const c = src.config;
    const ver = Date.now();
    try {
      if (c.kind === 'focus') {
        const r = await readFocusDirectory(c.path);
        await ch.insertCostRows(
          r.rows.map((x) => ({
            charge_period_start: unixSeconds(x.chargePeriodStart),
            charge_period_end: unixSeconds(x.chargePeriodEnd),
            billed_cost: x.billedCost,
            effective_cost: x.effectiveCost,
            resource_id: x.resourceId,
            resource_type: x.resourceType,
            service_name: x.serviceName,
            region_id: x.regionId,
            sku_id: x.skuId,
            consumed_quantity: x.consumedQuantity,
            consumed_unit: x.consumedUnit,
            tags: JSON.stringify(x.tags),
            source: src.id,
            ver,
          })),
        );
        return { id: src.id, kind: c.kind, rows: r.rows.length, bad: r.bad.length };
      }
      const now = new Date();
      const samples =
        c.kind === 'scrape'
          ? await scrapeMetrics(c.url)
          : (
              await queryRange(c.url, PROMETHEUS_SELECTOR, {
                start: src.lastCollectedTo ?? new Date(now.getTime() - 3_600_000).toISOString(),
                end: now.toISOString(),
                stepSeconds: 15,
              })
            ).flatMap((series) =>
              series.values.map(([t, v]) => ({
                ts: new Date(t * 1000).toISOString(),
                metric: series.metric.__name__ ?? '',
                labels: series.metric,
                value: v,
              })),
            );
      const rows = samples
        .filter((x) => x.metric && Number.isFinite(x.value))
        .map((x) => ({ ts: unixSeconds(x.ts), source: src.id, metric: x.metric, labels: canonicalLabels(x.labels), value: x.value, ver }));
      await ch.insertMetricSamples(rows);
      await repo.markInfraCollected(db, src.id, now.toISOString());
      return { id: src.id, kind: c.kind, rows: rows.length, bad: samples.length - rows.length };
    } catch (e) {
      if (e instanceof FocusError || e instanceof MetricsSourceError) {
        return { id: src.id, kind: c.kind, rows: 0, bad: 0, error: clean(e.message) };
      }
      throw e;
    }
  }

  /** Collect every source of these kinds; what failed is reported as warnings. */
  async function collectKinds(kinds: InfraKind[]): Promise<{ sources: InfraSource[]; errors: string[] }> {
    const sources = await listInfraSources(kinds);
    const outcomes = await Promise.all(sources.map((s) => collectInfraSource({ id: s.id })));
    return { sources, errors: outcomes.filter((o) => o.error).map((o) => `${o.id}: ${o.error}`) };
  }

  return { listInfraSources, collectInfraSource, collectKinds };
}

export type InfraActivities = Pick<ReturnType<typeof createInfraActivities>, 'listInfraSources' | 'collectInfraSource'>;
