/**
 * The store's queries over scores that reduce them: per-version aggregates for the CLI, the
 * baseline aggregates of the gate (exact quantiles of the quality dimensions), score trends
 * for reports and the cycle lag's newest scored interaction. Each runs on a reader (the store)
 * and builds its SQL only from `sqlString` / `sqlId` values and numbers.
 */
import type { Check } from '../../../common/types.js';
import type { VersionAggregates } from '../../../domain/gate/baseline.js';
import type { TrendPoint } from '../../../domain/report/types.js';
import { DAILY_DIMENSIONS } from './migrations.js';
import { unixSeconds } from './rows.js';
import { sqlId, sqlIdList, sqlString } from './sql.js';

/** What the queries need of the store: its database and a way to read rows. */
export interface ClickHouseReader {
  readonly db: string;
  query<T>(sql: string): Promise<T[]>;
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

export interface ScoreTrends {
  bucketSeconds: number;
  points: TrendPoint[];
  /** Model versions with scores in the window; the points are of at most `maxVersions` of them. */
  versions: number;
}

/** Most model versions a trend follows: one colour each, and a chart a person can read. */
export const MAX_TREND_VERSIONS = 10;

/** Bucket sizes of score trends, in seconds: 1 s to 30 days. */
export const TREND_BUCKETS = [1, 5, 10, 30, 60, 300, 900, 1800, 3600, 10_800, 21_600, 43_200, 86_400, 604_800, 2_592_000] as const;

/** The smallest bucket that cuts a span of `spanSeconds` into at most `maxBuckets` buckets. */
export function trendBucket(spanSeconds: number, maxBuckets = 60): number {
  // Buckets are aligned on multiples of their size: a span of k buckets may touch k + 1.
  const want = Math.max(0, spanSeconds) / Math.max(1, Math.floor(maxBuckets) - 1);
  return TREND_BUCKETS.find((b) => b >= want) ?? TREND_BUCKETS[TREND_BUCKETS.length - 1]!;
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
/**
 * A mean or deviation of rows that exist: a NaN from corrupted rows (ClickHouse writes it as
 * null in JSON) stays NaN (null through Temporal), so the gate's look sees malformed statistics
 * and decides nothing, rather than a baseline of 0.
 */
const stat = (v: unknown) => (v === undefined ? 0 : v === null ? Number.NaN : Number(v));

const QUALITY_DIMENSIONS = ['score', ...DAILY_DIMENSIONS] as const;

/** `AND model_version …` for one version or a list of them (each validated); '' for every version. */
export function versionFilter(modelVersion: string | readonly string[] | undefined): string {
  if (modelVersion === undefined || modelVersion === '') return '';
  if (typeof modelVersion === 'string') return `AND model_version = ${sqlId(modelVersion, 'model version')}`;
  return modelVersion.length ? `AND model_version IN (${sqlIdList(modelVersion, 'model version')})` : 'AND 0';
}

/** Model versions a listing shows: the most recent ones, and how many there are in all. */
export interface VersionSelection {
  /** Newest first. */
  versions: string[];
  total: number;
}

/**
 * The `limit` model versions of a deployment with the newest scored interactions (any status),
 * newest first, and how many versions have scores. Read from the per-day aggregates
 * (`score_daily`), so neither the rows nor the list of every version reach the caller.
 */
export async function latestScoredVersions(ch: ClickHouseReader, deployment: string, limit: number): Promise<VersionSelection> {
  const dep = sqlId(deployment, 'deployment');
  const rows = await ch.query<{ model_version: string }>(
    `SELECT model_version, maxMerge(last_ts) AS last FROM ${ch.db}.score_daily WHERE deployment = ${dep}
       GROUP BY model_version ORDER BY last DESC, model_version LIMIT ${Math.max(1, Math.floor(limit))}`,
  );
  const total = await ch.query<{ n: string | number }>(
    `SELECT uniqExact(model_version) AS n FROM ${ch.db}.score_daily WHERE deployment = ${dep}`,
  );
  return { versions: rows.map((r) => String(r.model_version)), total: Number(total[0]?.n ?? 0) };
}

/** Rows of the given checks, each with its own prompt version. */
export function checkFilter(promptVersions: Record<Check, string>): string {
  return (Object.keys(promptVersions) as Check[])
    .map((c) => `(check_name = ${sqlString(c)} AND prompt_version = ${sqlString(promptVersions[c])})`)
    .join(' OR ');
}

/**
 * Per model version and check: row counts, mean/median/p90 of the primary score over scored
 * rows (exact, interpolated between the nearest ranks), and how many were flagged
 * (hallucination or toxicity score >= 0.5; quality < 0.5).
 */
export async function aggregateScores(
  ch: ClickHouseReader,
  deployment: string,
  modelVersion?: string | readonly string[],
): Promise<ScoreAggregate[]> {
  if (Array.isArray(modelVersion) && !modelVersion.length) return [];
  const ok = "status = 'ok'";
  // Value at index p·(n−1) of the sorted scores `s`, interpolated like `quantile` on few values.
  const q = (p: number) => {
    const idx = `(${p} * (length(s) - 1))`;
    const a = `arrayElement(s, toUInt64(floor(${idx})) + 1)`;
    const b = `arrayElement(s, toUInt64(floor(${idx})) + 2)`;
    const f = `(${idx} - floor(${idx}))`;
    return `if(length(s) = 0, nan, if(toUInt64(floor(${idx})) + 1 >= length(s), ${a}, (1 - ${f}) * ${a} + ${f} * ${b}))`;
  };
  const rows = await ch.query<Record<string, string | number | null>>(
    `SELECT model_version, check_name, judge, rows, ok, failed, abstained, mean, ${q(0.5)} AS p50, ${q(0.9)} AS p90, flagged
       FROM (
         SELECT model_version, check_name, judge, count() AS rows, countIf(${ok}) AS ok,
                countIf(status = 'failed') AS failed, countIf(status = 'abstained') AS abstained,
                avgIf(assumeNotNull(score), ${ok}) AS mean,
                arraySort(groupArrayIf(assumeNotNull(score), ${ok})) AS s,
                countIf(${ok} AND ((check_name = 'quality' AND assumeNotNull(score) < 0.5)
                     OR (check_name != 'quality' AND assumeNotNull(score) >= 0.5))) AS flagged
         FROM ${ch.db}.scores FINAL
         WHERE deployment = ${sqlId(deployment, 'deployment')}
           ${versionFilter(modelVersion)}
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

/** Which scores `versionAggregates` reduces: one version's, for one judge and its prompt versions, whole or over a window. */
export interface VersionAggregatesQuery {
  deployment: string;
  version: string;
  judge: string;
  promptVersions: Record<Check, string>;
  lastN?: number;
  from?: string;
  to?: string;
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
export async function versionAggregates(ch: ClickHouseReader, q: VersionAggregatesQuery): Promise<VersionAggregates> {
  const dep = sqlId(q.deployment, 'deployment');
  const ver = sqlId(q.version, 'model version');
  const scope = `deployment = ${dep} AND model_version = ${ver} AND judge = ${sqlString(q.judge)}`;
  const time = [q.from ? `ts >= toDateTime(${unixSeconds(q.from)})` : '', q.to ? `ts < toDateTime(${unixSeconds(q.to)})` : ''].filter(
    Boolean,
  );
  // The window: the last N interactions of the version (each id once: copies of an interaction
  // are identical), or interactions in [from, to), whose time every score row carries.
  const window = q.lastN
    ? `AND interaction_id IN (SELECT id FROM (SELECT id, ts FROM ${ch.db}.interactions
           WHERE deployment = ${dep} AND model_version = ${ver} ${time.map((t) => `AND ${t}`).join(' ')}
           ORDER BY ts DESC, id DESC LIMIT 1 BY id LIMIT ${Math.floor(q.lastN)}))`
    : time.map((t) => `AND interaction_${t}`).join(' ');
  const windowed = window !== '';
  const moments = QUALITY_DIMENSIONS.map((d) =>
    windowed
      ? `avg(assumeNotNull(${d})) AS ${d}_avg, stddevSamp(assumeNotNull(${d})) AS ${d}_sdev`
      : `avgMerge(${d}_mean) AS ${d}_avg, stddevSampMerge(${d}_sd) AS ${d}_sdev`,
  ).join(',\n              ');
  const groups = await ch.query<Record<string, unknown>>(
    windowed
      ? `SELECT check_name, status, count() AS n, avg(assumeNotNull(score)) AS mean, stddevSamp(assumeNotNull(score)) AS sd,
              countIf(assumeNotNull(score) >= 0.5) AS flagged_n,
              min(toUnixTimestamp(interaction_ts)) AS first_at, max(toUnixTimestamp(interaction_ts)) AS last_at,
              ${moments}
           FROM ${ch.db}.scores
           WHERE ${scope} AND (${checkFilter(q.promptVersions)}) AND status IN ('ok', 'abstained') ${window}
           GROUP BY check_name, status`
      : `SELECT check_name, status, countMerge(rows) AS n, avgMerge(score_mean) AS mean, stddevSampMerge(score_sd) AS sd,
              sumMerge(flagged) AS flagged_n, minMerge(first_ts) AS first_at, maxMerge(last_ts) AS last_at,
              ${moments}
           FROM ${ch.db}.score_daily
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
      mean: n ? stat(g?.mean) : 0,
      sd: n > 1 ? stat(g?.sd) : 0,
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
    const qs = await ch.query<Record<string, unknown>>(
      `SELECT ${QUALITY_DIMENSIONS.map((d) => `quantilesExact(${levels})(assumeNotNull(${d})) AS ${d}_q`).join(', ')}
         FROM ${ch.db}.scores
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

/** Which scores `scoreTrends` follows: a deployment's, for one judge and its prompt versions, over a time range. */
export interface ScoreTrendsQuery {
  deployment: string;
  judge: string;
  promptVersions: Record<Check, string>;
  from: string;
  to: string;
  maxBuckets?: number;
  /** Most model versions followed (default MAX_TREND_VERSIONS): those scored most recently in the window. */
  maxVersions?: number;
  /** A version followed whenever it has scores in the window (the baseline's). */
  keep?: string;
}

/**
 * Score trends of a deployment: per model version, check and time bucket (interaction time,
 * UTC seconds), the scored interactions of one judge and its prompt versions, their mean score
 * and how many were flagged (score >= 0.5), over interactions in [from, to). At most
 * `maxVersions` versions are followed, chosen in the database (`keep`, then the most recently
 * scored), with the number of versions scored in the window: a deployment with thousands of
 * versions gives a bounded answer. The bucket is the smallest of TREND_BUCKETS that gives at
 * most `maxBuckets` buckets over the followed versions' span. No FINAL, as for baselines: the
 * collector writes one row per version, check, interaction, prompt version and judge.
 */
export async function scoreTrends(ch: ClickHouseReader, q: ScoreTrendsQuery): Promise<ScoreTrends> {
  const where = `deployment = ${sqlId(q.deployment, 'deployment')} AND judge = ${sqlString(q.judge)} AND (${checkFilter(q.promptVersions)})
         AND status = 'ok' AND interaction_ts >= toDateTime(${unixSeconds(q.from)}) AND interaction_ts < toDateTime(${unixSeconds(q.to)})`;
  const counted = await ch.query<{ n: string; versions: string | number }>(
    `SELECT count() AS n, uniqExact(model_version) AS versions FROM ${ch.db}.scores WHERE ${where}`,
  );
  const n = Number(counted[0]?.n ?? 0);
  if (!n) return { bucketSeconds: TREND_BUCKETS[0]!, points: [], versions: 0 };
  const keep = q.keep === undefined ? '' : `model_version = ${sqlId(q.keep, 'model version')} DESC, `;
  const followed = await ch.query<{ model_version: string; lo: string | number; hi: string | number }>(
    `SELECT model_version, min(toUnixTimestamp(interaction_ts)) AS lo, max(toUnixTimestamp(interaction_ts)) AS hi
       FROM ${ch.db}.scores WHERE ${where}
       GROUP BY model_version ORDER BY ${keep}hi DESC, model_version LIMIT ${Math.max(1, Math.floor(q.maxVersions ?? MAX_TREND_VERSIONS))}`,
  );
  const lo = Math.min(...followed.map((v) => Number(v.lo)));
  const hi = Math.max(...followed.map((v) => Number(v.hi)));
  const step = trendBucket(hi - lo, q.maxBuckets ?? 60);
  const rows = await ch.query<Record<string, unknown>>(
    `SELECT model_version, check_name, intDiv(toUnixTimestamp(interaction_ts), ${step}) * ${step} AS t,
              count() AS n, avg(assumeNotNull(score)) AS mean, countIf(assumeNotNull(score) >= 0.5) AS flagged
       FROM ${ch.db}.scores WHERE ${where} ${versionFilter(followed.map((v) => String(v.model_version)))}
       GROUP BY model_version, check_name, t
       ORDER BY model_version, check_name, t`,
  );
  return {
    bucketSeconds: step,
    versions: Number(counted[0]!.versions),
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

/** Coverage of a deployment's model versions: stored and scored interactions, for some versions and in all. */
export interface VersionCoverageQuery {
  deployment: string;
  /** Scored: interactions with a good quality score of this judge (any prompt version). */
  judge: string;
  /** Versions listed whenever they have interactions or scores (the ones a report charts). */
  keep: readonly string[];
  /** Versions listed besides `keep`, the most recently stored first, up to this many in all. */
  limit: number;
}

export interface VersionCoverageRows {
  versions: Array<{ version: string; stored: number; scored: number }>;
  /** Every version of the deployment: how many have stored interactions, and the sums. */
  total: { versions: number; stored: number; scored: number };
}

/**
 * Stored and scored interactions per model version for `keep` and the most recently stored
 * versions (at most max(limit, keep) rows), and the totals over every version, computed in the
 * database. Stored: distinct interaction ids per version; scored: from `score_daily`.
 */
export async function versionCoverage(ch: ClickHouseReader, q: VersionCoverageQuery): Promise<VersionCoverageRows> {
  const dep = sqlId(q.deployment, 'deployment');
  const keep = [...new Set(q.keep)];
  const limit = Math.max(1, Math.floor(q.limit), keep.length);
  const first = keep.length ? `model_version IN (${sqlIdList(keep, 'model version')}) DESC, ` : '';
  const stored = await ch.query<{ model_version: string; n: string | number }>(
    `SELECT model_version, uniqExact(id) AS n, max(ts) AS last FROM ${ch.db}.interactions WHERE deployment = ${dep}
       GROUP BY model_version ORDER BY ${first}last DESC, model_version LIMIT ${limit}`,
  );
  const storedAll = await ch.query<{ versions: string | number; stored: string | number | null }>(
    `SELECT count() AS versions, sum(n) AS stored FROM (
       SELECT model_version, uniqExact(id) AS n FROM ${ch.db}.interactions WHERE deployment = ${dep} GROUP BY model_version)`,
  );
  const names = [...new Set([...stored.map((r) => String(r.model_version)), ...keep])];
  const good = `deployment = ${dep} AND judge = ${sqlString(q.judge)} AND check_name = 'quality' AND status = 'ok'`;
  const scored = await ch.query<{ model_version: string; n: string | number }>(
    `SELECT model_version, countMerge(rows) AS n FROM ${ch.db}.score_daily WHERE ${good} ${versionFilter(names)}
       GROUP BY model_version`,
  );
  const scoredAll = await ch.query<{ n: string | number }>(`SELECT countMerge(rows) AS n FROM ${ch.db}.score_daily WHERE ${good}`);
  const storedOf = new Map(stored.map((r) => [String(r.model_version), Number(r.n)]));
  const scoredOf = new Map(scored.map((r) => [String(r.model_version), Number(r.n)]));
  return {
    versions: names
      .filter((v) => storedOf.has(v) || scoredOf.has(v))
      .sort()
      .map((v) => ({ version: v, stored: storedOf.get(v) ?? 0, scored: scoredOf.get(v) ?? 0 })),
    total: {
      versions: Number(storedAll[0]?.versions ?? 0),
      stored: Number(storedAll[0]?.stored ?? 0),
      scored: Number(scoredAll[0]?.n ?? 0),
    },
  };
}

/**
 * The time (seconds) of the newest interaction with a good score, per deployment: the cycle lag's
 * source. Read from the per-day aggregates (`score_daily`, a few rows per version and day), so
 * it stays cheap however many score rows there are.
 */
export async function newestScoredInteractions(store: ClickHouseReader): Promise<Array<{ deployment: string; lastTs: number }>> {
  const rows = await store.query<{ deployment: string; last_ts: string | number }>(
    `SELECT deployment, maxMerge(last_ts) AS last_ts FROM ${store.db}.score_daily WHERE status = 'ok' GROUP BY deployment ORDER BY deployment`,
  );
  return rows.map((r) => ({ deployment: String(r.deployment), lastTs: Number(r.last_ts) }));
}
