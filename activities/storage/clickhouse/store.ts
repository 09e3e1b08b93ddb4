/**
 * ClickHouse access: the client, schema migrations, inserts and the queries the collector,
 * gate, reports and agents need. Schema and SQL run on ClickHouse 18.16 (Debian) and on current
 * releases: no query parameters, LowCardinality, DateTime64 or JSON functions. Values reach SQL
 * only through `sqlString` / `sqlId`, which validate and escape. Row types are in rows.ts, insert
 * blocks in insert-blocks.ts, the queries that reduce scores in score-queries.ts.
 */
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import type { Check } from '../../../common/types.js';
import { wellFormed } from '../../../domain/collector/record.js';
import type { ServiceDay } from '../../../domain/agents/cost/summary.js';
import type { VersionAggregates } from '../../../domain/gate/baseline.js';
import {
  type CostResource,
  type CostTotals,
  type CostWindow,
  costByDeployment,
  costByServiceDay,
  costOfResources,
  costTotals,
} from './cost-queries.js';
import { insertIsolatingRefused, partitionBlocks, utcDayKey, utcMonthKey } from './insert-blocks.js';
import { applyMigrations, CLICKHOUSE_MIGRATIONS, latestCostSnapshots, type MigrateOptions } from './migrations.js';
import { type CostUsageRow, type InteractionRow, type MetricSampleRow, type ScoreRow, unixSeconds } from './rows.js';
import {
  aggregateScores,
  checkFilter,
  latestScoredVersions,
  type ScoreAggregate,
  type ScoreTrends,
  type ScoreTrendsQuery,
  scoreTrends,
  versionAggregates,
  type VersionAggregatesQuery,
  versionCoverage,
  type VersionCoverageQuery,
  type VersionCoverageRows,
  versionFilter,
  type VersionSelection,
} from './score-queries.js';
import { SqlValueError, sqlId, sqlIdList, sqlLists, sqlString } from './sql.js';
import { compareCodePoints } from '../../../domain/infra/series-builder.js';

/** One statement the store sent: its SQL (for an insert, the INSERT with its format) and rows. */
export interface StatementTrace {
  sql: string;
  rows?: number;
}

export interface ClickHouseStoreOptions {
  /** Called with every statement before it is sent (tests render and replay the product's SQL). */
  onStatement?: (s: StatementTrace) => void;
}

const SURROGATE = /[\uD800-\uDFFF]/;

/** A series' labels but `le` (labels are canonical JSON, keys sorted): the buckets of one histogram share it. */
/** A connection reset before any answer (ECONNRESET, "socket hang up"), as a reused keep-alive socket fails. */
function isReusedSocketReset(e: unknown): boolean {
  const err = e as { code?: unknown; message?: unknown } | null;
  return err?.code === 'ECONNRESET' || (typeof err?.message === 'string' && /socket hang up/i.test(err.message));
}

const BUT_LE = `replaceRegexpOne(labels, '"le":"[^"]*",?', '')`;

/** A count or collection version as SQL: a non-negative safe integer, else a SqlValueError. */
function count(n: number, what: string): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new SqlValueError(`${what} ${String(n).slice(0, 32)} is not a non-negative integer`);
  return String(n);
}

/** The row with lone surrogates in its strings replaced by U+FFFD (the row itself when it has none). */
function wellFormedRow(row: unknown): unknown {
  if (!row || typeof row !== 'object') return row;
  const entries = Object.entries(row);
  if (!entries.some(([, v]) => typeof v === 'string' && SURROGATE.test(v))) return row;
  return Object.fromEntries(entries.map(([k, v]) => [k, typeof v === 'string' ? wellFormed(v) : v]));
}

export class ClickHouseStore {
  readonly client: ClickHouseClient;
  private readonly onStatement?: (s: StatementTrace) => void;
  constructor(
    url: string,
    readonly db: string,
    opts: ClickHouseStoreOptions = {},
  ) {
    const u = new URL(url);
    this.onStatement = opts.onStatement;
    this.client = createClient({
      url: `${u.protocol}//${u.host}`,
      username: decodeURIComponent(u.username) || 'default',
      password: decodeURIComponent(u.password),
      request_timeout: 600_000,
      // Failures are handled (retried, isolated or reported) by the callers: no client logging.
      log: { level: ClickHouseLogLevel.OFF },
      // ClickHouse 18.16 rejects settings it does not know; send none by default.
      clickhouse_settings: {},
    });
  }

