/**
 * PostgreSQL access (a PostgreSQL server or the embedded PGlite behind the wire protocol: same code).
 * Schema changes are numbered migrations, applied once each, in order, under an advisory lock.
 */
import pg from 'pg';
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
  // An idle client losing its connection (server restart) must not crash the process.
  pool.on('error', () => undefined);
  return pool;
}

export async function migrate(db: Db): Promise<number[]> {
  const client = await db.connect();
  const applied: number[] = [];
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock(727274)');
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Set((await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      await client.query(m.sql);
      await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      applied.push(m.version);
    }
    await client.query('COMMIT');
    return applied;
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    client.release();
  }
}
