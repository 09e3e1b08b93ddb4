/**
 * Versioned ClickHouse schema. `schema_migrations` in the product's database records what was
 * applied; `applyMigrations` runs the pending ones in order under a lock every worker agrees on,
 * so two workers starting at once apply each migration once. Every migration is idempotent: one
 * interrupted half-way is run again from its start. All SQL runs on ClickHouse 18.16 and on
 * current releases.
 */
import { randomUUID } from 'node:crypto';
import { MigrationError, reasonOf } from '../migration-error.js';
import { sqlString } from './sql.js';

/** What a migration may do: run a statement, read rows. */
export interface MigrationContext {
  db: string;
  exec(sql: string): Promise<void>;
  select<T>(sql: string): Promise<T[]>;
}

export interface ChMigration {
  version: number;
  name: string;
  apply(ctx: MigrationContext): Promise<void>;
}

/** Every column of `scores`, in table order. */
export const SCORE_COLUMNS = [
  'deployment',
  'model_version',
  'interaction_id',
  'interaction_ts',
  'check_name',
  'prompt_version',
  'judge',
  'status',
  'reason',
  'score',
  'coherence',
  'relevance',
  'accuracy',
  'completeness',
  'confidence',
  'hate_speech',
  'violence',
  'profanity',
  'reasoning',
  'truncated',
  'latency_ms',
  'prompt_tokens',
  'completion_tokens',
  'attempts',
  'scored_at',
  'ver',
] as const;

const scoresColumnsDdl = `deployment String, model_version String, interaction_id String, interaction_ts DateTime,
      check_name String, prompt_version String, judge String, status String, reason String,
      score Nullable(Float64), coherence Nullable(Float64), relevance Nullable(Float64),
      accuracy Nullable(Float64), completeness Nullable(Float64), confidence Nullable(Float64),
      hate_speech Nullable(Float64), violence Nullable(Float64), profanity Nullable(Float64),
      reasoning String, truncated UInt8, latency_ms UInt32, prompt_tokens UInt32, completion_tokens UInt32,
      attempts UInt16, scored_at DateTime, ver UInt64`;

/**
 * The identity of a score row: one row per deployment, model version, judge, check, prompt
 * version and interaction. Rows of one version, judge and check are contiguous, so a baseline
 * reads only its version's rows and the quality rows apart from the others.
 */
export const SCORES_SORTING_KEY = 'deployment, model_version, judge, check_name, prompt_version, interaction_id';

/** The quality dimensions kept per day next to the primary score. */
export const DAILY_DIMENSIONS = ['coherence', 'relevance', 'accuracy', 'completeness'] as const;

/**
 * Exact per-day aggregates of `scores` per deployment, version, judge, check, prompt version
 * and status, kept by a materialized view on every insert: row count, mean and sample standard
 * deviation of the score and of each quality dimension (ClickHouse's own aggregate states, so
 * they merge to what the same aggregate over the rows gives), flagged rows (score >= 0.5),
 * first and last interaction time. `day` is days since 1970-01-01 UTC.
 */
function scoreDailyDdl(db: string): string {
  const dims = DAILY_DIMENSIONS.map(
    (d) => `${d}_mean AggregateFunction(avg, Float64), ${d}_sd AggregateFunction(stddevSamp, Float64)`,
  ).join(',\n      ');
  return `CREATE TABLE IF NOT EXISTS ${db}.score_daily (
      deployment String, model_version String, judge String, check_name String, prompt_version String, status String, day UInt32,
      rows AggregateFunction(count), score_mean AggregateFunction(avg, Float64), score_sd AggregateFunction(stddevSamp, Float64),
      flagged AggregateFunction(sum, UInt64), first_ts AggregateFunction(min, UInt32), last_ts AggregateFunction(max, UInt32),
      ${dims}
    ) ENGINE = AggregatingMergeTree() ORDER BY (deployment, model_version, judge, check_name, prompt_version, status, day)`;
}

