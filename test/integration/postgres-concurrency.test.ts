/**
 * The stack's default database under concurrency. This file starts the database the way
 * `optiinfra stack up` does (`startDatabase`: the stack's own PostgreSQL server on a free port,
 * data under a temporary stack home), then the PGlite fallback (OPTIINFRA_DATABASE=pglite), and
 * runs against each:
 *
 * - mixed operations, all at once, from several `pg.Pool`s: parameterised and simple reads,
 *   writes whose results are checked, committed and rolled-back transactions, and statements
 *   that must fail (missing table, division by zero inside a transaction, duplicate key) with
 *   their SQLSTATE; every operation bounded by a timeout. Counted: wrong results, errors other
 *   than the intended ones, hangs. The final table state is checked against the writes that
 *   succeeded (no lost update, nothing rolled back leaks);
 * - 12 parallel gate-like checks, each on a pool of its own (as 12 `optiinfra gate` processes
 *   would): migrate, find the registered deployment, claim a rollback, record and read back a
 *   decision — while another pool keeps registering other deployments.
 *
 * It never touches the servers of the global setup and stops what it started.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, isPgliteUrl, migrate } from '../../activities/storage/postgres/db.js';
import { getDeployment, upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import { claimRollback, getDecision, recordDecision } from '../../activities/storage/postgres/gates.js';
import type { GateResult } from '../../domain/gate/types.js';
import { freePort } from '../../stack/ports.js';
import { startDatabase, stackDown, type DatabaseStart } from '../../stack/stack.js';

const OP_TIMEOUT_MS = 30_000;
const ITEMS = 40;

interface Figures {
  operations: number;
  wrong: number;
  errors: number;
  hangs: number;
  intendedFailures: number;
  ms: number;
  details: string[];
}

class Wrong extends Error {}

function check(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Wrong(what);
}

/** Resolves with 'hang' when `p` takes longer than `ms`. */
async function bounded<T>(p: Promise<T>, ms: number): Promise<T | 'hang'> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<'hang'>((r) => (t = setTimeout(() => r('hang'), ms)))]);
  } finally {
    clearTimeout(t);
  }
}

/** `fn` must fail with SQLSTATE `code`. */
async function mustFail(code: string, fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    check(
      (e as { code?: string }).code === code,
      `expected SQLSTATE ${code}, got ${(e as { code?: string }).code}: ${(e as Error).message}`,
    );
    return;
  }
  throw new Wrong(`expected SQLSTATE ${code}, but the statement succeeded`);
}

/** A transaction on a checked-out client; the client is destroyed instead of reused when something went wrong. */
async function withClient<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  try {
    const r = await fn(c);
    c.release();
    return r;
  } catch (e) {
    c.release(e instanceof Error ? e : true);
    throw e;
  }
}

/**
 * `total` operations of ten kinds, started at once, spread over `pools`. Tables are prefixed
 * with `t` so runs never share state.
 */