  /** Apply the pending schema migrations (activities/storage/clickhouse/migrations.ts). */
  async migrate(opts: MigrateOptions = {}): Promise<number[]> {
    return applyMigrations({ db: this.db, exec: (sql) => this.exec(sql), select: (sql) => this.query(sql) }, opts);
  }

  /** The versions of the schema migrations applied to this database, in order. */
  async appliedMigrations(): Promise<number[]> {
    const rows = await this.query<{ version: string | number }>(
      `SELECT DISTINCT version FROM ${this.db}.schema_migrations WHERE event = 'applied' ORDER BY version`,
    );
    return rows.map((r) => Number(r.version));
  }

  /** The newest schema version this code knows. */
  static get schemaVersion(): number {
    return Math.max(...CLICKHOUSE_MIGRATIONS.map((m) => m.version));
  }

  async ping(): Promise<boolean> {
    const r = await this.client.ping();
    return r.success;
  }

  private async exec(sql: string): Promise<void> {
    this.onStatement?.({ sql });
    await this.client.command({ query: sql });
  }

  /**
   * A read. A connection the server closed while the client still held it for reuse (its
   * keep-alive ran out while this process was busy: the client's idle-socket timer only runs when
   * the event loop does) fails with "socket hang up" before any answer; a read is safe to send
   * again, once, on a new connection.
   */
  async query<T>(sql: string): Promise<T[]> {
    this.onStatement?.({ sql });
    const read = async () => (await (await this.client.query({ query: sql, format: 'JSONEachRow' })).json()) as T[];
    try {
      return await read();
    } catch (e) {
      if (!isReusedSocketReset(e)) throw e;
      return read();
    }
  }

  /**
   * Texts are written well-formed: a lone UTF-16 surrogate (from a reply's JSON escape, or a text
   * cut inside a pair) becomes U+FFFD, since UTF-8 cannot hold it and the server refuses the
   * whole block for it.
   */
  private async insert(table: string, values: readonly unknown[]): Promise<void> {
    this.onStatement?.({ sql: `INSERT INTO ${this.db}.${table} FORMAT JSONEachRow`, rows: values.length });
    await this.client.insert({ table: `${this.db}.${table}`, values: values.map(wellFormedRow), format: 'JSONEachRow' });
  }

  /**
   * Insert rows; when the server refuses a block for its data, find the rows it refuses by
   * bisection and insert the others. Returns the refused rows with the server's reason. A
   * refusal that is not about particular rows (every row refused, or too many attempts) is
   * thrown, as are connection errors: the caller retries.
   */
  async insertIsolatingBad<T>(table: 'interactions' | 'scores', rows: T[]): Promise<Array<{ row: T; reason: string }>> {
    return insertIsolatingRefused(table, rows, (t, values) => this.insert(t, values));
  }

  async insertScores(rows: ScoreRow[]): Promise<void> {
    for (const block of partitionBlocks(rows, (r) => utcMonthKey(r.interaction_ts), Infinity)) await this.insert('scores', block);
  }

  /** The stored interactions with these ids (one copy each; texts included). */
  async interactionsByIds(deployment: string, ids: readonly string[]): Promise<InteractionRow[]> {
    if (!ids.length) return [];
    const rows = await this.query<InteractionRow>(
      `SELECT deployment, id, model_version, toUnixTimestamp(ts) AS ts, prompt, response, context, has_context,
              metadata, source, cycle_id, ver
       FROM ${this.db}.interactions
       WHERE deployment = ${sqlId(deployment, 'deployment')} AND id IN (${sqlIdList(ids)})
       ORDER BY id, ver LIMIT 1 BY id`,
    );
    return rows.map((r) => ({ ...r, ts: Number(r.ts), has_context: Number(r.has_context), ver: Number(r.ver) }));
  }

  /** Stored interactions per model version of a deployment, of one version or a list of them (for coverage: how many of them were scored). */
  async interactionsPerVersion(deployment: string, modelVersion?: string | readonly string[]): Promise<Record<string, number>> {
    if (Array.isArray(modelVersion) && !modelVersion.length) return {};
    const rows = await this.query<{ model_version: string; n: string }>(
      `SELECT model_version, uniqExact(id) AS n FROM ${this.db}.interactions
       WHERE deployment = ${sqlId(deployment, 'deployment')} ${versionFilter(modelVersion)}
       GROUP BY model_version ORDER BY model_version`,
    );
    return Object.fromEntries(rows.map((r) => [r.model_version, Number(r.n)]));
  }

