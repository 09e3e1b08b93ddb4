/**
 * ClickHouse access: schema, escaping, inserts and the few queries the collector needs.
 * Schema and SQL run on ClickHouse 18.16 (Debian) and on current releases: no query
 * parameters, LowCardinality, DateTime64 or JSON functions. Values reach SQL only through
 * `sqlString` / `sqlId`, which validate and escape.
 */
import { ClickHouseError, ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { ID_PATTERN, type Check } from '../../../common/types.js';
import type { VersionAggregates } from '../../../domain/gate/baseline.js';

export type { CheckAggregate, DimensionStats, VersionAggregates } from '../../../domain/gate/baseline.js';

/**
 * Whether the server answered with an error (as opposed to a connection problem): current
 * servers' errors parse as ClickHouseError, 18.16's keep their "Code: N, ..." text.
 */
export function isServerRefusal(e: unknown): boolean {
  return e instanceof ClickHouseError || (e instanceof Error && /^Code: \d+/.test(e.message));
}

/** Inserts one refused block may cost while its bad rows are isolated. */
const MAX_ISOLATION_INSERTS = 64;

export class SqlValueError extends Error {
  override name = 'SqlValueError';
}

/** Quote a string literal for ClickHouse SQL. */
export function sqlString(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** Quote an id after checking it against ID_PATTERN: ids never carry SQL metacharacters. */
export function sqlId(s: string, what = 'id'): string {
  if (!ID_PATTERN.test(s)) throw new SqlValueError(`${what} '${s.slice(0, 64)}' is not a valid identifier`);
  return sqlString(s);
}

export function sqlIdList(ids: readonly string[], what = 'id'): string {
  return ids.map((i) => sqlId(i, what)).join(', ');
}

/** Seconds since epoch, as ClickHouse DateTime accepts it in JSONEachRow independent of server time zone. */
export const unixSeconds = (iso: string | Date): number =>
  Math.floor((typeof iso === 'string' ? Date.parse(iso) : iso.getTime()) / 1000);

export interface InteractionRow {
  deployment: string;
  id: string;
  model_version: string;
  ts: number;
  prompt: string;
  response: string;
  context: string;
  has_context: number;
  metadata: string;
  source: string;
  cycle_id: string;
  ver: number;
}

export interface ScoreRow {
  deployment: string;
  model_version: string;
  interaction_id: string;
  interaction_ts: number;
  check_name: Check;
  prompt_version: string;
  judge: string;
  status: 'ok' | 'failed' | 'abstained';
  reason: string;
  score: number | null;
  coherence: number | null;
  relevance: number | null;
  accuracy: number | null;
  completeness: number | null;
  confidence: number | null;
  hate_speech: number | null;
  violence: number | null;
  profanity: number | null;
  reasoning: string;
  truncated: number;
  latency_ms: number;
  prompt_tokens: number;
  completion_tokens: number;
  attempts: number;
  scored_at: number;
  ver: number;
}

export function schemaStatements(db: string): string[] {
  return [
    `CREATE DATABASE IF NOT EXISTS ${db}`,
    `CREATE TABLE IF NOT EXISTS ${db}.interactions (
      deployment String, id String, model_version String, ts DateTime,
      prompt String, response String, context String, has_context UInt8, metadata String,
      source String, cycle_id String, ver UInt64
    ) ENGINE = ReplacingMergeTree(ver) PARTITION BY toYYYYMM(ts) ORDER BY (deployment, id)`,
    `CREATE TABLE IF NOT EXISTS ${db}.scores (
      deployment String, model_version String, interaction_id String, interaction_ts DateTime,
      check_name String, prompt_version String, judge String, status String, reason String,
      score Nullable(Float64), coherence Nullable(Float64), relevance Nullable(Float64),
      accuracy Nullable(Float64), completeness Nullable(Float64), confidence Nullable(Float64),
      hate_speech Nullable(Float64), violence Nullable(Float64), profanity Nullable(Float64),
      reasoning String, truncated UInt8, latency_ms UInt32, prompt_tokens UInt32, completion_tokens UInt32,
      attempts UInt16, scored_at DateTime, ver UInt64
    ) ENGINE = ReplacingMergeTree(ver) PARTITION BY toYYYYMM(interaction_ts)
      ORDER BY (deployment, check_name, interaction_id, prompt_version, judge)`,
    // FinOps FOCUS rows; a re-read file replaces its rows (same key).
    `CREATE TABLE IF NOT EXISTS ${db}.cost_usage (
      charge_period_start DateTime, charge_period_end DateTime, billed_cost Float64, effective_cost Float64,
      resource_id String, resource_type String, service_name String, region_id String, sku_id String,
      consumed_quantity Float64, consumed_unit String, tags String, source String, ver UInt64
    ) ENGINE = ReplacingMergeTree(ver) PARTITION BY toYYYYMM(charge_period_start)
      ORDER BY (resource_id, sku_id, charge_period_start, service_name)`,
    // Prometheus samples (scraped or from query_range); a series is metric + canonical labels.
    `CREATE TABLE IF NOT EXISTS ${db}.metric_samples (
      ts DateTime, source String, metric String, labels String, value Float64, ver UInt64
    ) ENGINE = ReplacingMergeTree(ver) PARTITION BY toYYYYMMDD(ts)
      ORDER BY (source, metric, labels, ts)`,
  ];
}

export interface CostUsageRow {
  charge_period_start: number;
  charge_period_end: number;
  billed_cost: number;
  effective_cost: number;
  resource_id: string;
  resource_type: string;
  service_name: string;
  region_id: string;
  sku_id: string;
  consumed_quantity: number;
  consumed_unit: string;
  tags: string;
  source: string;
  ver: number;
}

export interface MetricSampleRow {
  ts: number;
  source: string;
  metric: string;
  labels: string;
  value: number;
  ver: number;
}

export interface ScoreAggregate {
  model_version: string;
  check_name: Check;
  judge: string;
  rows: number;
  ok: number;
  failed: number;
  mean: number | null;
  p50: number | null;
  p90: number | null;
  flagged: number;
}

export class ClickHouseStore {
  readonly client: ClickHouseClient;
  constructor(
    url: string,
    readonly db: string,
  ) {
    const u = new URL(url);
    this.client = createClient({
      url: `${u.protocol}//${u.host}`,
      username: decodeURIComponent(u.username) || 'default',
      password: decodeURIComponent(u.password),
      request_timeout: 60_000,
      // Failures are handled (retried, isolated or reported) by the callers: no client logging.
      log: { level: ClickHouseLogLevel.OFF },
      // ClickHouse 18.16 rejects settings it does not know; send none by default.
      clickhouse_settings: {},
    });
  }

  async migrate(): Promise<void> {
    for (const stmt of schemaStatements(this.db)) await this.client.command({ query: stmt });
  }

  async ping(): Promise<boolean> {
    const r = await this.client.ping();
    return r.success;
  }

  async query<T>(sql: string): Promise<T[]> {
    const rs = await this.client.query({ query: sql, format: 'JSONEachRow' });
    return (await rs.json()) as T[];
  }

  /**
   * Insert rows; when the server refuses the block for its data, find the rows it refuses by
   * bisection and insert the others. Returns the refused rows with the server's reason. A
   * refusal that is not about particular rows (every row refused, or too many attempts) is
   * thrown, as are connection errors: the caller retries.
   */
  async insertIsolatingBad<T>(table: 'interactions' | 'scores', rows: T[]): Promise<Array<{ row: T; reason: string }>> {
    const refused: Array<{ row: T; reason: string }> = [];
    let attempts = 0;
    let first: unknown;
    const insert = (values: T[]) => this.client.insert({ table: `${this.db}.${table}`, values, format: 'JSONEachRow' });
    const go = async (part: T[]): Promise<void> => {
      if (!part.length) return;
      attempts++;
      try {
        await insert(part);
      } catch (e) {
        if (!isServerRefusal(e) || attempts > MAX_ISOLATION_INSERTS) throw e;
        first ??= e;
        if (part.length === 1) {
          refused.push({ row: part[0]!, reason: (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 300) });
          return;
        }
        const mid = Math.ceil(part.length / 2);
        await go(part.slice(0, mid));
        await go(part.slice(mid));
      }
    };
    await go(rows);
    if (rows.length && refused.length === rows.length) throw first;
    return refused;
  }

  async insertScores(rows: ScoreRow[]): Promise<void> {
    if (rows.length) await this.client.insert({ table: `${this.db}.scores`, values: rows, format: 'JSONEachRow' });
  }

  /** The stored interactions with these ids (one copy each; texts included). */
  async interactionsByIds(deployment: string, ids: readonly string[]): Promise<InteractionRow[]> {
    if (!ids.length) return [];
    const rows = await this.query<InteractionRow>(
      `SELECT deployment, id, model_version, toUnixTimestamp(ts) AS ts, prompt, response, context, has_context,
              metadata, source, cycle_id, ver
       FROM ${this.db}.interactions
       WHERE deployment = ${sqlId(deployment, 'deployment')} AND id IN (${sqlIdList(ids)})
       ORDER BY ver LIMIT 1 BY id`,
    );
    return rows.map((r) => ({ ...r, ts: Number(r.ts), has_context: Number(r.has_context), ver: Number(r.ver) }));
  }

  /**
   * The checks already stored (any status) for these interactions by this judge and these prompt
   * versions: id → checks. One query per batch; no FINAL (any copy of a row counts).
   */
  async storedChecks(q: { deployment: string; ids: readonly string[]; judge: string; promptVersions: Record<Check, string> }): Promise<Map<string, Set<Check>>> {
    const out = new Map<string, Set<Check>>();
    if (!q.ids.length) return out;
    const checks = (Object.keys(q.promptVersions) as Check[])
      .map((c) => `(check_name = ${sqlString(c)} AND prompt_version = ${sqlString(q.promptVersions[c])})`)
      .join(' OR ');
    const rows = await this.query<{ interaction_id: string; check_name: Check }>(
      `SELECT DISTINCT interaction_id, check_name FROM ${this.db}.scores
       WHERE deployment = ${sqlId(q.deployment, 'deployment')} AND interaction_id IN (${sqlIdList(q.ids)})
         AND judge = ${sqlString(q.judge)} AND (${checks})`,
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

  /**
   * Per model version and check: row counts, mean/median/p90 of the primary score over scored
   * rows, and how many were flagged (hallucination or toxicity score >= 0.5; quality < 0.5).
   */
  async aggregateScores(deployment: string, modelVersion?: string): Promise<ScoreAggregate[]> {
    const rows = await this.query<Record<string, string | number | null>>(
      `SELECT model_version, check_name, judge, count() AS rows, countIf(status = 'ok') AS ok,
              countIf(status = 'failed') AS failed,
              avgIf(assumeNotNull(score), status = 'ok') AS mean,
              quantileIf(0.5)(assumeNotNull(score), status = 'ok') AS p50,
              quantileIf(0.9)(assumeNotNull(score), status = 'ok') AS p90,
              countIf(status = 'ok' AND ((check_name = 'quality' AND assumeNotNull(score) < 0.5)
                   OR (check_name != 'quality' AND assumeNotNull(score) >= 0.5))) AS flagged
       FROM ${this.db}.scores FINAL
       WHERE deployment = ${sqlId(deployment, 'deployment')}
         ${modelVersion ? `AND model_version = ${sqlId(modelVersion, 'model version')}` : ''}
       GROUP BY model_version, check_name, judge
       ORDER BY model_version, check_name, judge`,
    );
    const num = (v: unknown) => (v === null || v === undefined || Number.isNaN(Number(v)) ? null : Number(v));
    return rows.map((r) => {
      const ok = Number(r.ok);
      return {
        model_version: String(r.model_version),
        check_name: r.check_name as Check,
        judge: String(r.judge),
        rows: Number(r.rows),
        ok,
        failed: Number(r.failed),
        mean: ok ? num(r.mean) : null,
        p50: ok ? num(r.p50) : null,
        p90: ok ? num(r.p90) : null,
        flagged: Number(r.flagged),
      };
    });
  }

  /**
   * Per-check aggregates of one model version's good scores from one judge and prompt versions,
   * optionally over a window: interactions in [from, to) and/or the last N interactions.
   */
  async versionAggregates(q: {
    deployment: string;
    version: string;
    judge: string;
    promptVersions: Record<Check, string>;
    lastN?: number;
    from?: string;
    to?: string;
  }): Promise<VersionAggregates> {
    const dep = sqlId(q.deployment, 'deployment');
    const ver = sqlId(q.version, 'model version');
    const time = [
      q.from ? `ts >= toDateTime(${unixSeconds(q.from)})` : '',
      q.to ? `ts < toDateTime(${unixSeconds(q.to)})` : '',
    ].filter(Boolean);
    const inWindow =
      q.lastN || time.length
        ? `AND interaction_id IN (SELECT id FROM (SELECT id, ts FROM ${this.db}.interactions FINAL
             WHERE deployment = ${dep} AND model_version = ${ver} ${time.map((t) => `AND ${t}`).join(' ')}
             ORDER BY ts DESC, id DESC ${q.lastN ? `LIMIT ${Math.floor(q.lastN)}` : ''}))`
        : '';
    const checks = (Object.keys(q.promptVersions) as Check[])
      .map((c) => `(check_name = ${sqlString(c)} AND prompt_version = ${sqlString(q.promptVersions[c])})`)
      .join(' OR ');
    const scope = `deployment = ${dep} AND model_version = ${ver} AND judge = ${sqlString(q.judge)}
      AND (${checks}) ${inWindow}`;
    const where = `${scope} AND status = 'ok'`;
    const ok = "status = 'ok'";
    const rows = await this.query<Record<string, unknown>>(
      `SELECT check_name, countIf(${ok}) AS n, avgIf(assumeNotNull(score), ${ok}) AS mean,
              stddevSampIf(assumeNotNull(score), ${ok}) AS sd,
              countIf(${ok} AND assumeNotNull(score) >= 0.5) AS flagged, countIf(status = 'abstained') AS abstained,
              minIf(toUnixTimestamp(interaction_ts), ${ok}) AS first_ts, maxIf(toUnixTimestamp(interaction_ts), ${ok}) AS last_ts
       FROM ${this.db}.scores FINAL WHERE ${scope} AND status IN ('ok', 'abstained') GROUP BY check_name`,
    );
    const dims = ['score', 'coherence', 'relevance', 'accuracy', 'completeness'] as const;
    const dimRows = await this.query<Record<string, unknown>>(
      `SELECT ${dims
        .map(
          (d) =>
            `avg(assumeNotNull(${d})) AS ${d}_mean, stddevSamp(assumeNotNull(${d})) AS ${d}_sd,
             quantiles(0.1, 0.25, 0.5, 0.75, 0.9)(assumeNotNull(${d})) AS ${d}_q`,
        )
        .join(', ')}
       FROM ${this.db}.scores FINAL WHERE ${where} AND check_name = 'quality'`,
    );
    const num = (v: unknown) => {
      const n = Number(v);
      return Number.isFinite(n) ? n : 0;
    };
    const checksOut = {} as VersionAggregates['checks'];
    let first: number | undefined;
    let last: number | undefined;
    for (const r of rows) {
      const n = num(r.n);
      const abstained = num(r.abstained);
      checksOut[r.check_name as Check] = { n, mean: n ? num(r.mean) : 0, sd: n > 1 ? num(r.sd) : 0, flagged: num(r.flagged), ...(abstained ? { abstained } : {}) };
      if (n) {
        first = Math.min(first ?? Infinity, num(r.first_ts));
        last = Math.max(last ?? -Infinity, num(r.last_ts));
      }
    }
    const d0 = dimRows[0] ?? {};
    const quality: VersionAggregates['qualityDimensions'] = {};
    if ((checksOut.quality?.n ?? 0) > 0) {
      for (const d of dims) {
        const qs = (d0[`${d}_q`] as unknown[] | undefined)?.map(num) ?? [];
        quality[d === 'score' ? 'overall' : d] = {
          mean: num(d0[`${d}_mean`]),
          sd: num(d0[`${d}_sd`]),
          p10: qs[0] ?? 0,
          p25: qs[1] ?? 0,
          p50: qs[2] ?? 0,
          p75: qs[3] ?? 0,
          p90: qs[4] ?? 0,
        };
      }
    }
    return {
      checks: checksOut,
      qualityDimensions: quality,
      firstTs: first === undefined ? undefined : new Date(first * 1000).toISOString(),
      lastTs: last === undefined ? undefined : new Date(last * 1000).toISOString(),
    };
  }

  async insertCostRows(rows: CostUsageRow[]): Promise<void> {
    for (let i = 0; i < rows.length; i += 10_000) {
      await this.client.insert({ table: `${this.db}.cost_usage`, values: rows.slice(i, i + 10_000), format: 'JSONEachRow' });
    }
  }

  async insertMetricSamples(rows: MetricSampleRow[]): Promise<void> {
    for (let i = 0; i < rows.length; i += 20_000) {
      await this.client.insert({ table: `${this.db}.metric_samples`, values: rows.slice(i, i + 20_000), format: 'JSONEachRow' });
    }
  }

  /** Daily cost per resource, SKU and service in [from, to) (what the cost agent reads). */
  async dailyCosts(from: string, to: string): Promise<Array<Omit<CostUsageRow, 'source' | 'ver'>>> {
    const rows = await this.query<Record<string, unknown>>(
      `SELECT toUnixTimestamp(toStartOfDay(charge_period_start)) AS day, resource_id, resource_type, service_name, region_id,
              sku_id, any(consumed_unit) AS consumed_unit, any(tags) AS tags,
              sum(billed_cost) AS billed_cost, sum(effective_cost) AS effective_cost, sum(consumed_quantity) AS consumed_quantity
       FROM ${this.db}.cost_usage FINAL
       WHERE charge_period_start >= toDateTime(${unixSeconds(from)}) AND charge_period_start < toDateTime(${unixSeconds(to)})
       GROUP BY day, resource_id, resource_type, service_name, region_id, sku_id
       ORDER BY day, resource_id, sku_id`,
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

  /** Samples of the given metric names in [from, to]: the last value of each series in each step bucket. */
  async metricSamples(q: { metrics: string[]; sources: string[]; from: string; to: string; stepSeconds: number }): Promise<
    Array<{ ts: number; source: string; metric: string; labels: string; value: number }>
  > {
    if (!q.metrics.length || !q.sources.length) return [];
    const names = q.metrics.map((m) => sqlString(m)).join(', ');
    const sources = q.sources.map((x) => sqlString(x)).join(', ');
    const step = Math.max(1, Math.floor(q.stepSeconds));
    const rows = await this.query<Record<string, unknown>>(
      `SELECT intDiv(toUnixTimestamp(ts), ${step}) * ${step} AS t, source, metric, labels, argMax(value, ts) AS value
       FROM ${this.db}.metric_samples FINAL
       WHERE source IN (${sources}) AND metric IN (${names})
         AND ts >= toDateTime(${unixSeconds(q.from)}) AND ts <= toDateTime(${unixSeconds(q.to)})
       GROUP BY t, source, metric, labels ORDER BY source, metric, labels, t`,
    );
    return rows.map((r) => ({
      ts: Number(r.t),
      source: String(r.source),
      metric: String(r.metric),
      labels: String(r.labels),
      value: Number(r.value),
    }));
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
