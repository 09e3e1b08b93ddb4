/**
 * Infrastructure collection: read the registered sources (FinOps FOCUS exports, `/metrics`
 * endpoints, Prometheus' query_range) into ClickHouse, where the agents read them.
 */
import { randomInt } from 'node:crypto';
import path from 'node:path';
import { z } from 'zod';
import { redact, secretsOf } from '../../common/secrets.js';
import { raise } from '../../common/failures.js';
import { formatZodError, httpUrlSchema } from '../../common/types.js';
import { inParallel } from '../../domain/collector/collection.js';
import type { ActivityDeps } from '../deps.js';
import { heartbeat } from '../heartbeat.js';
import { type MetricSampleRow, unixSeconds } from '../storage/clickhouse/rows.js';
import * as repo from '../storage/postgres/agents.js';
import { type BadRow, FocusError, focusFingerprint, streamFocusDirectory } from './focus.js';
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
const INFRA_KINDS: readonly InfraKind[] = infraSourceSchema.options.map((o) => o.shape.kind.value);

export interface InfraSource {
  id: string;
  config: InfraSourceConfig;
  lastCollectedTo?: string;
}

export interface CollectOutcome {
  id: string;
  /** 'unknown' when the stored configuration no longer parses. */
  kind: InfraKind | 'unknown';
  rows: number;
  /** Bad rows or samples, all counted. */
  bad: number;
  /** The first bad rows with their position and reason (at most BAD_SAMPLES_RETURNED). */
  badSamples?: BadRow[];
  /** A FOCUS export unchanged since its latest completed collection: not read again (`rows` 0, `bad` as then). */
  unchanged?: true;
  /** The step a Prometheus source was caught up at, when coarser than 15 s. */
  stepSeconds?: number;
  error?: string;
}

/** Sources one analysis collects at once (each holds a connection and up to a chunk of data). */
export const SOURCES_IN_FLIGHT = 8;
/** Source ids one listing returns at most. */
export const MAX_SOURCE_PAGE = 1_000;

/** A stored source, or why its configuration no longer parses (a row edited by hand, or written by another version). */
function parseSource(row: repo.InfraSourceRow): InfraSource | { error: string } {
  const parsed = infraSourceSchema.safeParse(row.config);
  if (parsed.success) return { id: row.id, config: parsed.data, lastCollectedTo: row.lastCollectedTo };
  return {
    error: `its stored configuration is invalid (${formatZodError(parsed.error)}); register it again with \`optiinfra infra add ${row.id} …\``,
  };
}

/** Bad rows a collection outcome names (it counts them all): outcomes cross Temporal, so they stay small. */
export const BAD_SAMPLES_RETURNED = 5;
/** Steps per series one query_range of a collection asks for (Prometheus refuses more than 11,000). */
export const CHUNK_POINTS = 240;
/** Largest query_range answer one chunk reads; a larger one is split in two in time. */
export const CHUNK_MAX_BYTES = 16 * 1024 * 1024;
/** Points per series one collection stores at most; a source further behind is caught up at a coarser step. */
export const MAX_COLLECT_POINTS = 5_760;
/** Prometheus' answers to a query too large to evaluate: its resolution limit and its sample limit. */
const TOO_MANY_POINTS = /exceeded maximum resolution|too many samples/i;

/** The step a range of `seconds` is collected at: 15 s, or coarser so it holds at most MAX_COLLECT_POINTS steps. */
export function collectionStep(seconds: number): number {
  return Math.max(15, Math.ceil(seconds / MAX_COLLECT_POINTS / 15) * 15);
}

let lastFocusVer = 0;
/**
 * The version of a FOCUS collection: microseconds since the epoch, the last three digits random,
 * and above the previous one of this process. Two collections of one source (two workers, an
 * activity retried while its first attempt still runs) never share one, so their rows never mix;
 * and the later collection has the higher version (versions of the previous release, in
 * milliseconds, are all lower). Safe integers until the year 2255.
 */