  /** Characters of text (prompt, response, context) of these stored interactions, for budget estimates. */
  async textChars(deployment: string, ids: readonly string[]): Promise<{ interactions: number; chars: number }> {
    if (!ids.length) return { interactions: 0, chars: 0 };
    const rows = await this.query<{ n: string; chars: string }>(
      `SELECT count() AS n, sum(length(prompt) + length(response) + length(context)) AS chars FROM (
         SELECT prompt, response, context FROM ${this.db}.interactions
         WHERE deployment = ${sqlId(deployment, 'deployment')} AND id IN (${sqlIdList(ids)})
         ORDER BY id, ver LIMIT 1 BY id)`,
    );
    return { interactions: Number(rows[0]?.n ?? 0), chars: Number(rows[0]?.chars ?? 0) };
  }

  /**
   * The checks already stored (any status) for these interactions by this judge and these prompt
   * versions: id → checks. One query per batch; no FINAL (any copy of a row counts).
   */
  async storedChecks(q: {
    deployment: string;
    ids: readonly string[];
    judge: string;
    promptVersions: Record<Check, string>;
  }): Promise<Map<string, Set<Check>>> {
    const out = new Map<string, Set<Check>>();
    if (!q.ids.length) return out;
    const rows = await this.query<{ interaction_id: string; check_name: Check }>(
      `SELECT DISTINCT interaction_id, check_name FROM ${this.db}.scores
       WHERE deployment = ${sqlId(q.deployment, 'deployment')} AND interaction_id IN (${sqlIdList(q.ids)})
         AND judge = ${sqlString(q.judge)} AND (${checkFilter(q.promptVersions)})`,
    );
    for (const r of rows) {
      const set = out.get(r.interaction_id) ?? new Set<Check>();
      set.add(r.check_name);
      out.set(r.interaction_id, set);
    }
    return out;
  }

  async countScores(deployment: string, opts: { status?: 'ok' | 'failed'; final?: boolean } = {}): Promise<number> {
    const rows = await this.query<{ n: string }>(
      `SELECT count() AS n FROM ${this.db}.scores ${opts.final === false ? '' : 'FINAL'}
       WHERE deployment = ${sqlId(deployment, 'deployment')}${opts.status ? ` AND status = ${sqlString(opts.status)}` : ''}`,
    );
    return Number(rows[0]?.n ?? 0);
  }

  async countInteractions(deployment: string): Promise<number> {
    const rows = await this.query<{ n: string }>(
      `SELECT count() AS n FROM ${this.db}.interactions FINAL WHERE deployment = ${sqlId(deployment, 'deployment')}`,
    );
    return Number(rows[0]?.n ?? 0);
  }

  /** Per model version (one, a list, or all) and check: row counts, mean/median/p90 of the primary score and flagged rows (see score-queries.ts). */
  async aggregateScores(deployment: string, modelVersion?: string | readonly string[]): Promise<ScoreAggregate[]> {
    return aggregateScores(this, deployment, modelVersion);
  }

  /** The `limit` most recently scored model versions of a deployment and how many have scores (see score-queries.ts). */
  async latestScoredVersions(deployment: string, limit: number): Promise<VersionSelection> {
    return latestScoredVersions(this, deployment, limit);
  }

  /** Stored and scored interactions of some model versions and of all (see score-queries.ts). */
  async versionCoverage(q: VersionCoverageQuery): Promise<VersionCoverageRows> {
    return versionCoverage(this, q);
  }

  /** Every deployment and model version with scores of interactions in [from, to], with its newest interaction time. */
  async scoredVersions(from: string, to: string): Promise<Array<{ deployment: string; model_version: string; last_ts: number }>> {
    const rows = await this.query<{ deployment: string; model_version: string; last_ts: string | number }>(
      `SELECT deployment, model_version, max(toUnixTimestamp(interaction_ts)) AS last_ts FROM ${this.db}.scores
       WHERE interaction_ts >= toDateTime(${unixSeconds(from)}) AND interaction_ts <= toDateTime(${unixSeconds(to)})
       GROUP BY deployment, model_version ORDER BY deployment, last_ts, model_version`,
    );
    return rows.map((r) => ({ deployment: String(r.deployment), model_version: String(r.model_version), last_ts: Number(r.last_ts) }));
  }