/** The SELECT that turns score rows into `score_daily` states (the view's and the backfill's). */
function scoreDailySelect(db: string, from: string): string {
  const dims = DAILY_DIMENSIONS.map(
    (d) => `avgState(assumeNotNull(${d})) AS ${d}_mean, stddevSampState(assumeNotNull(${d})) AS ${d}_sd`,
  ).join(',\n        ');
  return `SELECT deployment, model_version, judge, check_name, prompt_version, status, intDiv(toUInt32(interaction_ts), 86400) AS day,
        countState() AS rows, avgState(assumeNotNull(score)) AS score_mean, stddevSampState(assumeNotNull(score)) AS score_sd,
        sumState(toUInt64(assumeNotNull(score) >= 0.5)) AS flagged,
        minState(toUInt32(interaction_ts)) AS first_ts, maxState(toUInt32(interaction_ts)) AS last_ts,
        ${dims}
      FROM ${db}.${from}
      GROUP BY deployment, model_version, judge, check_name, prompt_version, status, day`;
}

async function tableExists(ctx: MigrationContext, name: string): Promise<boolean> {
  const rows = await ctx.select<{ n: string }>(
    `SELECT count() AS n FROM system.tables WHERE database = ${sqlString(ctx.db)} AND name = ${sqlString(name)}`,
  );
  return Number(rows[0]?.n ?? 0) > 0;
}

async function createQuery(ctx: MigrationContext, name: string): Promise<string> {
  const rows = await ctx.select<{ q: string }>(
    `SELECT create_table_query AS q FROM system.tables WHERE database = ${sqlString(ctx.db)} AND name = ${sqlString(name)}`,
  );
  return rows[0]?.q ?? '';
}

/** Every column of `cost_usage` as migration 1 made it, in table order (migration 4 adds `seq`). */
const COST_COLUMNS = [
  'charge_period_start',
  'charge_period_end',
  'billed_cost',
  'effective_cost',
  'resource_id',
  'resource_type',
  'service_name',
  'region_id',
  'sku_id',
  'consumed_quantity',
  'consumed_unit',
  'tags',
  'source',
  'ver',
] as const;

const costColumnsDdl = `charge_period_start DateTime, charge_period_end DateTime, billed_cost Float64, effective_cost Float64,
      resource_id String, resource_type String, service_name String, region_id String, sku_id String,
      consumed_quantity Float64, consumed_unit String, tags String, source String, ver UInt64`;

/**
 * `cost_usage` since migration 4: every FOCUS row a collection read, none replacing another.
 * FOCUS has no row identity (no column of specification/columns/ in
 * FinOps-Open-Cost-and-Usage-Spec/FOCUS_Spec identifies a row): a usage row and its credit, two
 * line items of one resource and hour, tax rows without a resource, or the same row in two
 * sources all share resource, SKU, period and service. A row is its source, its collection
 * (`ver`) and its number in that collection (`seq`), which also keeps the blocks of one
 * collection distinct for a replicated table's deduplication of retried blocks.
 */
export const COST_USAGE_SORTING_KEY = 'source, ver, resource_id, sku_id, charge_period_start, seq';

function costUsageDdl(db: string, table: string): string {
  return `CREATE TABLE ${db}.${table} (
      ${costColumnsDdl}, seq UInt64
    ) ENGINE = MergeTree() PARTITION BY toYYYYMM(charge_period_start)
      ORDER BY (${COST_USAGE_SORTING_KEY})`;
}

/**
 * The collections of FOCUS sources that completed: one row each, written once its last row is
 * in. A source's rows are those of its latest completed collection (`latestCostSnapshots`).
 * `bad` counts the rows it could not use; `fingerprint` names the files it read (names, sizes,
 * modification times), so an export that has not changed since is not read again.
 */
function costSnapshotsDdl(db: string): string {
  return `CREATE TABLE IF NOT EXISTS ${db}.cost_snapshots (
      source String, ver UInt64, rows UInt64, completed_at DateTime, bad UInt64, fingerprint String
    ) ENGINE = MergeTree() ORDER BY (source, ver)`;
}