export function focusCollectionVer(now = Date.now()): number {
  lastFocusVer = Math.max(now * 1000 + randomInt(1000), lastFocusVer + 1);
  return lastFocusVer;
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

  /** The registered sources of these kinds; a source whose stored configuration no longer parses is an error, alone. */
  async function readSources(kinds?: InfraKind[]): Promise<{ sources: InfraSource[]; errors: string[] }> {
    const sources: InfraSource[] = [];
    const errors: string[] = [];
    for (const row of await repo.listInfraSources(db)) {
      const s = parseSource(row);
      if ('error' in s) {
        // Reported to the collections of its kind, and to all when even its kind cannot be read.
        const kind = (row.config as { kind?: unknown } | null)?.kind as InfraKind;
        if (!kinds || !INFRA_KINDS.includes(kind) || kinds.includes(kind)) errors.push(`${row.id}: ${s.error}`);
      } else if (!kinds || kinds.includes(s.config.kind)) sources.push(s);
    }
    return { sources, errors };
  }

  async function listInfraSources(kinds?: InfraKind[]): Promise<InfraSource[]> {
    return (await readSources(kinds)).sources;
  }

  /** Up to `limit` source ids after `after`, in id order (a collection pages through them). */
  async function listInfraSourceIds(input: { after?: string; limit: number }): Promise<string[]> {
    return repo.listInfraSourceIds(db, input.after, Math.max(1, Math.min(MAX_SOURCE_PAGE, Math.floor(input.limit) || 1)));
  }

  /**
   * Read one source into ClickHouse. Bad data and unreachable endpoints are reported, not thrown.
   * Nothing is held whole: a FOCUS export is inserted in batches while it is parsed, a Prometheus
   * range in chunks (see `collectPrometheus`); each batch or chunk heartbeats its progress.
   */
  async function collectInfraSource(input: { id: string }): Promise<CollectOutcome> {
    const row = await repo.getInfraSource(db, input.id);
    if (!row) raise('UnknownSource', `no infrastructure source '${input.id}'`);
    const src = parseSource(row);
    if ('error' in src) return { id: row.id, kind: 'unknown', rows: 0, bad: 0, error: src.error };
    const c = src.config;
    const ver = Date.now();
    let progress: Record<string, unknown> = {};
    const note = (p: Record<string, unknown>) => {
      progress = p;
      heartbeat(p);
    };
    try {
      if (c.kind === 'focus') return await collectFocus(src.id, c.path, note);
      if (c.kind === 'prometheus') {
        const r = await collectPrometheus(src, c.url, ver, (p) => note({ source: src.id, ...p }));
        return { id: src.id, kind: c.kind, rows: r.rows, bad: r.bad, ...(r.step > 15 ? { stepSeconds: r.step } : {}) };
      }
      const now = new Date();
      const samples = await scrapeMetrics(c.url);
      const rows = samples
        .filter((x) => x.metric && Number.isFinite(x.value))
        .map((x) => ({ ts: unixSeconds(x.ts), source: src.id, metric: x.metric, labels: canonicalLabels(x.labels), value: x.value, ver }));
      note({ source: src.id, scraped: rows.length });
      await ch.insertMetricSamples(rows);
      await repo.markInfraCollected(db, src.id, now.toISOString());
      return { id: src.id, kind: c.kind, rows: rows.length, bad: samples.length - rows.length };
    } catch (e) {
      if (e instanceof FocusError || e instanceof MetricsSourceError) {
        const done = typeof progress.rows === 'number' ? progress.rows : 0;
        return { id: src.id, kind: c.kind, rows: done, bad: 0, error: clean(e.message) };
      }
      throw e;
    }
  }

  /**
   * A FOCUS source read whole, as one collection: its rows are inserted in batches while the
   * export is parsed, each numbered, under a version of the collection's own, and the collection
   * is recorded as completed after its last batch. From then on its rows are what is read of the
   * source, every one (rows sharing resource, SKU, period and service are distinct line items),
   * and nothing of the source's earlier collections: an export re-issued with rows removed or
   * corrected replaces the previous one whole. A collection that stops half-way (a broken file,
   * the store failing, the worker killed) is never read and the previous one stays; its rows are
   * deleted when it fails here, else with the source's older rows once a later one completes.
   */
  async function collectFocus(id: string, dir: string, note: (p: Record<string, unknown>) => void): Promise<CollectOutcome> {
    // Taken before reading: a file changed while it is read changes it, so the next collection reads it again.
    const fingerprint = await focusFingerprint(dir);
    const last = await ch.latestCostSnapshot(id);
    if (last?.fingerprint === fingerprint) {
      // The export is as its latest completed collection read it: nothing to read or replace
      // (exports change a few times a day; collections run every few minutes).
      note({ source: id, unchanged: true });
      return { id, kind: 'focus', rows: 0, bad: last.bad, unchanged: true };
    }
    const ver = focusCollectionVer();
    let seq = 0;
    let r: Awaited<ReturnType<typeof streamFocusDirectory>>;
    try {
      r = await streamFocusDirectory(
        dir,
        (batch) =>
          ch.insertCostRows(
            batch.map((x) => ({
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
              source: id,
              ver,
              seq: seq++,
            })),
          ),
        { onProgress: (p) => note({ source: id, file: path.basename(p.file), rows: p.rows, bad: p.bad }) },
      );
    } catch (e) {
      // Best effort: when the store is what failed, the next completed collection deletes them.
      await ch.deleteCostRows({ sources: [id], ver }).catch(() => undefined);
      throw e;
    }
    await ch.completeCostSnapshot(id, ver, r.rows, { bad: r.badCount, fingerprint });
    return {
      id,
      kind: 'focus',
      rows: r.rows,
      bad: r.badCount,
      ...(r.bad.length ? { badSamples: r.bad.slice(0, BAD_SAMPLES_RETURNED) } : {}),
    };
  }

  /**
   * A Prometheus source's samples since it was last collected (the last hour the first time), in
   * chunks of at most CHUNK_POINTS steps: each chunk is one query_range, inserted, recorded as
   * collected (so a retried or timed-out collection resumes after it) and heartbeaten before the
   * next is asked. A source behind by more than MAX_COLLECT_POINTS steps of 15 s (days without a
   * collection) is caught up at a coarser step, so no request nears Prometheus' 11,000 points per
   * series and one collection stores at most MAX_COLLECT_POINTS points per series. A chunk whose
   * answer exceeds CHUNK_MAX_BYTES, or that Prometheus finds too large, is split in two in time.
   */
  async function collectPrometheus(
    src: InfraSource,
    url: string,
    ver: number,
    onProgress: (p: { chunk: number; collectedTo: string; rows: number; bad: number }) => void,
  ): Promise<{ rows: number; bad: number; step: number }> {
    const nowS = Math.floor(Date.now() / 1000);
    const fromS = Math.floor(Date.parse(src.lastCollectedTo ?? new Date((nowS - 3600) * 1000).toISOString()) / 1000);
    const step = collectionStep(nowS - fromS);
    let rows = 0;
    let bad = 0;
    let chunk = 0;
    const ranges: Array<[number, number]> = [];
    for (let t = fromS; t <= nowS; t += step * CHUNK_POINTS) ranges.push([t, Math.min(nowS, t + step * (CHUNK_POINTS - 1))]);
    while (ranges.length) {
      const [a, b] = ranges.shift()!;
      let series: Awaited<ReturnType<typeof queryRange>>;
      try {
        series = await queryRange(
          url,
          PROMETHEUS_SELECTOR,
          { start: String(a), end: String(b), stepSeconds: step },
          { maxBytes: CHUNK_MAX_BYTES, timeoutMs: 60_000 },
        );
      } catch (e) {
        const split =
          e instanceof MetricsSourceError && (e.tooLarge || (e.reason === 'prometheus-error' && TOO_MANY_POINTS.test(e.message)));
        if (split && b - a >= step) {
          const mid = a + Math.floor((b - a) / step / 2) * step;
          ranges.unshift([a, mid], [mid + step, b]);
          continue;
        }
        throw e;
      }
      const out: MetricSampleRow[] = [];
      for (const s of series) {
        const metric = s.metric.__name__ ?? '';
        const labels = canonicalLabels(s.metric);
        for (const [t, v] of s.values) {
          if (metric && Number.isFinite(v)) out.push({ ts: Math.floor(t), source: src.id, metric, labels, value: v, ver });
          else bad++;
        }
      }
      await ch.insertMetricSamples(out);
      rows += out.length;
      chunk++;
      const collectedTo = new Date(b * 1000).toISOString();
      await repo.markInfraCollected(db, src.id, collectedTo);
      onProgress({ chunk, collectedTo, rows, bad });
    }
    return { rows, bad, step };
  }

  /** Collect every source of these kinds; what failed is reported as warnings. */
  async function collectKinds(kinds: InfraKind[]): Promise<{ sources: InfraSource[]; errors: string[] }> {
    const { sources, errors } = await readSources(kinds);
    const outcomes = await inParallel(sources, SOURCES_IN_FLIGHT, (s) => collectInfraSource({ id: s.id }));
    return { sources, errors: [...errors, ...outcomes.filter((o) => o.error).map((o) => `${o.id}: ${o.error}`)] };
  }

  return { listInfraSources, listInfraSourceIds, collectInfraSource, collectKinds };
}

export type InfraActivities = Pick<
  ReturnType<typeof createInfraActivities>,
  'listInfraSources' | 'listInfraSourceIds' | 'collectInfraSource'
>;