  /** Per-check aggregates of one model version's good scores, whole or over a window (see score-queries.ts). */
  async versionAggregates(q: VersionAggregatesQuery): Promise<VersionAggregates> {
    return versionAggregates(this, q);
  }

  /** Score trends of a deployment per model version, check and time bucket (see score-queries.ts). */
  async scoreTrends(q: ScoreTrendsQuery): Promise<ScoreTrends> {
    return scoreTrends(this, q);
  }

  /**
   * Rows of one collection of a FOCUS source. They are read once the collection is recorded as
   * completed (`completeCostSnapshot`), never before: a collection that stops half-way leaves its
   * source's previous rows what is read.
   */
  async insertCostRows(rows: CostUsageRow[]): Promise<void> {
    for (const block of partitionBlocks(rows, (r) => utcMonthKey(r.charge_period_start), 10_000)) await this.insert('cost_usage', block);
  }

  /**
   * Record collection `ver` of a FOCUS source as completed, with its row count, once its last row
   * is inserted: from then on it is what is read of the source (unless a later collection has
   * completed). The source's older rows (older collections, collections that died half-way) are
   * then deleted: a mutation, which runs asynchronously, and readers never depend on it having
   * run. Nothing is deleted when there is nothing older.
   */
  async completeCostSnapshot(source: string, ver: number, rows: number, o: { bad?: number; fingerprint?: string } = {}): Promise<void> {
    const v = count(ver, 'ver');
    await this.exec(
      `INSERT INTO ${this.db}.cost_snapshots (source, ver, rows, completed_at, bad, fingerprint)
       SELECT ${sqlString(source)}, ${v}, ${count(rows, 'rows')}, now(), ${count(o.bad ?? 0, 'bad')}, ${sqlString(o.fingerprint ?? '')}`,
    );
    // Older than the latest completed collection, which is this one unless a collection of the
    // source that ran beside it completed with a higher version: then this one's rows go too.
    const latest = (await this.latestCostSnapshot(source))?.ver ?? ver;
    const older = `source = ${sqlString(source)} AND ver < ${count(Math.max(latest, ver), 'ver')}`;
    const left = await this.query<{ rows: string | number; snapshots: string | number }>(
      `SELECT (SELECT count() FROM ${this.db}.cost_usage WHERE ${older}) AS rows,
              (SELECT count() FROM ${this.db}.cost_snapshots WHERE ${older}) AS snapshots`,
    );
    if (Number(left[0]?.rows ?? 0) > 0) await this.exec(`ALTER TABLE ${this.db}.cost_usage DELETE WHERE ${older}`);
    if (Number(left[0]?.snapshots ?? 0) > 0) await this.exec(`ALTER TABLE ${this.db}.cost_snapshots DELETE WHERE ${older}`);
  }

  /** The latest completed collection of a FOCUS source, if any. */
  async latestCostSnapshot(source: string): Promise<{ ver: number; rows: number; bad: number; fingerprint: string } | undefined> {
    const r = await this.query<{ ver: string | number; rows: string | number; bad: string | number; fingerprint: string }>(
      `SELECT ver, rows, bad, fingerprint FROM ${this.db}.cost_snapshots WHERE source = ${sqlString(source)} ORDER BY ver DESC LIMIT 1`,
    );
    const x = r[0];
    return x && { ver: Number(x.ver), rows: Number(x.rows), bad: Number(x.bad), fingerprint: x.fingerprint };
  }

  /**
   * Delete FOCUS rows: with `ver`, those of one collection of each source (one that failed: they
   * were never read); without, every row and recorded collection of these sources (unregistered).
   * Mutations, run asynchronously; nothing is sent for sources without such rows.
   */
  async deleteCostRows(q: { sources: readonly string[]; ver?: number }): Promise<void> {
    for (const list of sqlLists([...new Set(q.sources)], sqlString)) {
      const which = `source IN (${list})${q.ver === undefined ? '' : ` AND ver = ${count(q.ver, 'ver')}`}`;
      const left = await this.query<{ rows: string | number; snapshots: string | number }>(
        `SELECT (SELECT count() FROM ${this.db}.cost_usage WHERE ${which}) AS rows,
                (SELECT count() FROM ${this.db}.cost_snapshots WHERE ${which}) AS snapshots`,
      );
      // A failed collection was never recorded; a recorded one is deleted only with its source.
      if (q.ver === undefined && Number(left[0]?.snapshots ?? 0) > 0) {
        await this.exec(`ALTER TABLE ${this.db}.cost_snapshots DELETE WHERE ${which}`);
      }
      if (Number(left[0]?.rows ?? 0) > 0) await this.exec(`ALTER TABLE ${this.db}.cost_usage DELETE WHERE ${which}`);
    }
  }

