/**
 * Schema migrations and first start-up under hostile conditions, for PostgreSQL, PGlite and
 * ClickHouse: several processes migrating a fresh database at once, a migration interrupted
 * half-way (the connection cut between two statements, a table made or dropped by hand), a
 * database migrated by a newer release, a user without CREATE rights and a read-only database.
 * Every failure must name the store, the migration and what to do; nothing may be left
 * half-applied without being reported.
 *
 * Each test uses a database of its own: a fresh PostgreSQL database on the server the global
 * setup found, a PGlite server of its own, a fresh ClickHouse database name.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@clickhouse/client';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLICKHOUSE_MIGRATIONS, CLICKHOUSE_SCHEMA_VERSION } from '../../activities/storage/clickhouse/migrations.js';
import { ClickHouseStore } from '../../activities/storage/clickhouse/store.js';
import { MigrationError } from '../../activities/storage/migration-error.js';
import { createPool, migrate, SCHEMA_VERSION } from '../../activities/storage/postgres/db.js';
import { MIGRATIONS } from '../../activities/storage/postgres/migrations.js';
import { freePort } from '../../stack/ports.js';
import { createScratchDatabase, postgresAdminUrl, startPglite } from '../../stack/postgres.js';
import { stackDown } from '../../stack/stack.js';
import { testEnv } from '../helpers/env.js';

const ALL_PG = MIGRATIONS.map((m) => m.version);
const ALL_CH = [1, 2, 3, 4];

/** The error `p` rejects with (fails the test when it resolves). */
async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a failure, but it succeeded');
}

/**
 * A TCP proxy to `port` that cuts every connection (and refuses new ones) as soon as a client
 * sends bytes containing `cutOn`: the server going away in the middle of a statement.
 */
async function cuttingProxy(port: number, cutOn: string): Promise<{ port: number; cut: Promise<void>; close(): void }> {
  const sockets = new Set<net.Socket>();
  let onCut: () => void = () => undefined;
  const cut = new Promise<void>((r) => (onCut = r));
  let dead = false;
  const close = () => {
    dead = true;
    for (const s of sockets) s.destroy();
    server.close();
  };
  const server = net.createServer((down) => {
    if (dead) return void down.destroy();
    const up = net.connect(port, '127.0.0.1');
    for (const s of [down, up]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    up.pipe(down);
    down.on('data', (d: Buffer) => {
      if (dead) return;
      if (d.includes(cutOn)) {
        close();
        onCut();
        return;
      }
      up.write(d);
    });
    down.on('close', () => up.destroy());
    up.on('close', () => down.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, cut, close };
}

// --- PostgreSQL and PGlite ---------------------------------------------------------------

const pools: pg.Pool[] = [];
const drops: Array<() => Promise<void>> = [];
// A PostgreSQL server to create databases on (the global setup's, or the machine's).
const adminUrl = await postgresAdminUrl();

afterAll(async () => {
  await Promise.allSettled(pools.map((p) => p.end()));
  for (const d of drops) await d().catch(() => undefined);
});

/** A fresh, empty PostgreSQL database; its URL. */
async function freshDatabase(): Promise<string> {
  if (!adminUrl) throw new Error('no PostgreSQL server to create a database on');
  const name = `optiinfra_mig_${randomUUID().slice(0, 8)}`;
  const db = await createScratchDatabase(adminUrl, name);
  drops.unshift(db.drop);
  return db.url;
}

function pool(url: string, max = 5): pg.Pool {
  const p = createPool(url, max);
  pools.push(p);
  return p;
}

async function sql<T extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(text, values)).rows;
  } finally {
    await c.end();
  }
}

const versionsOf = async (url: string) =>
  (await sql<{ version: number }>(url, 'SELECT version FROM schema_migrations ORDER BY version')).map((r) => r.version);
const tableExists = async (url: string, t: string) =>
  (await sql<{ ok: boolean }>(url, 'SELECT to_regclass($1) IS NOT NULL AS ok', [t]))[0]!.ok;

