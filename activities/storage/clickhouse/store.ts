/**
 * ClickHouse access: schema, escaping, inserts and the few queries the collector needs.
 * Schema and SQL run on ClickHouse 18.16 (Debian) and on current releases: no query
 * parameters, LowCardinality, DateTime64 or JSON functions. Values reach SQL only through
 * `sqlString` / `sqlId`, which validate and escape.
 */
import { ClickHouseError, ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import type { Check } from '../../../common/types.js';
import type { VersionAggregates } from '../../../domain/gate/baseline.js';
import { applyMigrations, CLICKHOUSE_MIGRATIONS, DAILY_DIMENSIONS, type MigrateOptions } from './migrations.js';
import { sqlId, sqlIdList, sqlString } from './sql.js';

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

export { SqlValueError, sqlId, sqlIdList, sqlString } from './sql.js';

/** Seconds since epoch, as ClickHouse DateTime accepts it in JSONEachRow independent of server time zone. */
export const unixSeconds = (iso: string | Date): number => Math.floor((typeof iso === 'string' ? Date.parse(iso) : iso.getTime()) / 1000);

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
  /** Interactions the judge declined to score for this check. */
  abstained: number;
}

/** One point of a score trend: a model version's scored interactions of one check in one time bucket. */
export interface TrendPoint {
  model_version: string;
  check_name: Check;
  /** Start of the bucket, seconds since epoch (UTC). */
  t: number;
  n: number;
  /** Mean score of the bucket's interactions. */
  mean: number;
  /** Interactions with score >= 0.5 (hallucinated or toxic answers; for quality, not a flag). */
  flagged: number;
}

export interface ScoreTrends {
  bucketSeconds: number;
  points: TrendPoint[];
}

/** Bucket sizes of score trends, in seconds: 1 s to 30 days. */
export const TREND_BUCKETS = [1, 5, 10, 30, 60, 300, 900, 1800, 3600, 10_800, 21_600, 43_200, 86_400, 604_800, 2_592_000] as const;

/** The smallest bucket that cuts a span of `spanSeconds` into at most `maxBuckets` buckets. */
export function trendBucket(spanSeconds: number, maxBuckets = 60): number {
  // Buckets are aligned on multiples of their size: a span of k buckets may touch k + 1.
  const want = Math.max(0, spanSeconds) / Math.max(1, Math.floor(maxBuckets) - 1);
  return TREND_BUCKETS.find((b) => b >= want) ?? TREND_BUCKETS[TREND_BUCKETS.length - 1]!;
}

/** One statement the store sent: its SQL (for an insert, the INSERT with its format) and rows. */
export interface StatementTrace {
  sql: string;
  rows?: number;
}

export interface ClickHouseStoreOptions {
  /** Called with every statement before it is sent (tests render and replay the product's SQL). */
  onStatement?: (s: StatementTrace) => void;
}

/**
 * Most partitions one INSERT block touches. Current servers refuse a block over 100 partitions;
 * rows are grouped by their partition's UTC day or month, and one UTC day or month falls into
 * at most two of the server's time zone.
 */
export const MAX_PARTITIONS_PER_BLOCK = 45;

const isSeconds = (t: unknown): t is number => typeof t === 'number' && Number.isFinite(t);
/** UTC month of a time in seconds (`toYYYYMM` partitions), or one key for values that are not times. */
export const utcMonthKey = (t: unknown): string => {
  if (!isSeconds(t)) return 'other';
  const d = new Date(t * 1000);
  return `${d.getUTCFullYear()}-${d.getUTCMonth()}`;
};
/** UTC day of a time in seconds (`toYYYYMMDD` partitions). */
export const utcDayKey = (t: unknown): string => (isSeconds(t) ? String(Math.floor(t / 86_400)) : 'other');

/**
 * Split rows into insert blocks of at most `maxRows` rows and `maxKeys` partition keys, rows of
 * one partition together and in their order.
 */