  async insertMetricSamples(rows: MetricSampleRow[]): Promise<void> {
    for (const block of partitionBlocks(rows, (r) => utcDayKey(r.ts), 20_000)) await this.insert('metric_samples', block);
  }

  /**
   * Daily cost per resource, SKU and service in [from, to), days in UTC, the first `limit` by day,
   * resource and SKU (what the cost agent read before it read `costTotals` and the like; kept for
   * workflows recorded then).
   */
  async dailyCosts(from: string, to: string, opts: { limit?: number } = {}): Promise<Array<Omit<CostUsageRow, 'source' | 'ver'>>> {
    const limit = opts.limit === undefined ? '' : ` LIMIT ${Math.max(0, Math.floor(opts.limit))}`;
    const rows = await this.query<Record<string, unknown>>(
      `SELECT toUnixTimestamp(toStartOfDay(charge_period_start, 'UTC')) AS day, resource_id, resource_type, service_name, region_id,
              sku_id, any(consumed_unit) AS consumed_unit, any(tags) AS tags,
              sum(billed_cost) AS billed_cost, sum(effective_cost) AS effective_cost, sum(consumed_quantity) AS consumed_quantity
       FROM ${this.db}.cost_usage
       WHERE ${latestCostSnapshots(this.db)}
         AND charge_period_start >= toDateTime(${unixSeconds(from)}) AND charge_period_start < toDateTime(${unixSeconds(to)})
       GROUP BY day, resource_id, resource_type, service_name, region_id, sku_id
       ORDER BY day, resource_id, sku_id${limit}`,
    );
    return rows.map((r) => ({
      charge_period_start: Number(r.day),
      charge_period_end: Number(r.day) + 86_400,
      billed_cost: Number(r.billed_cost),
      effective_cost: Number(r.effective_cost),
      resource_id: String(r.resource_id),
      resource_type: String(r.resource_type),
      service_name: String(r.service_name),
      region_id: String(r.region_id),
      sku_id: String(r.sku_id),
      consumed_quantity: Number(r.consumed_quantity),
      consumed_unit: String(r.consumed_unit),
      tags: String(r.tags),
    }));
  }

  /** Totals of the cost rows of a window: spend, days, services, deployments (see cost-queries.ts). */
  async costTotals(w: CostWindow): Promise<CostTotals> {
    return costTotals(this, w);
  }

  /** Spend per `deployment` tag in a window, the `limit` with the most (see cost-queries.ts). */
  async costByDeployment(w: CostWindow & { limit: number }): Promise<Array<{ deployment: string; costUsd: number }>> {
    return costByDeployment(this, w);
  }

  /** Spend per service and UTC day with each day's top resource, of the `limit` services with the most spend (see cost-queries.ts). */
  async costByServiceDay(w: CostWindow & { limit: number; trailingDays: number }): Promise<ServiceDay[]> {
    return costByServiceDay(this, w);
  }

  /** Cost, service, type and tags of these resources in a window (see cost-queries.ts). */
  async costOfResources(w: CostWindow & { ids: readonly string[] }): Promise<CostResource[]> {
    return costOfResources(this, w);
  }

  /**
   * Series of the given metric names per source and metric in [from, to] (by source in byte
   * order, then metric): `series` counts metric and labels (what reading them at a step returns
   * is at most series × steps rows), `groups` counts labels but `le` (a histogram's buckets are
   * one group).
   */
  async metricSeriesCounts(q: {
    metrics: string[];
    sources: string[];
    from: string;
    to: string;
  }): Promise<Array<{ source: string; metric: string; series: number; groups: number }>> {
    if (!q.metrics.length || !q.sources.length) return [];
    const names = q.metrics.map((m) => sqlString(m)).join(', ');
    const out: Array<{ source: string; metric: string; series: number; groups: number }> = [];
    for (const list of sqlLists([...new Set(q.sources)], sqlString)) {
      const rows = await this.query<{ source: string; metric: string; series: string | number; groups: string | number }>(
        `SELECT source, metric, uniqExact(labels) AS series, uniqExact(${BUT_LE}) AS groups FROM ${this.db}.metric_samples
         WHERE source IN (${list}) AND metric IN (${names})
           AND ts >= toDateTime(${unixSeconds(q.from)}) AND ts <= toDateTime(${unixSeconds(q.to)})
         GROUP BY source, metric ORDER BY source, metric`,
      );
      for (const r of rows)
        out.push({ source: String(r.source), metric: String(r.metric), series: Number(r.series), groups: Number(r.groups) });
    }
    return out.sort((a, b) => compareCodePoints(a.source, b.source) || compareCodePoints(a.metric, b.metric));
  }