/** `n` processes (a pool each) migrating `url` at once: what each applied, and the recorded versions. */
async function migrateAtOnce(url: string, n: number) {
  const results = await Promise.all(Array.from({ length: n }, () => migrate(pool(url))));
  return { results: results.map((r) => r.length).sort(), versions: await versionsOf(url) };
}

describe.skipIf(!adminUrl)('PostgreSQL migrations, hostile', () => {
  it('two, then four processes migrating a fresh database at once: one applies each migration once, no lock left', async () => {
    // Pinned: held before (one transaction under an advisory lock).
    for (const n of [2, 4]) {
      const url = await freshDatabase();
      const { results, versions } = await migrateAtOnce(url, n);
      expect(results).toEqual([...Array(n - 1).fill(0), ALL_PG.length]);
      expect(versions).toEqual(ALL_PG);
      const locks = await sql<{ n: string }>(url, "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory'");
      expect(Number(locks[0]!.n)).toBe(0);
    }
  });

  it('a database migrated by a newer release is refused, naming both versions, and left as it was', async () => {
    // Failed before: a version row above the code's latest was ignored and the start went on.
    const url = await freshDatabase();
    await migrate(pool(url));
    await sql(url, "INSERT INTO schema_migrations (version, name) VALUES ($1, 'from the future')", [SCHEMA_VERSION + 1]);
    const e = await failure(migrate(pool(url)));
    expect(e).toBeInstanceOf(MigrationError);
    expect(e.message).toMatch(
      new RegExp(
        `PostgreSQL schema is at version ${SCHEMA_VERSION + 1}, newer than this OptiInfra knows \\(${SCHEMA_VERSION}\\).*run that release`,
      ),
    );
    expect(await versionsOf(url)).toEqual([...ALL_PG, SCHEMA_VERSION + 1]);
  });

  it('the first statement of migration 1 applied by hand, without its version row: refused naming migration 1, nothing more applied', async () => {
    // Failed before: the raw "relation already exists", naming no migration and no remedy.
    const url = await freshDatabase();
    await sql(url, 'CREATE TABLE deployments (id text PRIMARY KEY)');
    const e = await failure(migrate(pool(url)));
    expect(e).toBeInstanceOf(MigrationError);
    expect(e.message).toMatch(
      /^PostgreSQL database '\w+': migration 1 \(deployments, cursors and collection runs\) failed: .*already exists/,
    );
    expect(e.message).toMatch(/Nothing of it was applied \(rolled back\); the schema differs .*restore a backup/);
    expect(await tableExists(url, 'collection_cursors')).toBe(false);
    expect(await tableExists(url, 'schema_migrations')).toBe(false);
  });

  it('a table a later migration alters, dropped by hand: refused naming that migration, the earlier ones kept', async () => {
    // Failed before: the raw "relation does not exist", naming no migration.
    const url = await freshDatabase();
    await migrate(pool(url));
    // As if the database stood at migration 3, and collection_cursors had been dropped.
    await sql(url, 'DROP TABLE collection_cursors; DELETE FROM schema_migrations WHERE version >= 4');
    const e = await failure(migrate(pool(url)));
    expect(e).toBeInstanceOf(MigrationError);
    expect((e as MigrationError).version).toBe(4);
    expect(e.message).toMatch(
      /^PostgreSQL database '\w+': migration 4 \(one cycle per deployment.*\) failed: .*collection_cursors.*does not exist/,
    );
    expect(await versionsOf(url)).toEqual([1, 2, 3]);
  });

  it('a table of a recorded migration dropped since: the next start reports it instead of starting', async () => {
    // Failed before: every migration recorded, so the start succeeded and the first use failed.
    const url = await freshDatabase();
    await migrate(pool(url));
    await sql(url, 'DROP TABLE deployer_urls');
    const e = await failure(migrate(pool(url)));
    expect(e).toBeInstanceOf(MigrationError);
    expect(e.message).toMatch(
      /PostgreSQL database '\w+' lacks table deployer_urls \(migration 7, .*\) although .*restore the database from a backup/,
    );
  });

  it('the server going away between two statements of a migration: named, nothing half-applied, the next start completes', async () => {
    // Failed before on the message: the raw "Connection terminated unexpectedly".
    const url = await freshDatabase();
    const proxy = await cuttingProxy(Number(new URL(url).port), 'CREATE TABLE baselines');
    const via = new URL(url);
    via.port = String(proxy.port);
    const e = await failure(migrate(pool(via.toString())));
    await proxy.cut;
    expect(e).toBeInstanceOf(MigrationError);
    expect(e.message).toMatch(
      /^PostgreSQL database '\w+': migration 2 \(baselines, gate decisions, rollbacks, comparisons\) failed: .*Nothing of it was applied \(rolled back\); the connection was lost/,
    );
    // One transaction: migration 1 went with it.
    expect(await tableExists(url, 'deployments')).toBe(false);
    expect(await migrate(pool(url))).toEqual(ALL_PG);
    expect(await versionsOf(url)).toEqual(ALL_PG);
  });

  describe('rights', () => {
    const role = `optiinfra_mig_user_${randomUUID().slice(0, 8)}`;
    beforeAll(async () => {
      await sql(adminUrl!, `CREATE ROLE ${role} LOGIN`);
    });
    afterAll(async () => {
      for (const d of drops.splice(0)) await d().catch(() => undefined);
      await sql(adminUrl!, `DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
    });
    const asRole = (url: string) => {
      const u = new URL(url);
      u.username = role;
      u.password = '';
      return u.toString();
    };

    it('a user without CREATE rights: the first start names the store, the user and the missing right; once migrated it starts', async () => {
      // Failed before: the raw "permission denied for schema public"; and with the schema
      // migrated by its owner the user could not start at all (CREATE TABLE IF NOT EXISTS needs CREATE).
      const url = await freshDatabase();
      await sql(url, 'REVOKE CREATE ON SCHEMA public FROM PUBLIC');
      const e = await failure(migrate(pool(asRole(url))));
      expect(e).toBeInstanceOf(MigrationError);
      expect(e.message).toMatch(
        new RegExp(
          `^PostgreSQL database '\\w+': creating the schema_migrations table failed: permission denied for schema public.*the user '${role}' lacks the right to create or alter tables .*GRANT CREATE ON SCHEMA public`,
        ),
      );
      // The owner migrates; the user gets rights on the rows only.
      await migrate(pool(url));
      await sql(url, `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role}`);
      expect(await migrate(pool(asRole(url)))).toEqual([]);
    });

    it('a read-only database: refused naming it read-only when migrations are pending, started when current', async () => {
      // Failed before: the raw "cannot execute CREATE TABLE in a read-only transaction", also on a current schema.
      const url = await freshDatabase();
      const name = new URL(url).pathname.slice(1);
      await sql(url, `ALTER DATABASE ${name} SET default_transaction_read_only = on`);
      const e = await failure(migrate(pool(url)));
      expect(e).toBeInstanceOf(MigrationError);
      expect(e.message).toMatch(new RegExp(`database '${name}' is read-only .*point DATABASE_URL at the primary`));
      await sql(adminUrl!, `ALTER DATABASE ${name} SET default_transaction_read_only = off`);
      await migrate(pool(url));
      await sql(url, `ALTER DATABASE ${name} SET default_transaction_read_only = on`);
      expect(await migrate(pool(url))).toEqual([]);
    });
  });
});

describe('PGlite migrations, hostile', () => {
  let home: string;
  let url: string;
  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'optiinfra-mig-'));
    url = (await startPglite({ home, port: await freePort() })).url;
  }, 180_000);
  afterAll(async () => {
    await stackDown({ home, log: () => undefined });
    rmSync(home, { recursive: true, force: true });
  });

  it('four processes starting at once on a fresh PGlite: one migrates, the others find it done; a newer schema is refused', async () => {
    // Pinned for the concurrent start (held before); the refusal failed before.
    const { results, versions } = await migrateAtOnce(url, 4);
    expect(results).toEqual([0, 0, 0, ALL_PG.length]);
    expect(versions).toEqual(ALL_PG);
    await sql(url, "INSERT INTO schema_migrations (version, name) VALUES ($1, 'from the future')", [SCHEMA_VERSION + 1]);
    const e = await failure(migrate(pool(url)));
    expect(e.message).toMatch(/PostgreSQL schema is at version \d+, newer than this OptiInfra knows/);
  });
});

// --- ClickHouse --------------------------------------------------------------------------

const stores: ClickHouseStore[] = [];
const chUrl = () => testEnv().clickhouseUrl;
const freshChName = () => `optiinfra_mig_${randomUUID().slice(0, 8)}`;
function store(db: string, url = chUrl()): ClickHouseStore {
  const s = new ClickHouseStore(url, db);
  stores.push(s);
  return s;
}
afterAll(async () => {
  const admin = new ClickHouseStore(chUrl(), 'default');
  for (const db of new Set(stores.map((s) => s.db))) {
    await admin.client.command({ query: `DROP DATABASE IF EXISTS ${db}` }).catch(() => undefined);
  }
  await admin.close();
  await Promise.allSettled(stores.map((s) => s.close()));
});

const chCount = async (s: ClickHouseStore, where: string) =>
  Number((await s.query<{ n: string }>(`SELECT count() AS n FROM ${s.db}.schema_migrations WHERE ${where}`))[0]!.n);
const chTables = async (s: ClickHouseStore) =>
  (await s.query<{ name: string }>(`SELECT name FROM system.tables WHERE database = '${s.db}' ORDER BY name`)).map((r) => r.name);
const FULL_CH_TABLES = [
  'cost_snapshots',
  'cost_usage',
  'interactions',
  'metric_samples',
  'schema_migrations',
  'score_daily',
  'score_daily_mv',
  'scores',
];

describe('ClickHouse migrations, hostile', () => {
  it('two, then four workers migrating a fresh database at once: one applies each migration once, every lock released', async () => {
    // Pinned: held before.
    for (const n of [2, 4]) {
      const db = freshChName();
      const all = Array.from({ length: n }, () => store(db));
      const results = await Promise.all(all.map((s) => s.migrate()));
      expect(results.map((r) => r.length).sort()).toEqual([...Array(n - 1).fill(0), CLICKHOUSE_SCHEMA_VERSION]);
      expect(await all[0]!.appliedMigrations()).toEqual(ALL_CH);
      expect(await chCount(all[0]!, "event = 'applied'")).toBe(ALL_CH.length);
      expect(await chCount(all[0]!, "event = 'lock'")).toBe(await chCount(all[0]!, "event = 'release'"));
      expect(await chTables(all[0]!)).toEqual(FULL_CH_TABLES);
    }
  }, 120_000);

  it('a database migrated by a newer release is refused, naming both versions', async () => {
    // Failed before: an applied version above the code's latest was ignored.
    const s = store(freshChName());
    await s.migrate();
    await s.client.command({
      query: `INSERT INTO ${s.db}.schema_migrations (version, name, event, token, at) SELECT 99, 'from the future', 'applied', 'x', now()`,
    });
    const e = await failure(s.migrate());
    expect(e).toBeInstanceOf(MigrationError);
    expect(e.message).toMatch(
      new RegExp(
        `ClickHouse database ${s.db} has schema version 99, newer than this OptiInfra knows \\(${CLICKHOUSE_SCHEMA_VERSION}\\).*run that release`,
      ),
    );
  });

  it('a worker killed half-way through migration 1 two minutes ago: its lock is not waited for, the migration is finished', async () => {
    // Failed before: the dead worker's lock counted as held for 30 minutes, so every start waited, then failed.
    const s = store(freshChName());
    await s.client.command({ query: `CREATE DATABASE ${s.db}` });
    await s.client.command({
      query: `CREATE TABLE ${s.db}.schema_migrations (version UInt32, name String, event String, token String, at DateTime)
              ENGINE = MergeTree() ORDER BY (event, version, at, token)`,
    });
    await s.client.command({
      query: `INSERT INTO ${s.db}.schema_migrations (version, name, event, token, at) SELECT 0, '', 'lock', 'dead-worker', toDateTime(toUInt32(now()) - 120)`,
    });
    // Migration 1 as the product runs it, killed after its first statement.
    let statements = 0;
    await CLICKHOUSE_MIGRATIONS[0]!
      .apply({
        db: s.db,
        exec: async (query) => {
          if (statements++ >= 1) throw new Error('killed');
          await s.client.command({ query });
        },
        select: (q) => s.query(q),
      })
      .catch(() => undefined);
    expect(await chTables(s)).toEqual(['interactions', 'schema_migrations']);
    expect(await s.migrate({ waitMs: 20_000 })).toEqual(ALL_CH);
    expect(await chTables(s)).toEqual(FULL_CH_TABLES);
  }, 60_000);

  it('a table of a recorded migration dropped since: reported with what to do, and following it repairs', async () => {
    // Failed before: every migration recorded, so the start succeeded and the first use failed.
    const s = store(freshChName());
    await s.migrate();
    await s.client.command({ query: `DROP TABLE ${s.db}.score_daily_mv` });
    const e = await failure(s.migrate());
    expect(e).toBeInstanceOf(MigrationError);
    expect(e.message).toMatch(
      /lacks table score_daily_mv \(migration 3\) although .*ALTER TABLE \w+\.schema_migrations DELETE WHERE event = 'applied' AND version >= 3/,
    );
    await s.client.command({ query: `ALTER TABLE ${s.db}.schema_migrations DELETE WHERE event = 'applied' AND version >= 3` });
    for (let i = 0; i < 100 && (await s.appliedMigrations()).includes(3); i++) await new Promise((r) => setTimeout(r, 200));
    expect(await s.migrate()).toEqual([3, 4]);
    expect(await chTables(s)).toEqual(FULL_CH_TABLES);
  }, 60_000);

  it('a read-only ClickHouse user: the first start names the store, the step and the missing right', async () => {
    // Failed before on the message: the server's raw readonly error, naming no step and no remedy.
    const s = store(freshChName());
    const u = new URL(chUrl());
    Object.defineProperty(s, 'client', {
      value: createClient({ url: `${u.protocol}//${u.host}`, clickhouse_settings: { readonly: '1' } }),
    });
    const e = await failure(s.migrate());
    expect(e).toBeInstanceOf(MigrationError);
    expect(e.message).toMatch(
      new RegExp(
        `^ClickHouse database ${s.db}: creating database ${s.db} and its schema_migrations table failed: .*readonly.*may not create or alter tables`,
        's',
      ),
    );
  });

  it('a read-only ClickHouse user on a current schema: starts, reading only', async () => {
    // Failed before: `CREATE DATABASE IF NOT EXISTS` came first and was refused in readonly mode.
    const db = freshChName();
    await store(db).migrate();
    const s = store(db);
    const u = new URL(chUrl());
    Object.defineProperty(s, 'client', {
      value: createClient({ url: `${u.protocol}//${u.host}`, clickhouse_settings: { readonly: '1' } }),
    });
    expect(await s.migrate()).toEqual([]);
    // Still read-only: a write is refused by the server.
    await expect(s.client.command({ query: `CREATE TABLE ${db}.x (a UInt8) ENGINE = Memory` })).rejects.toThrow(/readonly/i);
  });

  it('ClickHouse going away in the middle of migration 2: named, and the next start takes the lock over and finishes', async () => {
    // Failed before: the error of the lock's release hid the migration, and the next start waited 30 minutes for the dead lock.
    const db = freshChName();
    await store(db).migrate({ upTo: 1 });
    const proxy = await cuttingProxy(Number(new URL(chUrl()).port), 'scores_next');
    const e = await failure(store(db, `http://127.0.0.1:${proxy.port}`).migrate());
    await proxy.cut;
    expect(e).toBeInstanceOf(MigrationError);
    expect(e.message).toMatch(
      new RegExp(`^ClickHouse database ${db}: migration 2 \\(scores keyed by model version\\) failed: .*the connection was lost`),
    );
    const t0 = Date.now();
    const again = store(db);
    expect(await again.migrate({ waitMs: 150_000 })).toEqual([2, 3, 4]);
    expect(Date.now() - t0).toBeLessThan(100_000);
    expect(await chTables(again)).toEqual(FULL_CH_TABLES);
  }, 200_000);
});