async function mixedLoad(pools: pg.Pool[], total: number, t: string): Promise<Figures> {
  const setup = pools[0]!;
  await setup.query(`DROP TABLE IF EXISTS ${t}_items, ${t}_log`);
  await setup.query(`CREATE TABLE ${t}_items (id int PRIMARY KEY, n int NOT NULL DEFAULT 0, tag text NOT NULL)`);
  await setup.query(`INSERT INTO ${t}_items (id, tag) SELECT g, 'tag-' || g FROM generate_series(1, ${ITEMS}) g`);
  await setup.query(`CREATE TABLE ${t}_log (id bigserial PRIMARY KEY, op int NOT NULL, v text NOT NULL)`);

  const increments = new Map<number, number>();
  const bump = (id: number) => increments.set(id, (increments.get(id) ?? 0) + 1);
  let logged = 0;
  const fig: Figures = { operations: total, wrong: 0, errors: 0, hangs: 0, intendedFailures: 0, ms: 0, details: [] };

  const op = async (i: number): Promise<void> => {
    const pool = pools[i % pools.length]!;
    const id = 1 + ((i * 7) % ITEMS);
    switch (i % 10) {
      case 0: {
        const r = await pool.query(`SELECT id, tag, n FROM ${t}_items WHERE id = $1`, [id]);
        check(r.rows.length === 1 && r.rows[0].id === id && r.rows[0].tag === `tag-${id}`, `read ${id}: ${JSON.stringify(r.rows)}`);
        return;
      }
      case 1: {
        const r = await pool.query(`SELECT count(*)::int AS c FROM ${t}_items`); // simple protocol
        check(r.rows.length === 1 && r.rows[0].c === ITEMS, `count: ${JSON.stringify(r.rows)}`);
        return;
      }
      case 2: {
        const r = await pool.query(`UPDATE ${t}_items SET n = n + 1 WHERE id = $1 RETURNING id`, [id]);
        check(r.rowCount === 1 && r.rows[0]?.id === id, `update ${id}: rowCount ${r.rowCount}, ${JSON.stringify(r.rows)}`);
        bump(id);
        return;
      }
      case 3: {
        const v = `op-${i}`;
        const r = await pool.query(`INSERT INTO ${t}_log (op, v) VALUES ($1, $2) RETURNING op, v`, [i, v]);
        check(
          r.rowCount === 1 && r.rows[0]?.op === i && r.rows[0]?.v === v,
          `insert ${i}: rowCount ${r.rowCount}, ${JSON.stringify(r.rows)}`,
        );
        logged++;
        return;
      }
      case 4: {
        // A committed transaction that reads its own write.
        await withClient(pool, async (c) => {
          await c.query('BEGIN');
          const u = await c.query(`UPDATE ${t}_items SET n = n + 1 WHERE id = $1 RETURNING n`, [id]);
          check(u.rowCount === 1, `txn update ${id}: rowCount ${u.rowCount}`);
          const ins = await c.query(`INSERT INTO ${t}_log (op, v) VALUES ($1, 'txn') RETURNING op`, [i]);
          check(ins.rowCount === 1 && ins.rows[0]?.op === i, `txn insert ${i}: ${JSON.stringify(ins.rows)}`);
          const s = await c.query(`SELECT n FROM ${t}_items WHERE id = $1`, [id]);
          check(
            s.rows.length === 1 && s.rows[0].n === u.rows[0].n,
            `txn read-own-write ${id}: ${JSON.stringify(s.rows)} vs ${JSON.stringify(u.rows)}`,
          );
          const done = await c.query('COMMIT');
          check(done.command === 'COMMIT', `commit: ${done.command}`);
        });
        bump(id);
        logged++;
        return;
      }
      case 5: {
        // A transaction rolled back on purpose: none of it may persist.
        await withClient(pool, async (c) => {
          await c.query('BEGIN');
          const ins = await c.query(`INSERT INTO ${t}_log (op, v) VALUES (-1, 'rolled back')`);
          check(ins.rowCount === 1, `rollback-txn insert: rowCount ${ins.rowCount}`);
          const u = await c.query(`UPDATE ${t}_items SET n = n + 1000 WHERE id = $1`, [id]);
          check(u.rowCount === 1, `rollback-txn update: rowCount ${u.rowCount}`);
          const done = await c.query('ROLLBACK');
          check(done.command === 'ROLLBACK', `rollback: ${done.command}`);
        });
        return;
      }
      case 6:
        await mustFail('42P01', () => pool.query(`SELECT * FROM ${t}_missing WHERE id = $1`, [id]));
        fig.intendedFailures++;
        return;
      case 7: {
        // A statement failing inside a transaction: the transaction is aborted, then rolled back.
        await withClient(pool, async (c) => {
          await c.query('BEGIN');
          const u = await c.query(`UPDATE ${t}_items SET n = n + 1000 WHERE id = $1`, [id]);
          check(u.rowCount === 1, `failing-txn update: rowCount ${u.rowCount}`);
          await mustFail('22012', () => c.query('SELECT 1 / $1::int AS x', [0]));
          await mustFail('25P02', () => c.query('SELECT 1'));
          const done = await c.query('ROLLBACK');
          check(done.command === 'ROLLBACK', `rollback after error: ${done.command}`);
          const after = await c.query('SELECT 2 AS two');
          check(after.rows[0]?.two === 2, `after rollback: ${JSON.stringify(after.rows)}`);
        });
        fig.intendedFailures += 2;
        return;
      }
      case 8:
        await mustFail('23505', () => pool.query(`INSERT INTO ${t}_items (id, tag) VALUES ($1, 'duplicate')`, [id]));
        fig.intendedFailures++;
        return;
      default: {
        const r = await pool.query(`SELECT n FROM ${t}_items WHERE id = $1`, [id]);
        check(
          r.rows.length === 1 && Number.isInteger(r.rows[0].n) && r.rows[0].n >= 0 && r.rows[0].n < 1000,
          `read n ${id}: ${JSON.stringify(r.rows)}`,
        );
      }
    }
  };

  const t0 = Date.now();
  await Promise.all(
    Array.from({ length: total }, async (_, i) => {
      try {
        const r = await bounded(op(i), OP_TIMEOUT_MS);
        if (r === 'hang') {
          fig.hangs++;
          fig.details.push(`op ${i} (kind ${i % 10}): no answer within ${OP_TIMEOUT_MS / 1000} s`);
        }
      } catch (e) {
        if (e instanceof Wrong) fig.wrong++;
        else fig.errors++;
        fig.details.push(`op ${i} (kind ${i % 10}): ${e instanceof Wrong ? 'wrong result' : 'error'}: ${(e as Error).message}`);
      }
    }),
  );
  fig.ms = Date.now() - t0;

  // The final state holds exactly the writes that succeeded.
  const items = await setup.query<{ id: number; n: number }>(`SELECT id, n FROM ${t}_items ORDER BY id`);
  for (const row of items.rows) {
    const want = increments.get(row.id) ?? 0;
    if (row.n !== want) {
      fig.wrong++;
      fig.details.push(`item ${row.id}: n = ${row.n}, ${want} increments succeeded`);
    }
  }
  const logs = await setup.query<{ kept: number; leaked: number }>(
    `SELECT count(*) FILTER (WHERE op >= 0)::int AS kept, count(*) FILTER (WHERE op < 0)::int AS leaked FROM ${t}_log`,
  );
  if (logs.rows[0]?.kept !== logged || logs.rows[0]?.leaked !== 0) {
    fig.wrong++;
    fig.details.push(`log: ${JSON.stringify(logs.rows[0])}, ${logged} inserts succeeded, 0 rolled back expected`);
  }
  return fig;
}