  /**
   * Samples of the given metric names in [from, to]: the last value of each series in each step
   * bucket (buckets at multiples of the step since the epoch), by source, metric, labels and time.
   * With `groups`, only the first `groups.perMetric` label groups (labels but `le`, so whole
   * histograms) of each metric that have samples in [groups.from, groups.to]. A sample whose value
   * is no finite number (NaN, a Prometheus staleness marker, ±Inf: ClickHouse answers them as
   * null) is no sample: read as 0 it looked like a counter reset. Each row also has the time of
   * the series' last sample in the bucket (`last`) and, when it has several there, their mean
   * spacing (`spacing`, seconds): gauges count at a step only for the series still reporting at
   * its end.
   */
  async metricSamples(q: {
    metrics: string[];
    sources: string[];
    from: string;
    to: string;
    stepSeconds: number;
    groups?: { perMetric: number; from: string; to: string };
  }): Promise<Array<{ ts: number; source: string; metric: string; labels: string; value: number; last: number; spacing?: number }>> {
    if (!q.metrics.length || !q.sources.length) return [];
    const names = q.metrics.map((m) => sqlString(m)).join(', ');
    const sources = q.sources.map((x) => sqlString(x)).join(', ');
    const step = Math.max(1, Math.floor(q.stepSeconds));
    const only = q.groups
      ? `
         AND (metric, ${BUT_LE}) IN (
           SELECT metric, g FROM (
             SELECT metric, ${BUT_LE} AS g FROM ${this.db}.metric_samples
             WHERE source IN (${sources}) AND metric IN (${names})
               AND ts >= toDateTime(${unixSeconds(q.groups.from)}) AND ts <= toDateTime(${unixSeconds(q.groups.to)})
             GROUP BY metric, g ORDER BY metric, g LIMIT ${Math.max(0, Math.floor(q.groups.perMetric))} BY metric))`
      : '';
    const rows = await this.query<Record<string, unknown>>(
      `SELECT intDiv(toUnixTimestamp(ts), ${step}) * ${step} AS t, source, metric, labels, argMax(value, ts) AS value,
         toUnixTimestamp(max(ts)) AS last, if(count() > 1, (last - toUnixTimestamp(min(ts))) / (count() - 1), 0) AS spacing
       FROM ${this.db}.metric_samples FINAL
       WHERE source IN (${sources}) AND metric IN (${names})
         AND ts >= toDateTime(${unixSeconds(q.from)}) AND ts <= toDateTime(${unixSeconds(q.to)})${only}
       GROUP BY t, source, metric, labels ORDER BY source, metric, labels, t`,
    );
    return rows.flatMap((r) => {
      const value = r.value === null || r.value === '' ? Number.NaN : Number(r.value);
      return Number.isFinite(value)
        ? [
            {
              ts: Number(r.t),
              source: String(r.source),
              metric: String(r.metric),
              labels: String(r.labels),
              value,
              last: Number(r.last),
              ...(Number(r.spacing) > 0 ? { spacing: Number(r.spacing) } : {}),
            },
          ]
        : [];
    });
  }

  /** Size of one of the store's tables: active parts, rows and bytes on disk. */
  async tableStats(
    table: 'interactions' | 'scores' | 'score_daily' | 'cost_usage' | 'metric_samples',
  ): Promise<{ parts: number; rows: number; bytes: number }> {
    const rows = await this.query<{ parts: string; rows: string; bytes: string }>(
      `SELECT count() AS parts, sum(rows) AS rows, sum(bytes_on_disk) AS bytes FROM system.parts
       WHERE database = ${sqlString(this.db)} AND table = ${sqlString(table)} AND active`,
    );
    const r = rows[0];
    return { parts: Number(r?.parts ?? 0), rows: Number(r?.rows ?? 0), bytes: Number(r?.bytes ?? 0) };
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