export function partitionBlocks<T>(rows: readonly T[], key: (r: T) => string, maxRows: number, maxKeys = MAX_PARTITIONS_PER_BLOCK): T[][] {
  const groups = new Map<string, T[]>();
  for (const r of rows) {
    const k = key(r);
    const g = groups.get(k);
    if (g) g.push(r);
    else groups.set(k, [r]);
  }
  const blocks: T[][] = [];
  let block: T[] = [];
  let keys = 0;
  for (const g of groups.values()) {
    if (keys >= maxKeys) {
      blocks.push(block);
      block = [];
      keys = 0;
    }
    keys++;
    for (const r of g) {
      if (block.length >= maxRows) {
        blocks.push(block);
        block = [];
        keys = 1;
      }
      block.push(r);
    }
  }
  if (block.length) blocks.push(block);
  return blocks;
}

/** Quantile levels of the quality dimensions in a baseline. */
export const DIMENSION_LEVELS = [0.1, 0.25, 0.5, 0.75, 0.9] as const;

/**
 * Exact quantiles with linear interpolation between the two nearest ranks (index p·(n−1), the
 * definition of ClickHouse's `quantile` while it holds every value): the order statistics they
 * need, as `quantilesExact` levels (level (j + 0.5) / n selects the j-th smallest of n values),
 * and how to combine what it returns.
 */
export function interpolatedQuantilePlan(n: number, levels: readonly number[]) {
  const ranks: number[] = [];
  const need = (j: number) => {
    if (!ranks.includes(j)) ranks.push(j);
  };
  const at = levels.map((p) => {
    const index = Math.max(0, Math.min(n - 1, p * (n - 1)));
    const k = Math.floor(index);
    need(k);
    if (k + 1 < n) need(k + 1);
    return { index, k };
  });
  return {
    levels: ranks.map((j) => (j + 0.5) / n),
    combine(values: readonly number[]): number[] {
      const v = (j: number) => values[ranks.indexOf(j)]!;
      return at.map(({ index, k }) => {
        const a = v(k);
        if (k + 1 >= n) return a;
        const f = index - k;
        return (1 - f) * a + f * v(k + 1);
      });
    },
  };
}

const num0 = (v: unknown) => {
  const n = Number(v);
  return Number.isFinite(n) ? n : 0;
};