/**
 * `n` gate-like checks at once, each on a pool of its own: migrate, find `deployment`, claim a
 * rollback, record and read back a decision. Meanwhile `writer` registers other deployments.
 */
async function parallelGates(
  url: string,
  writer: pg.Pool,
  deployment: string,
  n: number,
): Promise<{ ok: number; failures: string[]; ms: number }> {
  const failures: string[] = [];
  let ok = 0;
  const t0 = Date.now();
  const gate = async (k: number) => {
    const db = createPool(url);
    try {
      await migrate(db);
      const d = await getDeployment(db, deployment);
      if (d?.id !== deployment) throw new Error(`deployment '${deployment}' is not registered (got ${JSON.stringify(d)})`);
      const gateId = `gate/${deployment}/c${k}`;
      const claim = await claimRollback(db, {
        idempotencyKey: `${gateId}/rollback`,
        gateId,
        deployment,
        fromVersion: `c${k}`,
        toVersion: 'v1',
        deployer: 'dry-run',
      });
      if (claim.status !== 'pending') throw new Error(`rollback claim: ${JSON.stringify(claim)}`);
      const result: GateResult = {
        gateId,
        deployment,
        baselineVersion: 'v1',
        candidateVersion: `c${k}`,
        decision: k % 2 ? 'APPROVE' : 'REJECT',
        effectiveDecision: k % 2 ? 'APPROVE' : 'REJECT',
        reason: `parallel gate ${k}`,
        rollback: { status: 'not-needed', deployer: 'dry-run', detail: '', idempotencyKey: `${gateId}/rollback` },
      };
      await recordDecision(db, result, `run-${k}`, new Date().toISOString(), { k });
      const back = await getDecision(db, gateId);
      if (back?.decision !== result.decision) throw new Error(`decision read back: ${JSON.stringify(back)}`);
      ok++;
    } finally {
      await db.end();
    }
  };
  const background = (async () => {
    for (let i = 0; i < 3 * n; i++) {
      await upsertDeployment(writer, {
        id: `${deployment}-other-${i}`,
        source: { type: 'http', url: 'http://127.0.0.1:9/x' },
        sample_rate: 1,
      });
    }
  })();
  await Promise.all(
    Array.from({ length: n }, async (_, k) => {
      try {
        const r = await bounded(gate(k), OP_TIMEOUT_MS);
        if (r === 'hang') failures.push(`gate ${k}: no answer within ${OP_TIMEOUT_MS / 1000} s`);
      } catch (e) {
        failures.push(`gate ${k}: ${(e as Error).message}`);
      }
    }),
  );
  await background;
  return { ok, failures, ms: Date.now() - t0 };
}

