/**
 * PostgreSQL access (the machine's server or the embedded PGlite behind the wire protocol: same code).
 * Schema changes are numbered migrations, applied once each, in order, under an advisory lock.
 */
import pg from 'pg';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'deployments, cursors and collection runs',
    sql: `
      CREATE TABLE deployments (
        id text PRIMARY KEY,
        source jsonb NOT NULL,
        sample_rate double precision NOT NULL DEFAULT 1 CHECK (sample_rate > 0 AND sample_rate <= 1),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE collection_cursors (
        deployment text PRIMARY KEY REFERENCES deployments(id) ON DELETE CASCADE,
        cursor text,
        cycle_id text,
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE collection_runs (
        cycle_id text PRIMARY KEY,
        deployment text NOT NULL,
        scheduled_at timestamptz,
        finished_at timestamptz NOT NULL DEFAULT now(),
        pages int NOT NULL,
        fetched int NOT NULL,
        stored int NOT NULL,
        bad int NOT NULL,
        sampled int NOT NULL,
        scored int NOT NULL,
        failed int NOT NULL,
        skipped int NOT NULL,
        judge text NOT NULL,
        model_versions text[] NOT NULL,
        bad_samples jsonb NOT NULL DEFAULT '[]',
        failure_samples jsonb NOT NULL DEFAULT '[]',
        llm_prompt_tokens bigint NOT NULL DEFAULT 0,
        llm_completion_tokens bigint NOT NULL DEFAULT 0
      );
      CREATE INDEX collection_runs_deployment ON collection_runs (deployment, finished_at DESC);
    `,
  },
  {
    version: 2,
    name: 'baselines, gate decisions, rollbacks, comparisons',
    sql: `
      CREATE TABLE baselines (
        id text PRIMARY KEY,
        deployment text NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
        model_version text NOT NULL,
        judge text NOT NULL,
        prompt_versions jsonb NOT NULL,
        window_spec jsonb NOT NULL,
        window_from timestamptz,
        window_to timestamptz,
        samples int NOT NULL,
        stats jsonb NOT NULL,
        dimensions jsonb NOT NULL,
        workflow_id text NOT NULL,
        computed_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX baselines_lookup ON baselines (deployment, model_version, judge);
      CREATE TABLE gate_decisions (
        gate_id text PRIMARY KEY,
        run_id text NOT NULL,
        deployment text NOT NULL,
        baseline_version text NOT NULL,
        candidate_version text NOT NULL,
        decision text NOT NULL,
        effective_decision text NOT NULL,
        reason text NOT NULL,
        evidence jsonb,
        explanation jsonb,
        override jsonb,
        rollback jsonb NOT NULL,
        input jsonb NOT NULL,
        started_at timestamptz NOT NULL,
        decided_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX gate_decisions_deployment ON gate_decisions (deployment, decided_at DESC);
      CREATE TABLE rollbacks (
        idempotency_key text PRIMARY KEY,
        gate_id text NOT NULL,
        deployment text NOT NULL,
        from_version text NOT NULL,
        to_version text NOT NULL,
        deployer text NOT NULL,
        status text NOT NULL,
        detail text NOT NULL DEFAULT '',
        attempts int NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL DEFAULT now(),
        delivered_at timestamptz
      );
      CREATE TABLE comparisons (
        id text PRIMARY KEY,
        deployment text NOT NULL,
        version_a text NOT NULL,
        version_b text NOT NULL,
        outcome text NOT NULL,
        reason text NOT NULL,
        look jsonb NOT NULL,
        stats_a jsonb NOT NULL,
        stats_b jsonb NOT NULL,
        explanation jsonb,
        created_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 3,
    name: 'infrastructure sources, agent runs, recommendations, reviews',
    sql: `
      CREATE TABLE infra_sources (
        id text PRIMARY KEY,
        kind text NOT NULL CHECK (kind IN ('focus', 'scrape', 'prometheus')),
        config jsonb NOT NULL,
        last_collected_to timestamptz,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE agent_runs (
        id text PRIMARY KEY,
        agent text NOT NULL,
        review_id text,
        status text NOT NULL CHECK (status IN ('ok', 'failed')),
        error text,
        window_from timestamptz,
        window_to timestamptz,
        data_points int NOT NULL DEFAULT 0,
        findings jsonb NOT NULL DEFAULT '[]',
        totals jsonb,
        summary text NOT NULL DEFAULT '',
        narrative jsonb,
        narrative_by text,
        prompt_version text,
        finished_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX agent_runs_agent ON agent_runs (agent, finished_at DESC);
      CREATE TABLE recommendations (
        run_id text NOT NULL REFERENCES agent_runs(id) ON DELETE CASCADE,
        idx int NOT NULL,
        agent text NOT NULL,
        kind text NOT NULL,
        subject text NOT NULL,
        severity text NOT NULL,
        title text NOT NULL,
        recommendation text NOT NULL,
        narrative text,
        evidence jsonb NOT NULL,
        monthly_saving_usd double precision,
        annual_saving_usd double precision,
        impact text,
        confidence double precision NOT NULL,
        narrative_by text,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (run_id, idx)
      );
      CREATE TABLE reviews (
        id text PRIMARY KEY,
        agents text[] NOT NULL,
        failed_agents text[] NOT NULL,
        summary text NOT NULL,
        summary_by text NOT NULL,
        errors jsonb NOT NULL DEFAULT '{}',
        finished_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
];

export type Db = pg.Pool;

export function createPool(databaseUrl: string, max = 5): Db {
  const pool = new pg.Pool({ connectionString: databaseUrl, max, connectionTimeoutMillis: 10_000 });
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
    const done = new Set(
      (await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version),
    );
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

export interface DeploymentRow {
  id: string;
  source: unknown;
  sample_rate: number;
}

export async function upsertDeployment(db: Db, d: DeploymentRow): Promise<void> {
  await db.query(
    `INSERT INTO deployments (id, source, sample_rate) VALUES ($1, $2, $3)
     ON CONFLICT (id) DO UPDATE SET source = EXCLUDED.source, sample_rate = EXCLUDED.sample_rate, updated_at = now()`,
    [d.id, JSON.stringify(d.source), d.sample_rate],
  );
}

export async function getDeployment(db: Db, id: string): Promise<DeploymentRow | undefined> {
  const r = await db.query<DeploymentRow>('SELECT id, source, sample_rate FROM deployments WHERE id = $1', [id]);
  return r.rows[0];
}

export async function listDeployments(db: Db): Promise<Array<DeploymentRow & { cursor: string | null }>> {
  const r = await db.query(
    `SELECT d.id, d.source, d.sample_rate, c.cursor FROM deployments d
     LEFT JOIN collection_cursors c ON c.deployment = d.id ORDER BY d.id`,
  );
  return r.rows;
}

export async function getCursor(db: Db, deployment: string): Promise<string | null> {
  const r = await db.query<{ cursor: string | null }>('SELECT cursor FROM collection_cursors WHERE deployment = $1', [
    deployment,
  ]);
  return r.rows[0]?.cursor ?? null;
}

export type CursorAdvance = 'advanced' | 'already' | 'conflict';

/**
 * Compare-and-set: move the cursor from `from` to `to`. Re-running the same advance (activity
 * retry) answers 'already'; a cursor moved by someone else answers 'conflict'.
 */
export async function advanceCursor(
  db: Db,
  deployment: string,
  from: string | null,
  to: string,
  cycleId: string,
): Promise<CursorAdvance> {
  await db.query(
    `INSERT INTO collection_cursors (deployment, cursor, cycle_id) VALUES ($1, NULL, NULL) ON CONFLICT (deployment) DO NOTHING`,
    [deployment],
  );
  const r = await db.query(
    `UPDATE collection_cursors SET cursor = $3, cycle_id = $4, updated_at = now()
     WHERE deployment = $1 AND cursor IS NOT DISTINCT FROM $2::text`,
    [deployment, from, to, cycleId],
  );
  if (r.rowCount === 1) return 'advanced';
  return (await getCursor(db, deployment)) === to ? 'already' : 'conflict';
}

export async function upsertInfraSource(db: Db, id: string, config: { kind: string }): Promise<void> {
  await db.query(
    `INSERT INTO infra_sources (id, kind, config) VALUES ($1, $2, $3)
     ON CONFLICT (id) DO UPDATE SET kind = EXCLUDED.kind, config = EXCLUDED.config`,
    [id, config.kind, JSON.stringify(config)],
  );
}