const QUALITY_DIMENSIONS = ['score', ...DAILY_DIMENSIONS] as const;

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

  async query<T>(sql: string): Promise<T[]> {
    this.onStatement?.({ sql });
    const rs = await this.client.query({ query: sql, format: 'JSONEachRow' });
    return (await rs.json()) as T[];
  }

  private async insert(table: string, values: readonly unknown[]): Promise<void> {
    this.onStatement?.({ sql: `INSERT INTO ${this.db}.${table} FORMAT JSONEachRow`, rows: values.length });
    await this.client.insert({ table: `${this.db}.${table}`, values: values as unknown[], format: 'JSONEachRow' });
  }

  /**
   * Insert rows; when the server refuses a block for its data, find the rows it refuses by
   * bisection and insert the others. Returns the refused rows with the server's reason. A
   * refusal that is not about particular rows (every row refused, or too many attempts) is
   * thrown, as are connection errors: the caller retries.
   */
  async insertIsolatingBad<T>(table: 'interactions' | 'scores', rows: T[]): Promise<Array<{ row: T; reason: string }>> {
    const refused: Array<{ row: T; reason: string }> = [];
    let attempts = 0;
    let first: unknown;
    const go = async (part: T[]): Promise<void> => {
      if (!part.length) return;
      attempts++;
      try {
        await this.insert(table, part);
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
    const ts = (r: T) => (r as { ts?: unknown; interaction_ts?: unknown })[table === 'interactions' ? 'ts' : 'interaction_ts'];
    for (const block of partitionBlocks(rows, (r) => utcMonthKey(ts(r)), Infinity)) await go(block);
    if (rows.length && refused.length === rows.length) throw first;
    return refused;
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

  /** Stored interactions per model version of a deployment (for coverage: how many of them were scored). */
  async interactionsPerVersion(deployment: string, modelVersion?: string): Promise<Record<string, number>> {
    const rows = await this.query<{ model_version: string; n: string }>(
      `SELECT model_version, uniqExact(id) AS n FROM ${this.db}.interactions
       WHERE deployment = ${sqlId(deployment, 'deployment')}${modelVersion ? ` AND model_version = ${sqlId(modelVersion, 'model version')}` : ''}
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

  /**
   * Per model version and check: row counts, mean/median/p90 of the primary score over scored
   * rows (exact, interpolated between the nearest ranks), and how many were flagged
   * (hallucination or toxicity score >= 0.5; quality < 0.5).
   */
  async aggregateScores(deployment: string, modelVersion?: string): Promise<ScoreAggregate[]> {
    const ok = "status = 'ok'";
    // Value at index p·(n−1) of the sorted scores `s`, interpolated like `quantile` on few values.
    const q = (p: number) => {
      const idx = `(${p} * (length(s) - 1))`;
      const a = `arrayElement(s, toUInt64(floor(${idx})) + 1)`;
      const b = `arrayElement(s, toUInt64(floor(${idx})) + 2)`;
      const f = `(${idx} - floor(${idx}))`;
      return `if(length(s) = 0, nan, if(toUInt64(floor(${idx})) + 1 >= length(s), ${a}, (1 - ${f}) * ${a} + ${f} * ${b}))`;
    };
    const rows = await this.query<Record<string, string | number | null>>(
      `SELECT model_version, check_name, judge, rows, ok, failed, abstained, mean, ${q(0.5)} AS p50, ${q(0.9)} AS p90, flagged
       FROM (
         SELECT model_version, check_name, judge, count() AS rows, countIf(${ok}) AS ok,
                countIf(status = 'failed') AS failed, countIf(status = 'abstained') AS abstained,
                avgIf(assumeNotNull(score), ${ok}) AS mean,
                arraySort(groupArrayIf(assumeNotNull(score), ${ok})) AS s,
                countIf(${ok} AND ((check_name = 'quality' AND assumeNotNull(score) < 0.5)
                     OR (check_name != 'quality' AND assumeNotNull(score) >= 0.5))) AS flagged
         FROM ${this.db}.scores FINAL
         WHERE deployment = ${sqlId(deployment, 'deployment')}
           ${modelVersion ? `AND model_version = ${sqlId(modelVersion, 'model version')}` : ''}
         GROUP BY model_version, check_name, judge
       )
       ORDER BY model_version, check_name, judge`,
    );
    const num = (v: unknown) => (v === null || v === undefined || Number.isNaN(Number(v)) ? null : Number(v));
    return rows.map((r) => {
      const okRows = Number(r.ok);
      return {
        model_version: String(r.model_version),
        check_name: r.check_name as Check,
        judge: String(r.judge),
        rows: Number(r.rows),
        ok: okRows,
        failed: Number(r.failed),
        abstained: Number(r.abstained),
        mean: okRows ? num(r.mean) : null,
        p50: okRows ? num(r.p50) : null,
        p90: okRows ? num(r.p90) : null,
        flagged: Number(r.flagged),
      };
    });
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

  /**
   * Per-check aggregates of one model version's good scores from one judge and prompt versions,
   * optionally over a window: interactions in [from, to) and/or the last N interactions.
   *
   * Counts, means, standard deviations, flagged rows and first/last times are exact. They read
   * no FINAL: the collector writes one row per version, check, interaction, prompt version and
   * judge (it reads the stored checks of a batch before judging it). A whole version is read from
   * the per-day aggregates kept by a materialized view (`score_daily`); a window from the rows.
   * Quantiles of the quality dimensions are exact too (order statistics from `quantilesExact`,
   * interpolated between the nearest ranks as `quantile` does on up to 8,192 values).
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
    const scope = `deployment = ${dep} AND model_version = ${ver} AND judge = ${sqlString(q.judge)}`;
    const time = [q.from ? `ts >= toDateTime(${unixSeconds(q.from)})` : '', q.to ? `ts < toDateTime(${unixSeconds(q.to)})` : ''].filter(
      Boolean,
    );
    // The window: the last N interactions of the version (each id once: copies of an interaction
    // are identical), or interactions in [from, to), whose time every score row carries.
    const window = q.lastN
      ? `AND interaction_id IN (SELECT id FROM (SELECT id, ts FROM ${this.db}.interactions
           WHERE deployment = ${dep} AND model_version = ${ver} ${time.map((t) => `AND ${t}`).join(' ')}
           ORDER BY ts DESC, id DESC LIMIT 1 BY id LIMIT ${Math.floor(q.lastN)}))`
      : time.map((t) => `AND interaction_${t}`).join(' ');
    const windowed = window !== '';
    const moments = QUALITY_DIMENSIONS.map((d) =>
      windowed
        ? `avg(assumeNotNull(${d})) AS ${d}_avg, stddevSamp(assumeNotNull(${d})) AS ${d}_sdev`
        : `avgMerge(${d}_mean) AS ${d}_avg, stddevSampMerge(${d}_sd) AS ${d}_sdev`,
    ).join(',\n              ');
    const groups = await this.query<Record<string, unknown>>(
      windowed
        ? `SELECT check_name, status, count() AS n, avg(assumeNotNull(score)) AS mean, stddevSamp(assumeNotNull(score)) AS sd,
              countIf(assumeNotNull(score) >= 0.5) AS flagged_n,
              min(toUnixTimestamp(interaction_ts)) AS first_at, max(toUnixTimestamp(interaction_ts)) AS last_at,
              ${moments}
           FROM ${this.db}.scores
           WHERE ${scope} AND (${checkFilter(q.promptVersions)}) AND status IN ('ok', 'abstained') ${window}
           GROUP BY check_name, status`
        : `SELECT check_name, status, countMerge(rows) AS n, avgMerge(score_mean) AS mean, stddevSampMerge(score_sd) AS sd,
              sumMerge(flagged) AS flagged_n, minMerge(first_ts) AS first_at, maxMerge(last_ts) AS last_at,
              ${moments}
           FROM ${this.db}.score_daily
           WHERE ${scope} AND (${checkFilter(q.promptVersions)}) AND status IN ('ok', 'abstained')
           GROUP BY check_name, status`,
    );
    const checksOut = {} as VersionAggregates['checks'];
    let first: number | undefined;
    let last: number | undefined;
    const okRow = (c: Check) => groups.find((g) => g.check_name === c && g.status === 'ok');
    for (const c of Object.keys(q.promptVersions) as Check[]) {
      const g = okRow(c);
      const abstained = num0(groups.find((x) => x.check_name === c && x.status === 'abstained')?.n);
      const n = num0(g?.n);
      if (!g && !abstained) continue;
      checksOut[c] = {
        n,
        mean: n ? num0(g?.mean) : 0,
        sd: n > 1 ? num0(g?.sd) : 0,
        flagged: n ? num0(g?.flagged_n) : 0,
        ...(abstained ? { abstained } : {}),
      };
      if (n) {
        first = Math.min(first ?? Infinity, num0(g?.first_at));
        last = Math.max(last ?? -Infinity, num0(g?.last_at));
      }
    }
    const quality: VersionAggregates['qualityDimensions'] = {};
    const nq = checksOut.quality?.n ?? 0;
    const g = okRow('quality');
    if (nq > 0 && g && q.promptVersions.quality !== undefined) {
      const plan = interpolatedQuantilePlan(nq, DIMENSION_LEVELS);
      const levels = plan.levels.map((l) => String(l)).join(', ');
      const qs = await this.query<Record<string, unknown>>(
        `SELECT ${QUALITY_DIMENSIONS.map((d) => `quantilesExact(${levels})(assumeNotNull(${d})) AS ${d}_q`).join(', ')}
         FROM ${this.db}.scores
         WHERE ${scope} AND check_name = 'quality' AND prompt_version = ${sqlString(q.promptVersions.quality)} AND status = 'ok' ${window}`,
      );
      for (const d of QUALITY_DIMENSIONS) {
        const values = ((qs[0]?.[`${d}_q`] as unknown[] | undefined) ?? []).map(num0);
        const [p10, p25, p50, p75, p90] = values.length === plan.levels.length ? plan.combine(values) : [0, 0, 0, 0, 0];
        quality[d === 'score' ? 'overall' : d] = {
          mean: num0(g[`${d}_avg`]),
          sd: num0(g[`${d}_sdev`]),
          p10: p10 ?? 0,
          p25: p25 ?? 0,
          p50: p50 ?? 0,
          p75: p75 ?? 0,
          p90: p90 ?? 0,
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

  /**
   * Score trends of a deployment: per model version, check and time bucket (interaction time,
   * UTC seconds), the scored interactions of one judge and its prompt versions, their mean score
   * and how many were flagged (score >= 0.5), over interactions in [from, to). The bucket is the
   * smallest of TREND_BUCKETS that gives at most `maxBuckets` buckets over the scores' span. No
   * FINAL, as for baselines: the collector writes one row per version, check, interaction,
   * prompt version and judge.
   */
  async scoreTrends(q: {
    deployment: string;
    judge: string;
    promptVersions: Record<Check, string>;
    from: string;
    to: string;
    maxBuckets?: number;
  }): Promise<ScoreTrends> {
    const where = `deployment = ${sqlId(q.deployment, 'deployment')} AND judge = ${sqlString(q.judge)} AND (${checkFilter(q.promptVersions)})
         AND status = 'ok' AND interaction_ts >= toDateTime(${unixSeconds(q.from)}) AND interaction_ts < toDateTime(${unixSeconds(q.to)})`;
    const span = await this.query<{ n: string; lo: string | number; hi: string | number }>(
      `SELECT count() AS n, min(toUnixTimestamp(interaction_ts)) AS lo, max(toUnixTimestamp(interaction_ts)) AS hi
       FROM ${this.db}.scores WHERE ${where}`,
    );
    const n = Number(span[0]?.n ?? 0);
    if (!n) return { bucketSeconds: TREND_BUCKETS[0]!, points: [] };
    const step = trendBucket(Number(span[0]!.hi) - Number(span[0]!.lo), q.maxBuckets ?? 60);
    const rows = await this.query<Record<string, unknown>>(
      `SELECT model_version, check_name, intDiv(toUnixTimestamp(interaction_ts), ${step}) * ${step} AS t,
              count() AS n, avg(assumeNotNull(score)) AS mean, countIf(assumeNotNull(score) >= 0.5) AS flagged
       FROM ${this.db}.scores WHERE ${where}
       GROUP BY model_version, check_name, t
       ORDER BY model_version, check_name, t`,
    );
    return {
      bucketSeconds: step,
      points: rows.map((r) => ({
        model_version: String(r.model_version),
        check_name: r.check_name as Check,
        t: Number(r.t),
        n: Number(r.n),
        mean: num0(r.mean),
        flagged: Number(r.flagged),
      })),
    };
  }

  async insertCostRows(rows: CostUsageRow[]): Promise<void> {
    for (const block of partitionBlocks(rows, (r) => utcMonthKey(r.charge_period_start), 10_000)) await this.insert('cost_usage', block);
  }

  async insertMetricSamples(rows: MetricSampleRow[]): Promise<void> {
    for (const block of partitionBlocks(rows, (r) => utcDayKey(r.ts), 20_000)) await this.insert('metric_samples', block);
  }

  /** Daily cost per resource, SKU and service in [from, to), days in UTC (what the cost agent reads). */
  async dailyCosts(from: string, to: string): Promise<Array<Omit<CostUsageRow, 'source' | 'ver'>>> {
    const rows = await this.query<Record<string, unknown>>(
      `SELECT toUnixTimestamp(toStartOfDay(charge_period_start, 'UTC')) AS day, resource_id, resource_type, service_name, region_id,
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
  async metricSamples(q: {
    metrics: string[];
    sources: string[];
    from: string;
    to: string;
    stepSeconds: number;
  }): Promise<Array<{ ts: number; source: string; metric: string; labels: string; value: number }>> {
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

/**
 * The time (seconds) of the newest interaction with a good score, per deployment: the cycle lag's
 * source. Read from the per-day aggregates (`score_daily`, a few rows per version and day), so
 * it stays cheap however many score rows there are.
 */
export async function newestScoredInteractions(store: ClickHouseStore): Promise<Array<{ deployment: string; lastTs: number }>> {
  const rows = await store.query<{ deployment: string; last_ts: string | number }>(
    `SELECT deployment, maxMerge(last_ts) AS last_ts FROM ${store.db}.score_daily WHERE status = 'ok' GROUP BY deployment ORDER BY deployment`,
  );
  return rows.map((r) => ({ deployment: String(r.deployment), lastTs: Number(r.last_ts) }));
}

/** Rows of the given checks, each with its own prompt version. */
function checkFilter(promptVersions: Record<Check, string>): string {
  return (Object.keys(promptVersions) as Check[])
    .map((c) => `(check_name = ${sqlString(c)} AND prompt_version = ${sqlString(promptVersions[c])})`)
    .join(' OR ');
}
