/**
 * PostgreSQL access (a PostgreSQL server or the embedded PGlite behind the wire protocol: same code).
 * Schema changes are numbered migrations, applied once each, in order, under an advisory lock.
 */
import pg from 'pg';
import { MigrationError, reasonOf } from '../migration-error.js';
import { MIGRATIONS } from './migrations.js';

export type Db = pg.Pool;

/**
 * Whether the URL names the stack's embedded PGlite (marked `application_name=pglite`): a single
 * database session that serves its connections one at a time.
 */
export function isPgliteUrl(databaseUrl: string): boolean {
  try {
    return new URL(databaseUrl).searchParams.get('application_name') === 'pglite';
  } catch {
    return false;
  }
}

/**
 * A pool of at most `max` connections. For PGlite, one connection (more would only queue on the
 * server), and a longer wait for it, since every query of the process queues behind it.
 */
export function createPool(databaseUrl: string, max = 5): Db {
  const pglite = isPgliteUrl(databaseUrl);
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: pglite ? 1 : max,
    connectionTimeoutMillis: pglite ? 60_000 : 10_000,
  });
  // A client losing its connection (server restart, or gone in the middle of a migration) must
  // not crash the process: idle ones are dropped by the pool, checked-out ones fail their query.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

/** The newest schema version this code knows. */
export const SCHEMA_VERSION = Math.max(...MIGRATIONS.map((m) => m.version));

const LOCK_KEY = 727274;

/** What to do about a failed migration statement, by SQLSTATE. */
function advice(e: unknown, who: { user: string; database: string }): string {
  const code = (e as { code?: string }).code ?? '';
  if (code === '42501') {
    return `the user '${who.user}' lacks the right to create or alter tables in database '${who.database}': GRANT CREATE ON SCHEMA public (and ownership of the product's tables) to it, or start once as the schema's owner so the migrations are applied`;
  }
  if (code === '25006') {
    return `database '${who.database}' is read-only (a standby, or default_transaction_read_only): point DATABASE_URL at the primary, writable server`;
  }
  if (['42P07', '42P01', '42701', '42703', '42704', '42P06', '42710'].includes(code)) {
    return `the schema differs from what the recorded migrations made (a table or column created or dropped by hand?): repair it to match activities/storage/postgres/migrations.ts or restore a backup, then start again`;
  }
  if (!code || code.startsWith('08') || code.startsWith('57')) {
    return 'the connection was lost or the server is shutting down: start again once PostgreSQL answers';
  }
  return 'fix the cause and start again';
}

/** Versions recorded, or undefined when there is no `schema_migrations` yet; refuses a schema newer than this code. */
async function recordedVersions(client: pg.PoolClient): Promise<Set<number> | undefined> {
  // From the catalog itself, not to_regclass: its cache may predate a migration committed
  // while this transaction waited for the lock.
  const t = await client.query<{ present: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables WHERE tablename = 'schema_migrations' AND schemaname = ANY (current_schemas(false))) AS present`,
  );
  if (!t.rows[0]?.present) return undefined;
  const versions = new Set((await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
  const newest = Math.max(0, ...versions);
  if (newest > SCHEMA_VERSION) {
    throw new MigrationError(
      'PostgreSQL',
      `PostgreSQL schema is at version ${newest}, newer than this OptiInfra knows (${SCHEMA_VERSION}): the database was migrated by a newer release; run that release or a newer one (or restore a backup from before it). Nothing was changed`,
      newest,
    );
  }
  return versions;
}

/** The tables each migration creates (from its SQL). */
const TABLES = MIGRATIONS.flatMap((m) => [...m.sql.matchAll(/CREATE TABLE (?:IF NOT EXISTS )?(\w+)/g)].map((x) => ({ table: x[1]!, m })));

/** Every table a recorded migration created must exist: one dropped since is reported, not met later by a worker. */
async function checkTables(client: pg.PoolClient, database: string): Promise<void> {
  const r = await client.query<{ t: string }>(
    `SELECT t FROM unnest($1::text[]) AS t
     WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_tables WHERE tablename = t AND schemaname = ANY (current_schemas(false)))`,
    [TABLES.map((x) => x.table)],
  );
  if (!r.rows.length) return;
  const missing = r.rows.map((row) => TABLES.find((x) => x.table === row.t)!);
  throw new MigrationError(
    'PostgreSQL',
    `PostgreSQL database '${database}' lacks ${missing.map((x) => `table ${x.table} (migration ${x.m.version}, ${x.m.name})`).join(', ')} although the migration is recorded as applied: restore the database from a backup, or re-create the table as activities/storage/postgres/migrations.ts defines it`,
    missing[0]!.m.version,
  );
}

/** Run `fn` in one transaction on one connection: committed when it resolves, rolled back when it throws. */
export async function inTransaction<T>(db: Db, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    const r = await fn(client);
    await client.query('COMMIT');
    return r;
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    client.release();
  }
}

/**
 * Apply the pending migrations, each once, in one transaction under an advisory lock: processes
 * starting at once wait for the first, then find nothing to do; an interrupted run leaves nothing
 * of itself. A current schema is only read (a user without CREATE rights, or a read-only
 * database, starts), and a schema newer than this code is refused. Failures are MigrationErrors
 * naming the migration and what to do.
 */
export async function migrate(db: Db): Promise<number[]> {
  const client = await db.connect();
  const applied: number[] = [];
  let failed: Error | undefined;
  let running: (typeof MIGRATIONS)[number] | undefined;
  const who = { user: '?', database: '?' };
  let step = 'reading who is connected';
  try {
    const me = await client.query<{ user: string; database: string }>('SELECT current_user AS user, current_database() AS database');
    Object.assign(who, me.rows[0]);
    step = 'reading schema_migrations';
    const before = await recordedVersions(client);
    if (before && MIGRATIONS.every((m) => before.has(m.version))) {
      await checkTables(client, who.database);
      return applied;
    }
    step = 'waiting for the migration lock';
    await client.query('BEGIN');
    await client.query(`SELECT pg_advisory_xact_lock(${LOCK_KEY})`);
    step = 'creating the schema_migrations table';
    // Another process may have migrated (even to a newer schema) while this one waited.
    let done = await recordedVersions(client);
    if (!done) {
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
      done = new Set();
    }
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      running = m;
      await client.query(m.sql);
      await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      applied.push(m.version);
    }
    running = undefined;
    step = 'checking the tables';
    await checkTables(client, who.database);
    await client.query('COMMIT');
    return applied;
  } catch (e) {
    failed = e instanceof Error ? e : new Error(String(e));
    await client.query('ROLLBACK').catch(() => undefined);
    if (e instanceof MigrationError) throw e;
    const what = running ? `migration ${running.version} (${running.name})` : step;
    throw new MigrationError(
      'PostgreSQL',
      `PostgreSQL database '${who.database}': ${what} failed: ${reasonOf(e)}. Nothing of it was applied (rolled back); ${advice(e, who)}`,
      running?.version,
      { cause: e },
    );
  } finally {
    // A client whose statement failed (perhaps its connection) is discarded, not reused.
    client.release(failed);
  }
}