function plainPools(url: string, count: number, max: number): pg.Pool[] {
  return Array.from({ length: count }, () => {
    const p = new pg.Pool({ connectionString: url, max });
    p.on('error', () => undefined);
    return p;
  });
}

async function endAll(pools: pg.Pool[]): Promise<void> {
  await Promise.all(pools.map((p) => bounded(p.end(), 10_000).catch(() => undefined)));
}

const report: string[] = [];
const line = (what: string, f: Figures) =>
  `${what}: ${f.operations} operations, ${f.wrong} wrong results, ${f.errors} errors, ${f.hangs} hangs, ` +
  `${f.intendedFailures} intended failures (right SQLSTATE), ${f.ms} ms`;

describe("the stack's default database under concurrency", () => {
  const home = mkdtempSync(join(tmpdir(), 'optiinfra-pg-concurrency-'));
  const log = (s: string) => report.push(`stack: ${s.replace(/\s+/g, ' ')}`);
  // The environment of a plain `stack up`: no DATABASE_URL, default database mode.
  const baseEnv = (): NodeJS.ProcessEnv => {
    const env = { ...process.env };
    delete env.DATABASE_URL;
    delete env.OPTIINFRA_DATABASE;
    return env;
  };

  afterAll(async () => {
    await stackDown({ home, log: () => undefined });
    rmSync(home, { recursive: true, force: true });
    if (report.length) console.log(`[postgres-concurrency] ${report.join('\n[postgres-concurrency] ')}`);
  });

  describe("the stack's own PostgreSQL server (the default)", () => {
    let db: DatabaseStart;
    let pools: pg.Pool[] = [];

    beforeAll(async () => {
      const t0 = Date.now();
      db = await startDatabase({ home, env: { ...baseEnv(), OPTIINFRA_POSTGRES_PORT: String(await freePort()) }, log });
      report.push(`local PostgreSQL started in ${Date.now() - t0} ms`);
    });
    afterAll(async () => endAll(pools));

    it('is a PostgreSQL server the stack runs itself, with a normal pool', async () => {
      expect(db).toMatchObject({ databaseKind: 'postgres', databaseSource: 'stack', started: 'postgres' });
      expect(isPgliteUrl(db.databaseUrl)).toBe(false);
      const c = new pg.Client({ connectionString: db.databaseUrl });
      await c.connect();
      try {
        const r = await c.query<{ v: string; dir: string; listen: string }>(
          `SELECT current_setting('server_version') AS v, current_setting('data_directory') AS dir, current_setting('listen_addresses') AS listen`,
        );
        expect(r.rows[0]?.dir).toBe(join(home, 'postgres', 'data'));
        expect(r.rows[0]?.listen).toBe('127.0.0.1');
        report.push(`local server: PostgreSQL ${r.rows[0]?.v}, data ${r.rows[0]?.dir}`);
      } finally {
        await c.end();
      }
    });

    it('400 mixed concurrent operations from 4 pools: no wrong result, no error, no hang', async () => {
      pools = [...plainPools(db.databaseUrl, 2, 10), createPool(db.databaseUrl, 10), createPool(db.databaseUrl, 5)];
      const f = await mixedLoad(pools, 400, 'conc_pg');
      report.push(line('local PostgreSQL', f));
      expect(f.details).toEqual([]);
      expect({ wrong: f.wrong, errors: f.errors, hangs: f.hangs }).toEqual({ wrong: 0, errors: 0, hangs: 0 });
      expect(f.intendedFailures).toBe(160); // 40 missing-table + 40 x 2 in transactions + 40 duplicate keys
    });

    it('12 parallel gate-like checks of a registered deployment all succeed', async () => {
      const writer = createPool(db.databaseUrl);
      try {
        await migrate(writer);
        await upsertDeployment(writer, { id: 'rt-gate', source: { type: 'http', url: 'http://127.0.0.1:9/x' }, sample_rate: 1 });
        const g = await parallelGates(db.databaseUrl, writer, 'rt-gate', 12);
        report.push(`local PostgreSQL: 12 parallel gates, ${g.ok} succeeded, ${g.failures.length} failed, ${g.ms} ms`);
        expect(g.failures).toEqual([]);
        expect(g.ok).toBe(12);
      } finally {
        await writer.end();
      }
    });

    it('`stack up` again reuses the running server (idempotent)', async () => {
      const again = await startDatabase({ home, env: { ...baseEnv(), OPTIINFRA_POSTGRES_PORT: new URL(db.databaseUrl).port }, log });
      expect(again).toMatchObject({ databaseUrl: db.databaseUrl, databaseKind: 'postgres', started: undefined });
    });
  });

  describe('the PGlite fallback', () => {
    let db: DatabaseStart;
    let pools: pg.Pool[] = [];

    beforeAll(async () => {
      const t0 = Date.now();
      db = await startDatabase({
        home,
        env: { ...baseEnv(), OPTIINFRA_DATABASE: 'pglite', OPTIINFRA_PGLITE_PORT: String(await freePort()) },
        log,
      });
      report.push(`PGlite started in ${Date.now() - t0} ms`);
    });
    afterAll(async () => endAll(pools));

    it('is marked as PGlite, and the product pool keeps one connection for it', () => {
      expect(db).toMatchObject({ databaseKind: 'pglite', databaseSource: 'stack', started: 'pglite' });
      expect(isPgliteUrl(db.databaseUrl)).toBe(true);
      const p = createPool(db.databaseUrl, 10);
      expect(p.options.max).toBe(1);
      void p.end();
    });

    it('50 mixed concurrent operations from 4 pools (12 connections): no wrong result, no error, no hang', async () => {
      // Plain pools with several connections each, beside the product's single-connection pool:
      // the server itself must keep their messages apart.
      pools = [...plainPools(db.databaseUrl, 3, 4), createPool(db.databaseUrl)];
      const f = await mixedLoad(pools, 50, 'conc_lite');
      report.push(line('PGlite', f));
      expect(f.details).toEqual([]);
      expect({ wrong: f.wrong, errors: f.errors, hangs: f.hangs }).toEqual({ wrong: 0, errors: 0, hangs: 0 });
      expect(f.intendedFailures).toBe(20);
    });

    it('12 parallel gate-like checks of a registered deployment all succeed', async () => {
      const writer = createPool(db.databaseUrl);
      try {
        await migrate(writer);
        await upsertDeployment(writer, { id: 'rt-gate', source: { type: 'http', url: 'http://127.0.0.1:9/x' }, sample_rate: 1 });
        const g = await parallelGates(db.databaseUrl, writer, 'rt-gate', 12);
        report.push(`PGlite: 12 parallel gates, ${g.ok} succeeded, ${g.failures.length} failed, ${g.ms} ms`);
        expect(g.failures).toEqual([]);
        expect(g.ok).toBe(12);
      } finally {
        await writer.end();
      }
    });

    it('keeps connections apart: a transaction left open by a closed connection is rolled back, named statements do not collide', async () => {
      const a = new pg.Client({ connectionString: db.databaseUrl });
      const b = new pg.Client({ connectionString: db.databaseUrl });
      await Promise.all([a.connect(), b.connect()]);
      try {
        await a.query('CREATE TABLE IF NOT EXISTS conc_apart (k text PRIMARY KEY)');
        // Both prepare a statement of the same name, with different texts.
        const [ra, rb] = await Promise.all([
          a.query({ name: 'same', text: "SELECT 'a'::text AS who, $1::int AS k", values: [1] }),
          b.query({ name: 'same', text: "SELECT 'b'::text AS who, $1::int AS k", values: [2] }),
        ]);
        expect([ra.rows[0], rb.rows[0]]).toEqual([
          { who: 'a', k: 1 },
          { who: 'b', k: 2 },
        ]);
        const again = await a.query({ name: 'same', text: "SELECT 'a'::text AS who, $1::int AS k", values: [3] });
        expect(again.rows[0]).toEqual({ who: 'a', k: 3 });

        // A opens a transaction, writes, and disappears without COMMIT.
        await a.query('BEGIN');
        await a.query("INSERT INTO conc_apart (k) VALUES ('left-open')");
        a.on('error', () => undefined);
        (a as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
        const r = await bounded(b.query("SELECT count(*)::int AS c FROM conc_apart WHERE k = 'left-open'"), OP_TIMEOUT_MS);
        expect(r === 'hang' ? 'hang' : r.rows[0]).toEqual({ c: 0 });
        const st = await b.query<{ s: string }>("SELECT CASE WHEN now() = statement_timestamp() THEN 'I' ELSE 'T' END AS s");
        expect(st.rows[0]?.s).toBe('I'); // b is not inside a's transaction
      } finally {
        await Promise.all([a.end().catch(() => undefined), b.end().catch(() => undefined)]);
      }
    });
  });
});