/**
 * The condition that keeps the rows of each source's latest completed collection, for a query
 * on `cost_usage` (a tuple IN a subquery, which 18.16 runs).
 */
export function latestCostSnapshots(db: string): string {
  return `(source, ver) IN (SELECT source, max(ver) FROM ${db}.cost_snapshots GROUP BY source)`;
}

/** How far back the catch-up after the copy of migration 2 looks for rows written meanwhile. */
const CATCH_UP_SECONDS = 86_400;

export const CLICKHOUSE_MIGRATIONS: readonly ChMigration[] = [
  {
    version: 1,
    name: 'interactions, scores, cost_usage, metric_samples',
    async apply({ db, exec }) {
      await exec(`CREATE TABLE IF NOT EXISTS ${db}.interactions (
      deployment String, id String, model_version String, ts DateTime,
      prompt String, response String, context String, has_context UInt8, metadata String,
      source String, cycle_id String, ver UInt64
    ) ENGINE = ReplacingMergeTree(ver) PARTITION BY toYYYYMM(ts) ORDER BY (deployment, id)`);
      await exec(`CREATE TABLE IF NOT EXISTS ${db}.scores (
      ${scoresColumnsDdl}
    ) ENGINE = ReplacingMergeTree(ver) PARTITION BY toYYYYMM(interaction_ts)
      ORDER BY (deployment, check_name, interaction_id, prompt_version, judge)`);
      // FinOps FOCUS rows; a re-read file replaces its rows (same key).
      await exec(`CREATE TABLE IF NOT EXISTS ${db}.cost_usage (
      charge_period_start DateTime, charge_period_end DateTime, billed_cost Float64, effective_cost Float64,
      resource_id String, resource_type String, service_name String, region_id String, sku_id String,
      consumed_quantity Float64, consumed_unit String, tags String, source String, ver UInt64
    ) ENGINE = ReplacingMergeTree(ver) PARTITION BY toYYYYMM(charge_period_start)
      ORDER BY (resource_id, sku_id, charge_period_start, service_name)`);
      // Prometheus samples (scraped or from query_range); a series is metric + canonical labels.
      await exec(`CREATE TABLE IF NOT EXISTS ${db}.metric_samples (
      ts DateTime, source String, metric String, labels String, value Float64, ver UInt64
    ) ENGINE = ReplacingMergeTree(ver) PARTITION BY toYYYYMMDD(ts)
      ORDER BY (source, metric, labels, ts)`);
    },
  },
  {
    // Scores of two model versions that share an interaction id replaced each other: the
    // sorting key (the identity of a row) gets model_version. Existing rows are copied into a
    // table with the new key, which then takes the name; rows written to the old table while
    // it was copied are copied after the swap, by key.
    version: 2,
    name: 'scores keyed by model version',
    async apply(ctx) {
      const { db, exec } = ctx;
      const cols = SCORE_COLUMNS.join(', ');
      const key = `(deployment, model_version, check_name, interaction_id, prompt_version, judge)`;
      const current = await createQuery(ctx, 'scores');
      const rekeyed = /ORDER BY \(deployment, model_version, judge, check_name, prompt_version, interaction_id\)/.test(current);
      if (!rekeyed && !(await tableExists(ctx, 'scores_before_m2'))) {
        await exec(`DROP TABLE IF EXISTS ${db}.scores_next`);
        await exec(`CREATE TABLE ${db}.scores_next (
      ${scoresColumnsDdl}
    ) ENGINE = ReplacingMergeTree(ver) PARTITION BY toYYYYMM(interaction_ts)
      ORDER BY (${SCORES_SORTING_KEY})`);
        await exec(`INSERT INTO ${db}.scores_next (${cols}) SELECT ${cols} FROM ${db}.scores`);
        await exec(`RENAME TABLE ${db}.scores TO ${db}.scores_before_m2, ${db}.scores_next TO ${db}.scores`);
      }
      if (await tableExists(ctx, 'scores_before_m2')) {
        const recent = `scored_at >= toDateTime(toUInt32(now()) - ${CATCH_UP_SECONDS})`;
        await exec(`INSERT INTO ${db}.scores (${cols}) SELECT ${cols} FROM ${db}.scores_before_m2
      WHERE ${recent} AND ${key} NOT IN (SELECT ${key.slice(1, -1)} FROM ${db}.scores WHERE ${recent})`);
        await exec(`DROP TABLE ${db}.scores_before_m2`);
      }
    },
  },
  {
    // Whole-version baselines from per-day aggregates instead of every score row. Run from its
    // start when interrupted: the aggregates are rebuilt from the table.
    version: 3,
    name: 'score_daily aggregates and their materialized view',
    async apply({ db, exec }) {
      await exec(`DROP TABLE IF EXISTS ${db}.score_daily_mv`);
      await exec(`DROP TABLE IF EXISTS ${db}.score_daily`);
      await exec(scoreDailyDdl(db));
      await exec(`CREATE MATERIALIZED VIEW ${db}.score_daily_mv TO ${db}.score_daily AS ${scoreDailySelect(db, 'scores')}`);
      await exec(`INSERT INTO ${db}.score_daily ${scoreDailySelect(db, 'scores')}`);
    },
  },
  {
    // FOCUS rows sharing resource, SKU, period and service replaced each other (a credit its
    // usage, one of two line items, one source's row another's), and a row a re-issued export
    // dropped stayed forever. `cost_usage` becomes a plain MergeTree keyed by source, collection
    // and row number, read through `cost_snapshots`: each source's latest completed collection.
    // The existing rows are copied, each source's at its latest `ver` (what it was collected as
    // last; the older ones were to be replaced), and that collection is recorded as completed.
    // Rows written by the previous release's workers during the copy are not carried over: the
    // next collection of their source writes it whole again.
    version: 4,
    name: 'cost rows kept whole, read by completed collection',
    async apply(ctx) {
      const { db, exec } = ctx;
      const cols = COST_COLUMNS.join(', ');
      await exec(costSnapshotsDdl(db));
      const rebuilt = /\bseq`? UInt64\b/.test(await createQuery(ctx, 'cost_usage'));
      if (!rebuilt && !(await tableExists(ctx, 'cost_usage_before_m4'))) {
        await exec(`DROP TABLE IF EXISTS ${db}.cost_usage_next`);
        await exec(costUsageDdl(db, 'cost_usage_next'));
        await exec(`INSERT INTO ${db}.cost_usage_next (${cols}, seq) SELECT ${cols}, rowNumberInAllBlocks() FROM ${db}.cost_usage
      WHERE (source, ver) IN (SELECT source, max(ver) FROM ${db}.cost_usage GROUP BY source)`);
        await exec(`RENAME TABLE ${db}.cost_usage TO ${db}.cost_usage_before_m4, ${db}.cost_usage_next TO ${db}.cost_usage`);
      }
      await exec(`DROP TABLE IF EXISTS ${db}.cost_usage_before_m4`);
      // Sources without a recorded collection: their latest one, as copied.
      await exec(`INSERT INTO ${db}.cost_snapshots (source, ver, rows, completed_at)
      SELECT source, ver, count(), now() FROM ${db}.cost_usage
      WHERE (source, ver) IN (SELECT source, max(ver) FROM ${db}.cost_usage GROUP BY source)
        AND source NOT IN (SELECT source FROM ${db}.cost_snapshots)
      GROUP BY source, ver`);
    },
  },
];

/**
 * A migration lock is live while its holder shows it is: the holder writes a heartbeat every
 * BEAT_MS, and a lock without one for LOCK_STALE_SECONDS is ignored (its holder died, e.g. killed
 * half-way through a migration), so the next start takes over within a minute.
 */
const LOCK_STALE_SECONDS = 60;
const BEAT_MS = 10_000;
/**
 * Locks are ordered by the server's clock (whole seconds), then by token: a claimer waits this
 * long after its claim before reading the others, so it sees every claim of the same second.
 */
const CLAIM_SETTLE_MS = 2000;
const POLL_MS = 500;

/** The tables (and views) the migrations leave, checked once every migration is recorded. */
const SCHEMA_TABLES: ReadonlyArray<{ table: string; version: number }> = [
  ...['interactions', 'scores', 'cost_usage', 'metric_samples'].map((table) => ({ table, version: 1 })),
  { table: 'score_daily', version: 3 },
  { table: 'score_daily_mv', version: 3 },
  { table: 'cost_snapshots', version: 4 },
];

/** The newest schema version this code knows. */
export const CLICKHOUSE_SCHEMA_VERSION = Math.max(...CLICKHOUSE_MIGRATIONS.map((m) => m.version));

export interface MigrateOptions {
  /** Apply migrations up to this version only (tests of an upgrade from an older schema). */
  upTo?: number;
  /** How long to wait for another worker's migration before giving up. */
  waitMs?: number;
}

const connectionLost = (e: unknown) =>
  /ECONNREFUSED|ECONNRESET|socket hang up|Timeout|EPIPE|ENOTFOUND|EHOSTUNREACH|EAI_AGAIN|other side closed/i.test(reasonOf(e));

/** What to do about a failed ClickHouse statement. */
function advice(e: unknown): string {
  const m = reasonOf(e);
  if (/readonly|Not enough privileges|ACCESS_DENIED|Code: (164|497)\b/i.test(m)) {
    return 'the ClickHouse user may not create or alter tables: give it those rights (not readonly), or start once as a user who has them so the migrations are applied';
  }
  if (connectionLost(e)) {
    return 'the connection was lost: start again once ClickHouse answers; the migration is run again from its start';
  }
  return 'fix the cause and start again; the migration is run again from its start';
}

/**
 * Apply the pending migrations in order. Workers that start together elect one of them (the
 * earliest live claim in `schema_migrations`) to apply them while the others wait until they
 * are recorded as applied; a lock whose holder stopped beating is ignored (its holder died). A
 * schema newer than this code is refused, and so is a recorded schema missing one of its tables.
 * Failures are MigrationErrors naming the database, the migration and what to do.
 */
export async function applyMigrations(ctx: MigrationContext, opts: MigrateOptions = {}): Promise<number[]> {
  const { db, exec, select } = ctx;
  const upTo = opts.upTo ?? Infinity;
  const wanted = CLICKHOUSE_MIGRATIONS.filter((m) => m.version <= upTo);
  let step = 'reading schema_migrations';
  let running: ChMigration | undefined;
  let reached = false;
  try {
    const pending = async () => {
      const rows = await select<{ version: string | number }>(
        `SELECT DISTINCT version FROM ${db}.schema_migrations WHERE event = 'applied'`,
      );
      const done = new Set(rows.map((r) => Number(r.version)));
      const newest = Math.max(0, ...done);
      if (newest > CLICKHOUSE_SCHEMA_VERSION) {
        throw new MigrationError(
          'ClickHouse',
          `ClickHouse database ${db} has schema version ${newest}, newer than this OptiInfra knows (${CLICKHOUSE_SCHEMA_VERSION}): it was migrated by a newer release; run that release or a newer one (or restore a backup from before it). Nothing was changed`,
          newest,
        );
      }
      return wanted.filter((m) => !done.has(m.version));
    };
    // A current schema is only read: a user without DDL rights (readonly) starts.
    const recorded = await select<{ n: string | number }>(
      `SELECT count() AS n FROM system.tables WHERE database = ${sqlString(db)} AND name = 'schema_migrations'`,
    );
    reached = true;
    const current = Number(recorded[0]?.n) > 0 && (await pending()).length === 0;
    step = `creating database ${db} and its schema_migrations table`;
    if (!current) {
      await exec(`CREATE DATABASE IF NOT EXISTS ${db}`);
      await exec(`CREATE TABLE IF NOT EXISTS ${db}.schema_migrations (
      version UInt32, name String, event String, token String, at DateTime
    ) ENGINE = MergeTree() ORDER BY (event, version, at, token)`);
    }
    step = 'reading schema_migrations';
    const deadline = Date.now() + (opts.waitMs ?? 15 * 60_000);
    const live = `event = 'lock' AND token NOT IN (SELECT token FROM ${db}.schema_migrations WHERE event = 'release')
           AND token IN (SELECT token FROM ${db}.schema_migrations
                         WHERE event IN ('lock', 'beat') AND at >= toDateTime(toUInt32(now()) - ${LOCK_STALE_SECONDS}))`;
    const holder = async () =>
      (await select<{ token: string }>(`SELECT token FROM ${db}.schema_migrations WHERE ${live} ORDER BY at, token LIMIT 1`))[0]?.token;
    const mark = (event: string, token: string, m?: ChMigration) =>
      exec(
        `INSERT INTO ${db}.schema_migrations (version, name, event, token, at) SELECT ${m?.version ?? 0}, ${sqlString(m?.name ?? '')}, ${sqlString(event)}, ${sqlString(token)}, now()`,
      );
    const applied: number[] = [];
    for (let todo = await pending(); todo.length; todo = await pending()) {
      if (Date.now() > deadline) {
        throw new MigrationError(
          'ClickHouse',
          `ClickHouse database ${db}: migration ${todo[0]!.version} (${todo[0]!.name}) is still being applied by another worker after ${Math.round((opts.waitMs ?? 15 * 60_000) / 1000)} s: start again later, or look at that worker`,
          todo[0]!.version,
        );
      }
      const token = randomUUID();
      step = 'claiming the migration lock';
      await mark('lock', token);
      await sleep(CLAIM_SETTLE_MS);
      if ((await holder()) === token) {
        const beat = setInterval(() => void mark('beat', token).catch(() => undefined), BEAT_MS);
        try {
          for (const m of await pending()) {
            running = m;
            await m.apply(ctx);
            await mark('applied', token, m);
            running = undefined;
            applied.push(m.version);
          }
        } finally {
          clearInterval(beat);
          // Best effort: when the server is gone the lock expires without heartbeats.
          await mark('release', token).catch(() => undefined);
        }
        continue;
      }
      // Another worker migrates: wait until it is done, or its lock is released or expired.
      await mark('release', token);
      step = 'waiting for another worker to apply the migrations';
      while (Date.now() <= deadline && (await pending()).length && (await holder())) await sleep(POLL_MS);
    }
    step = 'checking the tables';
    if (wanted.length === CLICKHOUSE_MIGRATIONS.length) {
      const present = new Set(
        (await select<{ name: string }>(`SELECT name FROM system.tables WHERE database = ${sqlString(db)}`)).map((r) => r.name),
      );
      const missing = SCHEMA_TABLES.filter((t) => !present.has(t.table));
      if (missing.length) {
        throw new MigrationError(
          'ClickHouse',
          `ClickHouse database ${db} lacks ${missing.map((t) => `table ${t.table} (migration ${t.version})`).join(', ')} although the migrations are recorded as applied: restore it from a backup, or delete the 'applied' rows of those migrations from ${db}.schema_migrations (ALTER TABLE ${db}.schema_migrations DELETE WHERE event = 'applied' AND version >= ${missing[0]!.version}) so the next start applies them again`,
          missing[0]!.version,
        );
      }
    }
    return applied;
  } catch (e) {
    // A server never reached is the caller's to report (where it was looked for, what to set).
    if (e instanceof MigrationError || (!reached && connectionLost(e))) throw e;
    const what = running ? `migration ${running.version} (${running.name})` : step;
    throw new MigrationError('ClickHouse', `ClickHouse database ${db}: ${what} failed: ${reasonOf(e)}; ${advice(e)}`, running?.version, {
      cause: e,
    });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
